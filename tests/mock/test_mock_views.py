"""The mock endpoint pages: list, create, edit, detail, key reveal, clear, delete."""

import pytest
from django.test import Client
from django.urls import reverse

from sandbox.display import KEEP_API_KEY_HELP
from sandbox.mock.models import (
    DELAY_RANGE,
    FAIL_STATUS_RANGE,
    RESERVED_SLUG,
    STATUS_CODE_RANGE,
    UNKNOWN_EVENT_TYPES,
    MockEndpoint,
    MockRequest,
)
from sandbox.mock.selectors import mock_request_stats
from sandbox.spec import EVENT_TYPES


def detail_url(endpoint):
    return reverse("mock:detail", kwargs={"slug": endpoint.slug})


@pytest.mark.django_db
def test_list_shows_endpoints(client, make_mock_endpoint):
    make_mock_endpoint(name="Acme webhook")
    response = client.get(reverse("mock:list"))
    assert response.status_code == 200
    assert "Acme webhook" in response.text
    assert "/mock/acme/" in response.text


@pytest.mark.django_db
def test_list_empty_state(client):
    response = client.get(reverse("mock:list"))
    assert "No mock endpoints yet" in response.text


@pytest.mark.django_db
def test_create_saves_and_redirects_with_message(client, endpoint_form_data):
    data = endpoint_form_data(status_code="202", unsupported_types=["page", "alias"])
    response = client.post(reverse("mock:create"), data, follow=True)
    endpoint = MockEndpoint.objects.get()
    assert response.redirect_chain == [(detail_url(endpoint), 302)]
    assert "Mock endpoint “Acme webhook” created." in response.text
    assert endpoint.status_code == 202
    assert endpoint.unsupported_types == ["page", "alias"]


@pytest.mark.django_db
def test_create_form_shows_every_event_type(client):
    response = client.get(reverse("mock:create"))
    for event_type in EVENT_TYPES:
        assert f'value="{event_type}"' in response.text
    assert "csrfmiddlewaretoken" in response.text


@pytest.mark.django_db
def test_create_form_range_errors(client, endpoint_form_data):
    data = endpoint_form_data(status_code="600", delay_ms="30001", fail_status="200")
    response = client.post(reverse("mock:create"), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["status_code"] == [STATUS_CODE_RANGE]
    assert errors["delay_ms"] == [DELAY_RANGE]
    assert errors["fail_status"] == [FAIL_STATUS_RANGE]
    assert STATUS_CODE_RANGE in response.text
    assert not MockEndpoint.objects.exists()


@pytest.mark.django_db
def test_create_form_response_body_must_be_json(client, endpoint_form_data):
    data = endpoint_form_data(response_body='{\n  "ok": tru\n}')
    response = client.post(reverse("mock:create"), data)
    [error] = response.context["form"].errors["response_body"]
    assert error == (
        "Response body is not valid JSON: Expecting value (line 2, column 9)."
    )


@pytest.mark.django_db
def test_create_form_unknown_event_type(client, endpoint_form_data):
    data = endpoint_form_data(unsupported_types=["track", "batch"])
    response = client.post(reverse("mock:create"), data)
    assert response.context["form"].errors["unsupported_types"] == [
        UNKNOWN_EVENT_TYPES.format(choices=", ".join(EVENT_TYPES))
    ]


@pytest.mark.django_db
def test_create_form_reserved_and_duplicate_slugs(
    client, endpoint_form_data, make_mock_endpoint
):
    make_mock_endpoint(slug="taken")
    reserved = client.post(reverse("mock:create"), endpoint_form_data(slug="new"))
    duplicate = client.post(reverse("mock:create"), endpoint_form_data(slug="taken"))
    assert reserved.context["form"].errors["slug"] == [RESERVED_SLUG.format(slug="new")]
    assert "slug" in duplicate.context["form"].errors


@pytest.mark.django_db
def test_create_enforces_csrf(endpoint_form_data):
    response = Client(enforce_csrf_checks=True).post(
        reverse("mock:create"), endpoint_form_data()
    )
    assert response.status_code == 403
    assert not MockEndpoint.objects.exists()


@pytest.mark.django_db
def test_edit_updates_behaviour_but_not_slug(
    client, make_mock_endpoint, endpoint_form_data
):
    endpoint = make_mock_endpoint()
    data = endpoint_form_data(slug="renamed", name="Renamed", fail_first_n="3")
    response = client.post(reverse("mock:edit", kwargs={"slug": "acme"}), data)
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.slug, endpoint.name, endpoint.fail_first_n) == (
        "acme",
        "Renamed",
        3,
    )


@pytest.mark.django_db
def test_edit_form_shows_errors(client, make_mock_endpoint, endpoint_form_data):
    make_mock_endpoint()
    data = endpoint_form_data(delay_ms="-5")
    response = client.post(reverse("mock:edit", kwargs={"slug": "acme"}), data)
    assert response.status_code == 200
    assert DELAY_RANGE in response.text


@pytest.mark.django_db
def test_detail_unknown_slug_is_404(client):
    assert client.get(
        reverse("mock:detail", kwargs={"slug": "nobody"})
    ).status_code == (404)


@pytest.mark.django_db
def test_detail_shows_absolute_endpoint_url(client, make_mock_endpoint):
    response = client.get(detail_url(make_mock_endpoint()))
    assert "http://testserver/mock/acme/" in response.text


@pytest.mark.django_db
def test_detail_escapes_recorded_requests(client, make_mock_endpoint, deliver):
    endpoint = make_mock_endpoint()
    attack = "<script>alert(1)</script>"
    deliver(
        endpoint,
        {"type": "track", "messageId": attack, "properties": {"x": attack}},
        headers={"X-Evil": attack},
    )
    html = client.get(detail_url(endpoint)).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert attack not in html


@pytest.mark.django_db
def test_detail_lists_requests_newest_first(
    client, make_mock_endpoint, deliver, make_event
):
    endpoint = make_mock_endpoint()
    deliver(endpoint, make_event(message_id="first-sent"))
    deliver(endpoint, make_event(message_id="second-sent"))
    html = client.get(detail_url(endpoint)).text
    assert html.index("second-sent") < html.index("first-sent")


@pytest.mark.django_db
def test_detail_masks_api_key(client, make_mock_endpoint, api_key):
    html = client.get(detail_url(make_mock_endpoint())).text
    assert api_key not in html
    assert "••••••••" + api_key[-4:] in html
    assert reverse("mock:reveal-key", kwargs={"slug": "acme"}) in html


@pytest.mark.django_db
def test_reveal_key_htmx_returns_only_the_key(client, make_mock_endpoint, api_key):
    make_mock_endpoint()
    response = client.get(
        reverse("mock:reveal-key", kwargs={"slug": "acme"}),
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert api_key in response.text
    assert 'id="api-key"' in response.text
    assert "<html" not in response.text
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_reveal_key_without_htmx_shows_the_page(client, make_mock_endpoint, api_key):
    make_mock_endpoint()
    response = client.get(reverse("mock:reveal-key", kwargs={"slug": "acme"}))
    assert api_key in response.text
    assert 'id="mock-requests"' in response.text


@pytest.mark.django_db
def test_detail_htmx_poll_renders_requests_partial(client, make_mock_endpoint, deliver):
    endpoint = make_mock_endpoint()
    deliver(endpoint)
    response = client.get(detail_url(endpoint), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="mock-requests"')
    assert "every 2s" not in response.text
    assert 'hx-trigger="live-resync' in response.text
    assert "msg-1" in response.text


@pytest.mark.django_db
def test_detail_htmx_poll_unchanged_is_204(client, make_mock_endpoint, deliver):
    endpoint = make_mock_endpoint()
    deliver(endpoint)
    seen = mock_request_stats(endpoint=endpoint).version
    unchanged = client.get(
        detail_url(endpoint), {"seen": seen}, headers={"HX-Request": "true"}
    )
    deliver(endpoint)
    changed = client.get(
        detail_url(endpoint), {"seen": seen}, headers={"HX-Request": "true"}
    )
    assert unchanged.status_code == 204
    assert changed.status_code == 200


@pytest.mark.django_db
def test_clear_removes_requests(client, make_mock_endpoint, deliver):
    endpoint = make_mock_endpoint()
    deliver(endpoint)
    response = client.post(reverse("mock:clear", kwargs={"slug": "acme"}), follow=True)
    assert response.redirect_chain == [(detail_url(endpoint), 302)]
    assert "Cleared 1 recorded requests." in response.text
    assert not MockRequest.objects.exists()


@pytest.mark.django_db
def test_clear_needs_post(client, make_mock_endpoint):
    make_mock_endpoint()
    response = client.get(reverse("mock:clear", kwargs={"slug": "acme"}))
    assert response.status_code == 405


@pytest.mark.django_db
def test_delete_removes_endpoint(client, make_mock_endpoint):
    make_mock_endpoint()
    response = client.post(reverse("mock:delete", kwargs={"slug": "acme"}), follow=True)
    assert response.redirect_chain == [(reverse("mock:list"), 302)]
    assert "Mock endpoint “Acme webhook” deleted." in response.text
    assert not MockEndpoint.objects.exists()


@pytest.mark.django_db
def test_detail_masks_the_recorded_authorization_header(
    client, make_mock_endpoint, deliver, basic_auth, api_key
):
    endpoint = make_mock_endpoint()
    deliver(endpoint)
    html = client.get(detail_url(endpoint)).text
    assert basic_auth(api_key) not in html
    assert "Basic ••••••••" in html


@pytest.mark.django_db
def test_edit_form_never_contains_the_key(client, make_mock_endpoint, api_key):
    endpoint = make_mock_endpoint()
    html = client.get(reverse("mock:edit", kwargs={"slug": endpoint.slug})).text
    assert 'type="password" name="api_key"' in html
    assert 'data-toggle-secret="id_api_key"' in html
    assert api_key not in html
    assert KEEP_API_KEY_HELP.format(masked=endpoint.masked_api_key) in html


@pytest.mark.django_db
def test_edit_with_blank_key_keeps_it(
    client, make_mock_endpoint, endpoint_form_data, api_key
):
    endpoint = make_mock_endpoint()
    data = endpoint_form_data(api_key="", name="Renamed")
    response = client.post(reverse("mock:edit", kwargs={"slug": "acme"}), data)
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.api_key) == ("Renamed", api_key)


@pytest.mark.django_db
def test_edit_with_new_key_replaces_it(client, make_mock_endpoint, endpoint_form_data):
    endpoint = make_mock_endpoint()
    data = endpoint_form_data(api_key="replacement-key")
    client.post(reverse("mock:edit", kwargs={"slug": "acme"}), data)
    endpoint.refresh_from_db()
    assert endpoint.api_key == "replacement-key"


@pytest.mark.django_db
def test_edit_form_with_errors_does_not_echo_the_key(
    client, make_mock_endpoint, endpoint_form_data
):
    make_mock_endpoint()
    data = endpoint_form_data(api_key="replacement-key", delay_ms="-5")
    response = client.post(reverse("mock:edit", kwargs={"slug": "acme"}), data)
    assert DELAY_RANGE in response.text
    assert "replacement-key" not in response.text


@pytest.mark.django_db
def test_create_still_requires_a_key(client, endpoint_form_data):
    response = client.post(reverse("mock:create"), endpoint_form_data(api_key=""))
    assert response.status_code == 200
    assert "This field is required." in response.text
    assert not MockEndpoint.objects.exists()
