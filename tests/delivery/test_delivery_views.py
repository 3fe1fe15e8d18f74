"""History, the delivery page, Copy as cURL and the resend buttons."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sandbox import spec
from sandbox.delivery.models import Delivery
from sandbox.delivery.selectors import HistoryFilters, delivery_history
from sandbox.subscriptions.services import subscription_delete
from tests.factories import make_delivery, make_subscription


def _history(client, **params):
    return client.get(reverse("delivery:history"), params)


@pytest.mark.django_db
def test_history_lists_newest_first(client):
    subscription = make_subscription()
    first = make_delivery(subscription=subscription)
    second = make_delivery(subscription=subscription)
    html = _history(client).content.decode()
    assert html.index(f"history-row-{second.pk}") < html.index(
        f"history-row-{first.pk}"
    )


@pytest.mark.django_db
def test_history_keyset_pagination_walks_everything_once():
    subscription = make_subscription()
    made = [make_delivery(subscription=subscription).pk for _ in range(7)]
    seen, before = [], None
    while True:
        page = delivery_history(filters=HistoryFilters(), before=before, limit=3)
        seen += [d.pk for d in page.deliveries]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == sorted(made, reverse=True)


@pytest.mark.django_db
def test_history_filters_by_type_event_and_subscription(client):
    one = make_subscription(name="One")
    two = make_subscription(name="Two", endpoint_url="http://127.0.0.1:9/two")
    track = make_delivery(subscription=one, event=spec.sample_event("track"))
    identify = make_delivery(subscription=two, event=spec.sample_event("identify"))
    order = make_delivery(
        subscription=one, event=spec.sample_event("track", template="Order Completed")
    )
    html = _history(client, type="identify").content.decode()
    assert f"history-row-{identify.pk}" in html
    assert f"history-row-{track.pk}" not in html
    html = _history(client, event="Order Completed").content.decode()
    assert f"history-row-{order.pk}" in html
    assert f"history-row-{track.pk}" not in html
    html = _history(client, subscription=two.pk).content.decode()
    assert f"history-row-{identify.pk}" in html
    assert f"history-row-{order.pk}" not in html


@pytest.mark.django_db(transaction=True)
def test_history_filters_by_outcome_and_status(client, receiver, deliver_due):
    ok = make_delivery(subscription=make_subscription(endpoint_url=receiver.url("/ok")))
    bad = make_delivery(
        subscription=make_subscription(
            name="Bad", endpoint_url=receiver.url("/status/401")
        )
    )
    deliver_due()
    html = _history(client, outcome="red").content.decode()
    assert f"history-row-{bad.pk}" in html
    assert f"history-row-{ok.pk}" not in html
    html = _history(client, status=200).content.decode()
    assert f"history-row-{ok.pk}" in html
    assert f"history-row-{bad.pk}" not in html


@pytest.mark.django_db
def test_history_searches_message_user_and_anonymous_ids(client):
    subscription = make_subscription()
    event = spec.sample_event("track")
    event.update(userId="user-42", anonymousId="anon-42", messageId="msg-42")
    found = make_delivery(subscription=subscription, event=event)
    other = make_delivery(subscription=subscription)
    for term in ("user-42", "anon-42", "msg-42"):
        html = _history(client, q=term).content.decode()
        assert f"history-row-{found.pk}" in html
        assert f"history-row-{other.pk}" not in html


@pytest.mark.django_db
def test_history_time_range_and_bad_filter(client):
    make_delivery(subscription=make_subscription())
    html = _history(client, since="2000-01-01T00:00", until="2000-01-02T00:00")
    assert b"No deliveries match." in html.content
    html = _history(client, status="abc")
    assert b"Fix the filters above" in html.content


@pytest.mark.django_db(transaction=True)
def test_detail_shows_hostile_response_as_text(client, receiver, deliver_due):
    delivery = make_delivery(
        subscription=make_subscription(endpoint_url=receiver.url("/html"))
    )
    deliver_due()
    html = client.get(reverse("delivery:detail", args=[delivery.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html


@pytest.mark.django_db(transaction=True)
def test_detail_masks_the_api_key_and_decodes_settings(client, receiver, deliver_due):
    subscription = make_subscription(
        endpoint_url=receiver.url("/ok"),
        api_key="sk_live_secret_9876",
        custom_settings={"region": "eu"},
    )
    delivery = make_delivery(subscription=subscription)
    deliver_due()
    html = client.get(reverse("delivery:detail", args=[delivery.pk])).content.decode()
    assert "sk_live_secret_9876" not in html
    assert "c2tfbGl2ZV9zZWNyZXRfOTg3Njo=" not in html  # the key in base64
    assert "••••••••9876" in html
    assert "colon present, empty password" in html
    assert "&quot;region&quot;: &quot;eu&quot;" in html
    assert ">Attempt 1" in html


@pytest.mark.django_db(transaction=True)
def test_copy_as_curl_has_the_real_request(client, receiver, deliver_due):
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    delivery = make_delivery(subscription=subscription)
    deliver_due()
    response = client.get(reverse("delivery:curl", args=[delivery.pk, 1]))
    text = response.content.decode()
    assert text.startswith(f"curl -X POST {receiver.url('/ok')}")
    assert "-H 'Authorization: Basic c2VnbWVudDo='" in text
    assert "-H 'User-Agent: Segment.io/1.0'" in text
    assert "--data-raw '{" in text
    # The command carries the key: the browser must not keep it.
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_resend_keeps_message_id_and_resend_as_new_does_not(client):
    original = make_delivery(subscription=make_subscription())
    url = reverse("delivery:resend", args=[original.pk])
    client.post(url)
    client.post(url, {"as_new": "1"})
    same, new = Delivery.objects.filter(resend_of=original).order_by("pk")
    assert same.message_id == original.message_id
    assert same.payload == original.payload
    assert new.message_id != original.message_id
    assert new.payload["receivedAt"] != original.payload["receivedAt"]
    assert new.payload["event"] == original.payload["event"]


@pytest.mark.django_db
def test_deleted_subscription_keeps_its_history(client):
    subscription = make_subscription(name="Soon gone")
    delivery = make_delivery(subscription=subscription)
    subscription_delete(subscription=subscription)
    delivery.refresh_from_db()
    assert delivery.subscription is None
    html = _history(client).content.decode()
    assert "Soon gone" in html
    detail = client.get(reverse("delivery:detail", args=[delivery.pk]))
    assert b"no longer a saved subscription" in detail.content
    client.post(reverse("delivery:resend", args=[delivery.pk]))
    assert Delivery.objects.filter(resend_of=delivery).count() == 1


@pytest.mark.django_db
def test_unknown_delivery_is_a_clear_404(client):
    response = client.get(reverse("delivery:detail", args=[999]))
    assert response.status_code == 404
    assert b"No such delivery" in response.content


@pytest.mark.django_db
def test_resend_requires_csrf():
    delivery = make_delivery(subscription=make_subscription())
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("delivery:resend", args=[delivery.pk]))
    assert response.status_code == 403


@pytest.mark.django_db
def test_deleting_a_subscription_stops_its_pending_deliveries():
    subscription = make_subscription()
    delivery = make_delivery(subscription=subscription)
    subscription_delete(subscription=subscription)
    delivery.refresh_from_db()
    assert delivery.state == "failed"
    assert delivery.reason == (
        "The subscription was deleted; no further attempts are made."
    )
    assert delivery.next_attempt_at is None


@pytest.mark.django_db
def test_history_marks_and_filters_injected_duplicates(client):
    import random

    from sandbox.delivery import conditions, services

    run = services.run_enqueue(
        target=services.Target.of(make_subscription()),
        event=spec.sample_event("track"),
        door="composer",
        conditions=conditions.Conditions(copies=2, duplicate_rate=1.0),
        rng=random.Random(0),
    )
    duplicates = list(run.deliveries.filter(injected_duplicate=True))
    html = _history(client, duplicates="on").content.decode()
    assert html.count("injected duplicate</span>") == 2
    for duplicate in duplicates:
        assert f"history-row-{duplicate.pk}" in html
    html = _history(client, state="pending").content.decode()
    assert html.count("history-row-") == 4
    assert _history(client, state="delivered").content.count(b"history-row-") == 0


@pytest.mark.django_db
def test_feed_renders_the_latest_rows_for_a_reconnected_page(client):
    delivery = make_delivery(subscription=make_subscription())
    html = client.get(reverse("delivery:feed")).content.decode()
    assert html.lstrip().startswith('<div id="delivery-feed"')
    assert f'id="delivery-row-{delivery.pk}"' in html


def _retrying_delivery(receiver, deliver_due):
    sub = make_subscription(endpoint_url=receiver.url("/status/503"))
    delivery = make_delivery(subscription=sub)
    deliver_due()
    delivery.refresh_from_db()
    assert delivery.state == "retrying"
    return delivery


@pytest.mark.django_db(transaction=True)
def test_feed_row_shows_timeline_countdown_and_buttons(client, receiver, deliver_due):
    delivery = _retrying_delivery(receiver, deliver_due)
    html = client.get(reverse("delivery:feed")).content.decode()
    row = html[html.index(f'id="delivery-row-{delivery.pk}"') :]
    assert '<ol class="mini-timeline"' in row
    assert ">503</li>" in row
    assert f'data-countdown="{delivery.next_attempt_at.isoformat()}' in row
    assert reverse("delivery:retry-now", args=[delivery.pk]) in row
    assert reverse("delivery:stop", args=[delivery.pk]) in row


@pytest.mark.django_db(transaction=True)
def test_detail_shows_timeline_and_next_attempt(client, receiver, deliver_due):
    delivery = _retrying_delivery(receiver, deliver_due)
    html = client.get(reverse("delivery:detail", args=[delivery.pk])).content.decode()
    assert 'id="attempt-timeline"' in html
    assert 'class="next-attempt"' in html
    assert 'id="retry-now"' in html
    assert 'id="stop-retrying"' in html


@pytest.mark.django_db(transaction=True)
def test_retry_now_and_stop_views(client, receiver, deliver_due):
    delivery = _retrying_delivery(receiver, deliver_due)
    response = client.post(
        reverse("delivery:retry-now", args=[delivery.pk]),
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.next_attempt_at <= timezone.now()
    response = client.post(reverse("delivery:stop", args=[delivery.pk]))
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.state == "failed"
    again = client.post(reverse("delivery:stop", args=[delivery.pk]), follow=True)
    assert b"there is nothing left to retry" in again.content


@pytest.mark.django_db
def test_retry_now_requires_csrf():
    delivery = make_delivery(subscription=make_subscription())
    client = Client(enforce_csrf_checks=True)
    assert (
        client.post(reverse("delivery:retry-now", args=[delivery.pk])).status_code
        == 403
    )


@pytest.mark.django_db(transaction=True)
def test_latency_percentiles_per_subscription(client, receiver, deliver_due):
    from sandbox.delivery.models import Attempt
    from sandbox.delivery.selectors import latency_by_subscription

    sub = make_subscription(endpoint_url=receiver.url("/ok"))
    for _ in range(20):
        make_delivery(subscription=sub)
    deliver_due()
    Attempt.objects.filter(delivery__subscription=sub).update(latency_ms=10)
    slow = Attempt.objects.filter(delivery__subscription=sub).order_by("pk")[:2]
    Attempt.objects.filter(pk__in=[a.pk for a in slow]).update(latency_ms=900)
    latency = latency_by_subscription(subscription_ids=[sub.pk])[sub.pk]
    assert (latency.p50, latency.p95, latency.attempts) == (10, 900, 20)
    listing = client.get(reverse("subscriptions:list")).content.decode()
    assert "10 / 900 ms" in listing
    page = client.get(reverse("subscriptions:edit", args=[sub.pk])).content.decode()
    assert "p50 10 ms" in page and "p95 900 ms" in page
