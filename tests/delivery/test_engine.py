"""The engine against a real local endpoint: requests, outcomes and faults."""

import base64
import json
import socket

import pytest

from sandbox.delivery import queue, services
from sandbox.delivery.models import Attempt, Delivery, State
from tests.factories import make_delivery, make_subscription

pytestmark = pytest.mark.django_db(transaction=True)


def _send(receiver, deliver_due, path, **subscription):
    sub = make_subscription(endpoint_url=receiver.url(path), **subscription)
    delivery = make_delivery(subscription=sub)
    assert deliver_due() == 1
    delivery.refresh_from_db()
    return delivery, delivery.attempts.get()


def test_engine_sends_exactly_segments_headers(receiver, deliver_due):
    delivery, _ = _send(
        receiver,
        deliver_due,
        "/ok",
        api_key="segment",
        custom_settings={"region": "eu"},
    )
    received = receiver.received[0]
    names = [name for name, _ in received.raw_headers]
    assert names == [
        "Host",
        "Accept",
        "Authorization",
        "Cache-Control",
        "Connection",
        "Content-Length",
        "Content-Type",
        "User-Agent",
        "X-Segment-Settings",
    ]
    assert received.header("Authorization") == "Basic c2VnbWVudDo="
    assert received.header("User-Agent") == "Segment.io/1.0"
    assert received.header("Content-Type") == "application/json"
    assert received.header("Accept") == "*/*"
    assert received.header("Cache-Control") == "no-cache"
    assert received.header("Connection") == "Keep-Alive"
    assert int(received.header("Content-Length")) == len(received.body)
    settings = json.loads(base64.b64decode(received.header("X-Segment-Settings")))
    assert settings == {"region": "eu"}
    assert received.json == delivery.payload


def test_engine_records_green_delivery_with_response(receiver, deliver_due):
    delivery, attempt = _send(receiver, deliver_due, "/ok")
    assert delivery.state == State.DELIVERED
    assert delivery.outcome == "green"
    assert delivery.response_status == 200
    assert attempt.response_body == '{"success": true}'
    assert ["Content-Type", "application/json; charset=utf-8"] in (
        attempt.response_headers
    )
    assert attempt.latency_ms is not None
    assert attempt.request_headers[1] == ["Authorization", "Basic c2VnbWVudDo="]
    assert json.loads(attempt.request_body) == delivery.payload


def test_engine_discards_401_with_segments_reason(receiver, deliver_due):
    delivery, attempt = _send(receiver, deliver_due, "/status/401")
    assert delivery.state == State.DISCARDED
    assert delivery.outcome == "red"
    assert attempt.reason == (
        "the endpoint says the API key is invalid or expired (401): "
        "answered 401 on purpose"
    )
    assert delivery.next_attempt_at is None


def test_engine_marks_501_unsupported_and_yellow(receiver, deliver_due):
    delivery, attempt = _send(receiver, deliver_due, "/status/501")
    assert delivery.state == State.UNSUPPORTED
    assert attempt.outcome == "yellow"


def test_engine_schedules_retry_for_503(receiver, deliver_due):
    delivery, attempt = _send(receiver, deliver_due, "/status/503")
    assert delivery.state == State.RETRYING
    assert attempt.outcome == "red"
    assert delivery.next_attempt_at > attempt.started_at


def test_engine_times_out_a_hanging_endpoint(receiver, deliver_due):
    delivery, attempt = _send(receiver, deliver_due, "/hang", timeout_seconds=0.3)
    assert attempt.error_kind == "timeout"
    assert attempt.error_message == (
        "The endpoint did not answer within 0.3 s, the subscription's timeout."
    )
    assert attempt.response_status is None
    assert delivery.state == State.RETRYING
    assert 250 <= attempt.latency_ms < 5000


def test_engine_reports_refused_connection(deliver_due):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sub = make_subscription(endpoint_url=f"http://127.0.0.1:{port}/hook")
    delivery = make_delivery(subscription=sub)
    deliver_due()
    attempt = Attempt.objects.get(delivery=delivery)
    assert attempt.error_kind == "refused"
    assert attempt.error_message == (
        f"Connection refused by 127.0.0.1:{port}: nothing is listening there."
    )


def test_engine_reports_reset_mid_response(receiver, deliver_due):
    delivery, attempt = _send(receiver, deliver_due, "/reset")
    assert attempt.error_kind == "reset"
    assert attempt.error_message == (
        "The endpoint closed the connection before the response was complete."
    )
    assert delivery.state == State.RETRYING


def test_engine_reports_dns_failure(deliver_due):
    sub = make_subscription(endpoint_url="http://no-such-host.invalid/hook")
    delivery = make_delivery(subscription=sub)
    deliver_due()
    attempt = Attempt.objects.get(delivery=delivery)
    assert attempt.error_kind == "dns"
    assert "could not be resolved" in attempt.error_message


def test_engine_truncates_a_5mb_answer_at_256kb(receiver, deliver_due):
    delivery, attempt = _send(receiver, deliver_due, "/huge")
    assert attempt.response_truncated is True
    assert len(attempt.response_body) == 256 * 1024
    assert delivery.state == State.DELIVERED


def test_engine_keeps_html_answer_as_text(receiver, deliver_due):
    delivery, attempt = _send(receiver, deliver_due, "/html")
    assert attempt.response_body.startswith("<html><script>alert(1)</script>")
    assert attempt.reason == "internal error at the endpoint (500)"
    assert delivery.state == State.RETRYING


def test_engine_does_not_follow_redirects(receiver, deliver_due):
    delivery, attempt = _send(receiver, deliver_due, "/redirect")
    assert [r.path for r in receiver.received] == ["/redirect"]
    assert delivery.outcome == "red"
    assert delivery.state == State.DISCARDED
    assert attempt.reason == (
        "redirect: Segment does not follow redirects (302) to "
        "https://elsewhere.example/hook"
    )


def test_a_redirect_says_where_then_what_the_endpoint_said(receiver, deliver_due):
    _, attempt = _send(receiver, deliver_due, "/moved")
    assert attempt.reason == (
        "redirect: Segment does not follow redirects (301) to "
        "https://elsewhere.example/new: Moved."
    )


def test_engine_refuses_a_non_http_url_without_retrying(deliver_due):
    target = services.Target(
        name="ad hoc",
        endpoint_url="ftp://partner.example/hook",
        api_key="k",
        custom_settings={},
        timeout_seconds=5,
    )
    delivery = services.delivery_enqueue(
        target=target, event={"type": "track", "event": "x", "userId": "u"}, door="cli"
    )
    deliver_due()
    delivery.refresh_from_db()
    attempt = delivery.attempts.get()
    assert attempt.error_kind == "invalid_url"
    assert attempt.error_message == (
        "The endpoint URL must start with http:// or https:// "
        "(got 'ftp://partner.example/hook')."
    )
    assert delivery.state == State.DISCARDED


def test_retry_policy_none_fails_at_once(receiver, deliver_due):
    sub = make_subscription(
        endpoint_url=receiver.url("/status/500"), retry_policy="none"
    )
    delivery = services.delivery_enqueue(
        target=services.Target.of(sub),
        event={"type": "track", "event": "x", "userId": "u"},
        door="cli",
    )
    deliver_due()
    delivery.refresh_from_db()
    assert delivery.state == State.FAILED


def test_two_engines_never_claim_the_same_delivery(receiver):
    sub = make_subscription(endpoint_url=receiver.url("/ok"))
    for _ in range(20):
        make_delivery(subscription=sub)

    def claim(name):
        return queue.deliveries_claim(
            claimer=name, token=f"{name}#1", limit=12, lease_seconds=60
        )

    first, second = claim("a"), claim("b")
    assert len(first) == 12
    assert len(second) == 8
    assert not {c.delivery.pk for c in first} & {c.delivery.pk for c in second}
    assert claim("c") == []
    # Each claimed delivery has its attempt written ahead, request included.
    assert Attempt.objects.filter(outcome="").count() == 20
    assert first[0].attempt.request_headers[1] == [
        "Authorization",
        "Basic c2VnbWVudDo=",
    ]


def test_disabled_subscription_refuses_to_enqueue():
    sub = make_subscription(enabled=False)
    with pytest.raises(services.DeliveryRefused) as refusal:
        make_delivery(subscription=sub)
    assert str(refusal.value) == (
        "The subscription 'Partner webhook' is disabled; enable it to send."
    )
    assert Delivery.objects.count() == 0


def test_next_due_is_the_earliest_open_unclaimed_row_after_the_time_asked():
    from datetime import timedelta

    from django.utils import timezone

    subscription = make_subscription()
    now = timezone.now().replace(microsecond=500_000)
    rows = [make_delivery(subscription=subscription) for _ in range(4)]
    Delivery.objects.update(next_attempt_at=None)
    assert queue.deliveries_next_due(after=now) is None
    soon = now + timedelta(seconds=3, microseconds=250)
    Delivery.objects.filter(pk=rows[0].pk).update(next_attempt_at=soon)
    Delivery.objects.filter(pk=rows[1].pk).update(
        next_attempt_at=now + timedelta(seconds=1), claimed_until=now
    )
    Delivery.objects.filter(pk=rows[2].pk).update(
        next_attempt_at=now + timedelta(seconds=2), state=State.DELIVERED
    )
    Delivery.objects.filter(pk=rows[3].pk).update(next_attempt_at=now)
    assert queue.deliveries_next_due(after=now) == soon
    assert queue.deliveries_next_due(after=soon) is None
