"""The Event Tester: generate, validate as you type, send, confirm bad events."""

import html
import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from sandbox import spec
from sandbox.delivery.models import Delivery, Door, State
from sandbox.spec import validation
from tests.factories import make_delivery, make_subscription

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _editor_event(response) -> dict:
    """The JSON in the rendered editor, as the browser would read it."""
    found = re.search(
        r"<textarea[^>]*>(.*?)</textarea>", response.content.decode(), re.S
    )
    return json.loads(html.unescape(found.group(1)))


def _post_send(client, subscription, payload, **extra):
    data = {
        "subscription": subscription.pk,
        "event_type": "track",
        "source": "analytics.js",
        "template": "",
        "payload": payload if isinstance(payload, str) else json.dumps(payload),
        **extra,
    }
    return client.post(reverse("tester:send"), data, **HTMX)


def test_home_starts_with_a_valid_order_completed(client):
    make_subscription(name="Demo subscription")
    response = client.get(reverse("tester:home"))
    assert response.status_code == 200
    form = response.context["form"]
    event = json.loads(form.initial["payload"])
    assert event["event"] == "Order Completed"
    assert spec.validate_event(event) == []
    assert b'ws-connect="/ws/deliveries/"' in response.content


def test_home_without_subscriptions_offers_to_create_one(client):
    response = client.get(reverse("tester:home"))
    assert b"No subscription yet." in response.content


@pytest.mark.parametrize("event_type", spec.EVENT_TYPES)
def test_sample_generates_a_valid_event_of_each_type(client, event_type):
    response = client.get(
        reverse("tester:sample"),
        {"event_type": event_type, "source": "server", "template": ""},
        **HTMX,
    )
    assert response.status_code == 200
    event = _editor_event(response)
    assert event["type"] == event_type
    assert spec.validate_event(event) == []


def test_sample_with_template_is_a_track_with_that_name(client):
    response = client.get(
        reverse("tester:sample"),
        {"event_type": "identify", "source": "ios", "template": "Video Ad Started"},
        **HTMX,
    )
    event = _editor_event(response)
    assert event["type"] == "track"
    assert event["event"] == "Video Ad Started"
    assert 'value="track" selected' in response.content.decode()


def test_sample_rejects_unknown_type(client):
    response = client.get(reverse("tester:sample"), {"event_type": "purchase"})
    assert response.status_code == 400


def test_validate_shows_line_and_column_of_invalid_json(client):
    response = client.post(
        reverse("tester:validate"), {"payload": '{\n  "type": "track",\n  oops\n}'}
    )
    assert b"Invalid JSON at line 3, column 3" in response.content


def test_validate_lists_spec_problems(client):
    response = client.post(
        reverse("tester:validate"), {"payload": '{"type": "track", "userId": "u"}'}
    )
    assert validation.MISSING_EVENT_NAME.encode() in response.content.replace(
        b"&quot;", b'"'
    )


def test_validate_confirms_a_good_event(client):
    event = spec.sample_event("identify")
    response = client.post(reverse("tester:validate"), {"payload": json.dumps(event)})
    assert b"Valid Segment event" in response.content


def test_send_enqueues_and_returns_at_once(client):
    subscription = make_subscription()
    event = spec.sample_event("track", template="Order Completed")
    response = _post_send(client, subscription, event)
    assert response.status_code == 200
    delivery = Delivery.objects.get()
    assert delivery.state == State.PENDING
    assert delivery.door == Door.COMPOSER
    assert delivery.message_id == event["messageId"]
    html = response.content.decode()
    assert f'id="delivery-row-{delivery.pk}"' in html
    assert 'hx-swap-oob="afterbegin:#delivery-feed"' in html
    assert "Waiting for the first attempt" in html


def test_send_invalid_json_is_refused_with_position(client):
    subscription = make_subscription()
    response = _post_send(client, subscription, '{"type": "track",}')
    assert b"Invalid JSON at line 1, column 18" in response.content
    assert Delivery.objects.count() == 0


def test_send_spec_invalid_event_asks_for_confirmation(client):
    subscription = make_subscription()
    response = _post_send(client, subscription, {"type": "track", "event": "x"})
    assert b"Send anyway" in response.content
    assert validation.MISSING_IDENTITY.encode() in response.content
    assert Delivery.objects.count() == 0


def test_send_anyway_records_the_problems(client):
    subscription = make_subscription()
    _post_send(client, subscription, {"type": "track", "event": "x"}, confirm="1")
    delivery = Delivery.objects.get()
    assert delivery.spec_problems == [validation.MISSING_IDENTITY]


def test_send_40kb_event_needs_confirmation(client):
    subscription = make_subscription()
    event = spec.sample_event("track")
    event["properties"]["blob"] = "x" * 40_000
    response = _post_send(client, subscription, event)
    assert b"Segment accepts at most 32 KB" in response.content
    assert Delivery.objects.count() == 0


def test_send_unknown_type_needs_confirmation(client):
    subscription = make_subscription()
    response = _post_send(client, subscription, {"type": "purchase", "userId": "u"})
    assert b"Unknown type &#x27;purchase&#x27;" in response.content


def test_send_to_disabled_subscription_says_so(client):
    subscription = make_subscription(enabled=False)
    response = _post_send(client, subscription, spec.sample_event("page"))
    assert b"is disabled; enable it to send." in response.content


def test_send_without_htmx_redirects(client):
    subscription = make_subscription()
    response = client.post(
        reverse("tester:send"),
        {
            "subscription": subscription.pk,
            "event_type": "track",
            "source": "analytics.js",
            "payload": json.dumps(spec.sample_event("track")),
        },
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    delivery = Delivery.objects.get()
    assert 'id="delivery-detail"' in page
    assert f"#{delivery.pk}" in page or delivery.message_id in page


def test_send_requires_csrf_token():
    subscription = make_subscription()
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        reverse("tester:send"),
        {"subscription": subscription.pk, "payload": "{}", "event_type": "track"},
    )
    assert response.status_code == 403


def test_edit_and_resend_prefills_the_composer(client):
    subscription = make_subscription()
    delivery = make_delivery(subscription=subscription)
    response = client.get(reverse("tester:home"), {"from": delivery.pk})
    initial = response.context["form"].initial
    assert json.loads(initial["payload"]) == delivery.payload
    assert initial["subscription"] == subscription.pk
    assert b"It keeps its messageId" in response.content


def test_home_starts_on_the_oldest_enabled_subscription(client):
    make_subscription(name="Off", enabled=False)
    oldest = make_subscription(name="Z first enabled")
    make_subscription(name="A later")
    response = client.get(reverse("tester:home"))
    assert response.context["form"].initial["subscription"] == oldest.pk


def test_edit_and_resend_of_a_missing_delivery_starts_with_a_sample(client):
    make_subscription()
    response = client.get(reverse("tester:home"), {"from": "999999"})
    event = json.loads(response.context["form"].initial["payload"])
    assert event["event"] == "Order Completed"


def test_send_with_conditions_reports_what_was_applied(client):
    subscription = make_subscription()
    response = _post_send(
        client,
        subscription,
        spec.sample_event("track"),
        copies="4",
        concurrency="2",
        shuffle="on",
        duplicate_rate="1",
        jitter_ms="10",
    )
    html = response.content.decode()
    assert "Applied: 4 events, concurrency 2, shuffled, 4 duplicates injected" in html
    assert Delivery.objects.count() == 8
    assert Delivery.objects.filter(injected_duplicate=True).count() == 4


def test_send_with_bad_conditions_says_which(client):
    subscription = make_subscription()
    response = _post_send(
        client, subscription, spec.sample_event("track"), copies="5000"
    )
    assert b"Ensure this value is less than or equal to 1000." in response.content
    assert Delivery.objects.count() == 0
