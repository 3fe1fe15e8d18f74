"""Tests for the subscription pages, through the Django test client."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from sandbox.display import KEEP_API_KEY_HELP
from sandbox.spec.endpoint_url import ENDPOINT_URL_SCHEME_ERROR
from sandbox.subscriptions.forms import NEW_KEY_AND_CLEAR_ERROR
from sandbox.subscriptions.models import Subscription
from sandbox.subscriptions.services import subscription_create, subscription_update
from sandbox.subscriptions.views import DISABLED, ENABLED
from sandbox.subscriptions.views import RECENT_DELIVERIES as RECENT
from tests.factories import make_delivery, subscription_form_data

TIMES = "\N{MULTIPLICATION SIGN}"


def form_data(**data) -> dict[str, str]:
    partner = {
        "name": "Partner hook",
        "api_key": "partner-key-9876",
        "custom_settings": '{"region": "eu"}',
    }
    return subscription_form_data(**(partner | data))


@pytest.mark.django_db
def test_list_page_shows_empty_state(client):
    response = client.get(reverse("subscriptions:list"))
    assert response.status_code == 200
    assert "No subscriptions yet" in response.text
    assert reverse("subscriptions:create") in response.text


@pytest.mark.django_db
def test_list_page_shows_subscription(client, subscription):
    subscription_create(name="Paused", endpoint_url="http://localhost", enabled=False)
    response = client.get(reverse("subscriptions:list"))
    text = response.text
    assert "Acme webhook" in text
    assert "http://localhost:3000/segment" in text
    assert "2.5 s" in text
    assert "badge-green" in text
    assert "badge-grey" in text
    assert reverse("subscriptions:edit", args=[subscription.pk]) in text
    assert reverse("subscriptions:delete", args=[subscription.pk]) in text


@pytest.mark.django_db
def test_list_page_masks_api_key(client, subscription, api_key):
    response = client.get(reverse("subscriptions:list"))
    assert api_key not in response.text
    assert subscription.masked_api_key in response.text
    assert api_key[-4:] in response.text
    assert reverse("subscriptions:reveal-key", args=[subscription.pk]) in response.text


@pytest.mark.django_db
def test_reveal_key_returns_full_key(client, subscription, api_key):
    response = client.get(
        reverse("subscriptions:reveal-key", args=[subscription.pk]),
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert api_key in response.text
    assert f'id="api-key-{subscription.pk}"' in response.text
    assert "<html" not in response.text
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_reveal_key_escapes_key(client):
    subscription = subscription_create(
        name="Odd", endpoint_url="http://localhost", api_key="<b>&'key"
    )
    response = client.get(reverse("subscriptions:reveal-key", args=[subscription.pk]))
    assert "&lt;b&gt;&amp;&#x27;key" in response.text
    assert "<b>" not in response.text


@pytest.mark.django_db
def test_reveal_key_is_404_for_missing_subscription(client):
    response = client.get(reverse("subscriptions:reveal-key", args=[999]))
    assert response.status_code == 404


@pytest.mark.django_db
def test_create_page_renders_form(client):
    response = client.get(reverse("subscriptions:create"))
    assert response.status_code == 200
    assert 'type="password"' in response.text
    assert "data-toggle-secret" in response.text
    assert "csrfmiddlewaretoken" in response.text


@pytest.mark.django_db
def test_create_page_creates_subscription(client):
    response = client.post(reverse("subscriptions:create"), form_data(), follow=True)
    subscription = Subscription.objects.get()
    detail = reverse("subscriptions:detail", args=[subscription.pk])
    assert response.redirect_chain == [(detail, 302)]
    assert "Created subscription “Partner hook”." in response.text
    assert subscription.endpoint_url == "http://localhost:3000/segment"
    assert subscription.api_key == "partner-key-9876"
    assert subscription.custom_settings == {"region": "eu"}
    assert subscription.timeout_seconds == 5.0
    assert subscription.enabled is True


@pytest.mark.django_db
def test_create_page_shows_scheme_error(client):
    data = form_data(endpoint_url="ftp://localhost/segment")
    response = client.post(reverse("subscriptions:create"), data)
    assert response.status_code == 200
    assert ENDPOINT_URL_SCHEME_ERROR in response.text
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_create_page_shows_json_error_with_position(client):
    data = form_data(custom_settings='{"region": "eu",}')
    response = client.post(reverse("subscriptions:create"), data)
    assert "line 1, column 17" in response.text
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_create_page_enforces_csrf():
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("subscriptions:create"), form_data())
    assert response.status_code == 403
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_edit_page_renders_current_values(client, subscription, api_key):
    response = client.get(reverse("subscriptions:edit", args=[subscription.pk]))
    assert response.status_code == 200
    assert "Edit “Acme webhook”" in response.text
    assert "&quot;region&quot;: &quot;eu&quot;" in response.text


@pytest.mark.django_db
def test_edit_page_never_contains_the_api_key(client, subscription, api_key):
    response = client.get(reverse("subscriptions:edit", args=[subscription.pk]))
    assert api_key not in response.text
    assert 'type="password" name="api_key"' in response.text
    assert KEEP_API_KEY_HELP.format(masked=subscription.masked_api_key) in (
        response.text
    )
    assert "Clear the API key" in response.text


@pytest.mark.django_db
def test_edit_page_with_blank_key_keeps_it(client, subscription, api_key):
    url = reverse("subscriptions:edit", args=[subscription.pk])
    response = client.post(url, form_data(name="Acme v2", api_key=""))
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.name == "Acme v2"
    assert subscription.api_key == api_key


@pytest.mark.django_db
def test_edit_page_clear_checkbox_clears_the_key(client, subscription):
    url = reverse("subscriptions:edit", args=[subscription.pk])
    response = client.post(url, form_data(api_key="", clear_api_key="on"))
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.api_key == ""


@pytest.mark.django_db
def test_edit_page_refuses_new_key_and_clear_together(client, subscription, api_key):
    url = reverse("subscriptions:edit", args=[subscription.pk])
    response = client.post(url, form_data(api_key="fresh-key", clear_api_key="on"))
    assert response.status_code == 200
    assert NEW_KEY_AND_CLEAR_ERROR in response.text
    assert "fresh-key" not in response.text
    subscription.refresh_from_db()
    assert subscription.api_key == api_key


@pytest.mark.django_db
def test_edit_page_updates_subscription(client, subscription, api_key):
    data = form_data(name="Acme v2", api_key=api_key, custom_settings="")
    del data["enabled"]
    url = reverse("subscriptions:edit", args=[subscription.pk])
    response = client.post(url, data, follow=True)
    assert "Saved subscription “Acme v2”." in response.text
    subscription.refresh_from_db()
    assert subscription.name == "Acme v2"
    assert subscription.api_key == api_key
    assert subscription.custom_settings == {}
    assert subscription.enabled is False


@pytest.mark.django_db
def test_edit_page_keeps_heading_on_invalid_post(client, subscription):
    data = form_data(name="Renamed", timeout_seconds="61")
    url = reverse("subscriptions:edit", args=[subscription.pk])
    response = client.post(url, data)
    assert "Edit “Acme webhook”" in response.text
    subscription.refresh_from_db()
    assert subscription.name == "Acme webhook"


@pytest.mark.django_db
def test_edit_page_is_404_for_missing_subscription(client):
    response = client.get(reverse("subscriptions:edit", args=[999]))
    assert response.status_code == 404


@pytest.mark.django_db
def test_delete_removes_subscription(client, subscription):
    url = reverse("subscriptions:delete", args=[subscription.pk])
    response = client.post(url, follow=True)
    assert response.redirect_chain == [(reverse("subscriptions:list"), 302)]
    assert "Deleted subscription “Acme webhook”." in response.text
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_delete_refuses_get(client, subscription):
    response = client.get(reverse("subscriptions:delete", args=[subscription.pk]))
    assert response.status_code == 405
    assert Subscription.objects.filter(pk=subscription.pk).exists()


@pytest.mark.django_db
def test_list_page_links_each_subscription_and_shows_its_policy(client, subscription):
    subscription_create(
        name="Fast",
        endpoint_url="http://localhost",
        retry_policy="none",
        time_scale=240.0,
        dedupe_enabled=False,
    )
    text = client.get(reverse("subscriptions:list")).text
    assert f'href="{reverse("subscriptions:detail", args=[subscription.pk])}"' in text
    for shown in (">Segment<", ">None<", f"1{TIMES} (real time)", f"240{TIMES}"):
        assert shown in text, shown
    assert ">24 h<" in text
    assert ">off<" in text


@pytest.mark.django_db
def test_detail_page_shows_the_settings_with_the_key_masked(
    client, subscription, api_key
):
    subscription_update(
        subscription=subscription, time_scale=60.0, dedupe_window_hours=0.25
    )
    response = client.get(reverse("subscriptions:detail", args=[subscription.pk]))
    text = response.text
    assert response.status_code == 200
    assert "<h1>Acme webhook" in text
    assert "http://localhost:3000/segment" in text
    assert api_key not in text
    assert subscription.masked_api_key in text
    assert reverse("subscriptions:reveal-key", args=[subscription.pk]) in text
    assert "Segment (first attempt + 9 retries over about 4 hours)" in text
    assert f"60{TIMES}" in text
    assert "15 min" in text
    assert "2.5 s" in text
    assert "&quot;region&quot;: &quot;eu&quot;" in text
    assert "No attempts yet." in text
    assert "Nothing sent to it yet." in text
    assert f'ws-connect="/ws/history/?subscription={subscription.pk}"' in text
    for action in ("edit", "disable", "delete"):
        assert reverse(f"subscriptions:{action}", args=[subscription.pk]) in text
    assert text.count("csrfmiddlewaretoken") == 2
    assert text.count("data-confirm=") == 2


@pytest.mark.django_db
def test_detail_page_escapes_what_the_partner_typed(client):
    subscription = subscription_create(
        name="<script>alert(1)</script>",
        endpoint_url="http://localhost/<b>",
        custom_settings={"x": "</pre><script>"},
    )
    text = client.get(reverse("subscriptions:detail", args=[subscription.pk])).text
    assert "<script>alert(1)" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "http://localhost/&lt;b&gt;" in text
    assert "</pre><script>" not in text


@pytest.mark.django_db
def test_detail_page_lists_recent_deliveries_newest_first(client, subscription):
    other = subscription_create(name="Other", endpoint_url="http://localhost")
    made = [make_delivery(subscription=subscription) for _ in range(RECENT + 2)]
    elsewhere = make_delivery(subscription=other)
    text = client.get(reverse("subscriptions:detail", args=[subscription.pk])).text
    assert text.count('class="history-row"') == RECENT
    assert text.index(f'id="history-row-{made[-1].pk}"') < text.index(
        f'id="history-row-{made[-2].pk}"'
    )
    assert f'id="history-row-{made[0].pk}"' not in text
    assert f'id="history-row-{elsewhere.pk}"' not in text
    catch_up = client.get(
        reverse("subscriptions:detail", args=[subscription.pk]),
        headers={"HX-Request": "true", "HX-Target": "subscription-deliveries"},
    ).text
    assert catch_up.lstrip().startswith('<div id="subscription-deliveries"')
    assert catch_up.count('class="history-row"') == RECENT


@pytest.mark.django_db
def test_detail_page_is_404_for_missing_subscription(client):
    response = client.get(reverse("subscriptions:detail", args=[999]))
    assert response.status_code == 404


@pytest.mark.django_db
def test_disable_stops_the_subscription_and_enable_starts_it(client, subscription):
    url = reverse("subscriptions:detail", args=[subscription.pk])
    response = client.post(
        reverse("subscriptions:disable", args=[subscription.pk]), follow=True
    )
    assert response.redirect_chain == [(url, 302)]
    assert DISABLED.format(name="Acme webhook") in response.text
    assert "badge-grey" in response.text
    assert reverse("subscriptions:enable", args=[subscription.pk]) in response.text
    subscription.refresh_from_db()
    assert subscription.enabled is False
    response = client.post(
        reverse("subscriptions:enable", args=[subscription.pk]), follow=True
    )
    assert ENABLED.format(name="Acme webhook") in response.text
    subscription.refresh_from_db()
    assert subscription.enabled is True


@pytest.mark.django_db
def test_disable_stops_pending_deliveries(client, subscription):
    delivery = make_delivery(subscription=subscription)
    client.post(reverse("subscriptions:disable", args=[subscription.pk]))
    delivery.refresh_from_db()
    assert delivery.state == "failed"


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["disable", "enable", "delete"])
def test_detail_actions_refuse_get_and_need_csrf(subscription, action):
    url = reverse(f"subscriptions:{action}", args=[subscription.pk])
    assert Client().get(url).status_code == 405
    assert Client(enforce_csrf_checks=True).post(url).status_code == 403
    subscription.refresh_from_db()
    assert subscription.enabled is True


@pytest.mark.django_db
def test_edit_page_returns_to_the_subscription(client, subscription, api_key):
    url = reverse("subscriptions:edit", args=[subscription.pk])
    response = client.post(url, form_data(name="Acme v3", api_key=""))
    assert response["Location"] == reverse(
        "subscriptions:detail", args=[subscription.pk]
    )


@pytest.mark.django_db
def test_subscription_form_key_field_has_no_value(client, subscription, api_key):
    text = client.get(reverse("subscriptions:edit", args=[subscription.pk])).text
    assert '<form class="card subscription-form"' in text
    assert '<div class="secret-field">' in text
    [key_input] = re.findall(r'<input type="password" name="api_key"[^>]*>', text)
    assert "value=" not in key_input
    assert api_key not in text
