"""Segment's retry story against a real endpoint, compressed by the time scale."""

import asyncio
import itertools
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from sandbox import spec
from sandbox.delivery import queue, retry, services
from sandbox.delivery.engine import Engine
from sandbox.delivery.models import Attempt, Delivery, State
from tests.factories import make_delivery, make_subscription

pytestmark = pytest.mark.django_db(transaction=True)


async def _run_until_settled(pks: list[int], *, timeout: float = 15) -> None:
    engine = Engine(concurrency=10)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run_forever(stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            still_open = await Delivery.objects.filter(
                pk__in=pks, state__in=("pending", "retrying")
            ).acount()
            if not still_open:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("deliveries did not settle in time")
    finally:
        stop.set()
        await task


async def _make(receiver, path, **subscription):
    sub = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url(path), **subscription
    )
    return await database_sync_to_async(make_delivery)(subscription=sub)


@pytest.mark.slow
async def test_fail_first_three_then_succeed_on_schedule(receiver):
    delivery = await _make(receiver, "/flaky/3/503", time_scale=240)
    await _run_until_settled([delivery.pk])
    await delivery.arefresh_from_db()
    assert delivery.state == State.DELIVERED
    assert delivery.attempt_count == 4
    attempts = [a async for a in Attempt.objects.filter(delivery=delivery)]
    assert [a.response_status for a in attempts] == [503, 503, 503, 200]
    assert [a.outcome for a in attempts] == ["red", "red", "red", "green"]
    assert receiver.count("/flaky/3/503", delivery.message_id) == 4
    # Each wait is Segment's backoff (28 s doubling, ±20%) divided by 240;
    # Retry-After: 1 on the 503s is scaled the same way, so the backoff or
    # Retry-After, whichever is longer, bounds it from below.
    for number, (before, after) in enumerate(itertools.pairwise(attempts), start=1):
        gap = (after.started_at - before.started_at).total_seconds()
        nominal = max(28 * 2 ** (number - 1) * 0.8, 1) / 240
        assert gap >= nominal, (number, gap)
        assert gap < nominal * 1.5 + 1.0, (number, gap)


async def test_401_is_one_attempt_and_not_retried(receiver):
    delivery = await _make(receiver, "/status/401", time_scale=240)
    await _run_until_settled([delivery.pk])
    await delivery.arefresh_from_db()
    assert delivery.state == State.DISCARDED
    assert delivery.attempt_count == 1
    assert delivery.reason == (
        "not retried: the endpoint says the API key is invalid or expired (401): "
        "answered 401 on purpose"
    )


async def test_501_is_unsupported_and_not_retried(receiver):
    delivery = await _make(receiver, "/status/501", time_scale=240)
    await _run_until_settled([delivery.pk])
    await delivery.arefresh_from_db()
    assert delivery.state == State.UNSUPPORTED
    assert delivery.reason.startswith("not retried: unsupported event type (501)")


@pytest.mark.slow
async def test_retries_exhaust_after_ten_attempts(receiver):
    delivery = await _make(receiver, "/status/500", time_scale=10_000)
    await _run_until_settled([delivery.pk], timeout=30)
    await delivery.arefresh_from_db()
    assert delivery.state == State.FAILED
    assert delivery.attempt_count == 10
    assert "failed after 10 attempts (retries exhausted)" in delivery.reason


def test_retry_now_brings_the_next_attempt_forward(receiver, deliver_due):
    sub = make_subscription(endpoint_url=receiver.url("/flaky/1/503"))
    delivery = make_delivery(subscription=sub)
    deliver_due()
    delivery.refresh_from_db()
    assert delivery.state == State.RETRYING
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=10)
    assert deliver_due() == 0
    services.delivery_retry_now(delivery=delivery)
    assert deliver_due() == 1
    delivery.refresh_from_db()
    assert delivery.state == State.DELIVERED
    assert delivery.attempt_count == 2


def test_stop_retrying_ends_the_delivery(receiver, deliver_due):
    sub = make_subscription(endpoint_url=receiver.url("/status/503"))
    delivery = make_delivery(subscription=sub)
    deliver_due()
    delivery.refresh_from_db()
    services.delivery_stop_retrying(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.state == State.FAILED
    assert delivery.reason == (
        "Stopped by you after 1 attempt; no further attempts are made."
    )
    assert delivery.next_attempt_at is None
    with pytest.raises(services.DeliveryRefused) as refusal:
        services.delivery_retry_now(delivery=delivery)
    assert str(refusal.value) == (
        f"Delivery #{delivery.pk} is failed: there is nothing left to retry."
    )


def test_an_interrupted_attempt_is_recorded_not_sent_again(receiver, deliver_due):
    """A claimer that died mid-attempt: the attempt is marked, the retry follows."""
    sub = make_subscription(endpoint_url=receiver.url("/ok"), time_scale=10_000)
    delivery = make_delivery(subscription=sub)
    dead = "some-other-host:1:abc"
    claimed = queue.deliveries_claim(
        claimer=dead, token=f"{dead}#1", limit=1, lease_seconds=0.0
    )
    assert len(claimed) == 1
    time.sleep(0.01)  # the zero-length lease lapses
    assert queue.deliveries_recover() == 1
    first = Attempt.objects.get(delivery=delivery, number=1)
    assert first.error_kind == "interrupted"
    assert first.outcome == "red"
    deliver_due()
    delivery.refresh_from_db()
    assert delivery.state == State.DELIVERED
    assert delivery.attempt_count == 2
    assert len(receiver.received) == 1


def test_dedupe_drops_a_repeat_inside_the_window_with_a_link():
    sub = make_subscription()
    event = spec.sample_event("track")
    first = make_delivery(subscription=sub, event=event)
    repeat = make_delivery(subscription=sub, event=event)
    assert repeat.state == State.DEDUPLICATED
    assert repeat.duplicate_of == first
    assert repeat.next_attempt_at is None
    assert repeat.reason.startswith(
        f"Deduplicated: messageId {event['messageId']!r} was already sent to "
        "Partner webhook at "
    )
    assert repeat.reason.endswith(f"(#{first.pk}); Segment drops repeats within 24 h.")


def test_dedupe_is_per_subscription_and_off_when_disabled():
    event = spec.sample_event("track")
    one = make_subscription(name="One")
    two = make_subscription(name="Two", dedupe_enabled=False)
    make_delivery(subscription=one, event=event)
    assert make_delivery(subscription=two, event=event).state == State.PENDING
    assert make_delivery(subscription=two, event=event).state == State.PENDING


def test_dedupe_window_expires():
    sub = make_subscription(dedupe_window_hours=1)
    event = spec.sample_event("track")
    first = make_delivery(subscription=sub, event=event)
    Delivery.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    assert make_delivery(subscription=sub, event=event).state == State.PENDING


def test_resend_is_deduplicated_unless_bypassed():
    original = make_delivery(subscription=make_subscription())
    resent = services.delivery_resend(delivery=original, as_new=False)
    assert resent.state == State.DEDUPLICATED
    bypassed = services.delivery_resend(
        delivery=original, as_new=False, bypass_dedupe=True
    )
    assert bypassed.state == State.PENDING
    assert bypassed.message_id == original.message_id


def test_schedule_matches_segment_reference():
    delays = [retry.BASE_DELAY_SECONDS * 2**n for n in range(retry.MAX_RETRIES)]
    assert [round(d) for d in delays] == [28, 56, 112, 224, 448, 896, 1792, 3584, 7168]
