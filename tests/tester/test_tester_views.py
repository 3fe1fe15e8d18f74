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
from sandbox.tester import composer, forms
from tests.factories import make_delivery, make_subscription

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _editor_event(response) -> dict:
    """The JSON in the rendered editor, as the browser would read it."""
    found = re.search(
        r"<textarea[^>]*>(.*?)</textarea>", response.content.decode(), re.S
    )
    return json.loads(html.unescape(found.group(1)))


def html_text(response) -> str:
    return html.unescape(response.content.decode())


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
    response = client.post(
        reverse("tester:sample"),
        {"event_type": event_type, "source": "server", "template": ""},
        **HTMX,
    )
    assert response.status_code == 200
    event = _editor_event(response)
    assert event["type"] == event_type
    assert spec.validate_event(event) == []


def test_sample_with_template_is_a_track_with_that_name(client):
    response = client.post(
        reverse("tester:sample"),
        {"event_type": "identify", "source": "ios", "template": "Video Ad Started"},
        **HTMX,
    )
    event = _editor_event(response)
    assert event["type"] == "track"
    assert event["event"] == "Video Ad Started"
    assert 'value="track" selected' in response.content.decode()


def test_sample_rejects_unknown_type(client):
    response = client.post(reverse("tester:sample"), {"event_type": "purchase"})
    assert response.status_code == 400
    assert response.content.decode() == forms.SAMPLE_REFUSED


def test_sample_is_a_post_and_never_reads_the_editor(client):
    """The editor's text once travelled in the GET URL, which a 20 KB event
    overflowed; the sample needs only the selects."""
    assert client.get(reverse("tester:sample")).status_code == 405
    big = json.dumps({"type": "track", "blob": "b" * 20_000})
    response = client.post(
        reverse("tester:sample"),
        {"event_type": "screen", "source": "ios", "template": "", "payload": big},
        **HTMX,
    )
    assert response.status_code == 200
    assert "b" * 100 not in response.content.decode()
    event = _editor_event(response)
    assert event["type"] == "screen"
    assert event["context"]["library"]["name"] == "analytics-swift"


def test_an_app_source_turns_a_page_sample_into_a_screen(client):
    data = {"event_type": "page", "source": "ios", "template": ""}
    response = client.post(
        reverse("tester:sample"), {**data, "changed": "source"}, **HTMX
    )
    assert _editor_event(response)["type"] == "screen"
    # Choosing page on an app goes to the browser, where pages are.
    response = client.post(
        reverse("tester:sample"), {**data, "changed": "event_type"}, **HTMX
    )
    event = _editor_event(response)
    assert event["type"] == "page"
    assert event["context"]["library"]["name"] == "analytics.js"
    # Asked for outright, the impossible sample is refused in words.
    response = client.post(reverse("tester:sample"), data, **HTMX)
    assert response.status_code == 400
    assert "has no page call" in response.content.decode()


def test_sample_requires_csrf_token():
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("tester:sample"), {"event_type": "track"})
    assert response.status_code == 403


def test_sample_answers_with_the_selects_and_the_editor_out_of_band(client):
    response = client.post(
        reverse("tester:sample"),
        {"event_type": "identify", "source": "server", "template": ""},
        **HTMX,
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="composer-controls"')
    assert re.search(r'<textarea[^>]*id="id_payload"[^>]*hx-swap-oob="true"', html)
    assert re.search(r"<textarea[^>]*data-sample", html)
    # A sample is no longer the stored event being edited.
    assert re.search(r'id="editing-hint" hidden hx-swap-oob="true"', html)


def test_choosing_another_type_leaves_the_semantic_event_behind(client):
    data = {"event_type": "identify", "source": "server", "template": "Order Completed"}
    response = client.post(
        reverse("tester:sample"), {**data, "changed": "event_type"}, **HTMX
    )
    event = _editor_event(response)
    assert event["type"] == "identify"
    assert 'value="identify" selected' in response.content.decode()
    # Choosing the semantic event, though, makes a track of it.
    response = client.post(
        reverse("tester:sample"), {**data, "changed": "template"}, **HTMX
    )
    event = _editor_event(response)
    assert (event["type"], event["event"]) == ("track", "Order Completed")


def test_validate_shows_line_and_column_of_invalid_json(client):
    response = client.post(
        reverse("tester:validate"), {"payload": '{\n  "type": "track",\n  oops\n}'}
    )
    assert b"Invalid JSON at line 3, column 3" in response.content


def test_validate_gives_the_editor_the_error_position(client):
    response = client.post(
        reverse("tester:validate"),
        {"payload": '{\n  "emoji": "\U0001f600",  oops\n}'},
    )
    html = response.content.decode()
    assert "Invalid JSON at line 2, column 18" in html
    # The editor counts UTF-16 code units: the emoji is two.
    assert 'data-line="2" data-column="19"' in html
    assert 'data-severity="error"' in html


def test_validate_points_at_a_nan_the_decoder_gave_no_place_for(client):
    response = client.post(
        reverse("tester:validate"),
        {"payload": '{\n  "type": "track",\n  "x": NaN\n}'},
    )
    assert 'data-line="3" data-column="8"' in response.content.decode()


def test_validate_warns_about_a_key_written_twice(client):
    event = spec.sample_event("track", template="Order Completed")
    text = json.dumps(event)[:-1] + ', "userId": "second"}'
    text = text.replace('"properties": {', '"properties": {"x": 1, "x": 2, ', 1)
    response = client.post(reverse("tester:validate"), {"payload": text})
    html = html_text(response)
    assert (
        composer.DUPLICATE_KEY.format(key='"x"', times="twice", where="properties")
        in html
    )
    assert (
        composer.DUPLICATE_KEY.format(
            key='"userId"', times="twice", where=composer.THE_EVENT
        )
        in html
    )
    # A warning: the event is still a valid one, and sends without confirming.
    assert "Valid Segment event" in html
    assert 'data-path="properties" data-key="x"' in html


def test_a_key_written_twice_sends_without_confirming(client):
    subscription = make_subscription()
    text = json.dumps(spec.sample_event("identify"))[:-1] + ', "userId": "last"}'
    _post_send(client, subscription, text)
    assert Delivery.objects.get().payload["userId"] == "last"


def test_validate_tells_the_selects_what_the_event_is(client):
    event = spec.sample_event("track", source="android", template="Product Viewed")
    response = client.post(reverse("tester:validate"), {"payload": json.dumps(event)})
    html = response.content.decode()
    assert 'data-event-type="track"' in html
    assert 'data-source="android"' in html
    assert 'data-template="Product Viewed"' in html
    event = spec.sample_event("screen", source="ios")
    response = client.post(reverse("tester:validate"), {"payload": json.dumps(event)})
    html = response.content.decode()
    assert 'data-event-type="screen"' in html
    assert 'data-template=""' in html


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


def test_send_of_a_deduplicated_event_says_it_was_not_sent(client):
    subscription = make_subscription()
    event = spec.sample_event("track", template="Order Completed")
    _post_send(client, subscription, event)
    first = Delivery.objects.get()
    response = _post_send(client, subscription, event)
    html = html_text(response)
    second = Delivery.objects.exclude(pk=first.pk).get()
    assert second.state == State.DEDUPLICATED
    assert f"Not sent.</strong> {second.reason}" in html
    assert "Sent Order Completed" not in html
    assert f'href="/deliveries/{first.pk}/"' in html
    assert f"See the first delivery, #{first.pk}" in html


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
    assert re.search(r'id="editing-hint" hidden', response.content.decode())
    assert re.search(r"<textarea[^>]*data-sample", response.content.decode())


def test_edit_and_resend_shows_the_events_own_type_and_source(client):
    subscription = make_subscription()
    event = spec.sample_event("screen", source="android")
    delivery = make_delivery(subscription=subscription, event=event)
    response = client.get(reverse("tester:home"), {"from": delivery.pk})
    initial = response.context["form"].initial
    assert (initial["event_type"], initial["source"], initial["template"]) == (
        "screen",
        "android",
        "",
    )
    assert not re.search(r"<textarea[^>]*data-sample", response.content.decode())


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
