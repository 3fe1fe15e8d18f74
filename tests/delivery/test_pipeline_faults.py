"""One bad row or one strange answer ends alone, saying why; the rest go on."""

import asyncio
import json
import statistics
import time

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from sandbox import spec
from sandbox.delivery import queue, retry, services
from sandbox.delivery.engine import Engine
from sandbox.delivery.models import Attempt, Delivery, DeliveryTarget, Door, State
from sandbox.delivery.targets import target_row
from tests.factories import make_delivery, make_subscription

pytestmark = pytest.mark.django_db(transaction=True)


def _store_poison(subscription, *, payload=None, custom_settings=None) -> Delivery:
    """A row no door would take today, stored as an older version or a bug could.

    Poisoned settings sit on an ad hoc target row (a subscription's own settings
    are checked at its form), so only that row carries them."""
    event = spec.sample_event("track")
    target = target_row(services.Target.of(subscription))
    if custom_settings is not None:
        target = DeliveryTarget.objects.create(
            name="ad hoc: poisoned settings",
            endpoint_url=subscription.endpoint_url,
            api_key=subscription.api_key,
            custom_settings=custom_settings,
            content_key="poisoned-settings",
        )
    delivery = Delivery.objects.create(
        subscription=None if custom_settings is not None else subscription,
        target=target,
        door=Door.COMPOSER,
        message_id="poison",
        event_type="track",
        payload=event,
        next_attempt_at=timezone.now(),
    )
    # The sandbox stores events as UTF-8, which cannot hold a lone surrogate: the
    # text spells it as an escape, as an older version or another program could.
    poison = payload or {**event, "properties": {"x": "\ud800"}}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE delivery_delivery SET payload = %s WHERE id = %s",
            [json.dumps(poison), delivery.pk],
        )
    delivery.refresh_from_db()
    return delivery


async def _serve(engine: Engine, pks: list[int], *, timeout: float) -> float:
    """Run the engine as the server does until `pks` settle; seconds it took."""
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(engine.run_forever(stop))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if not await Delivery.objects.filter(
                pk__in=pks, state__in=("pending", "retrying")
            ).aexists():
                return time.perf_counter() - started
            await asyncio.sleep(0.01)
        raise AssertionError("deliveries did not settle in time")
    finally:
        stop.set()
        await task


async def test_a_poison_row_does_not_delay_the_deliveries_behind_it(receiver):
    subscription = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/ok")
    )
    poison = await database_sync_to_async(_store_poison)(subscription)
    settings_poison = await database_sync_to_async(_store_poison)(
        subscription, custom_settings={"region": "\udc00"}
    )
    normal = [
        await database_sync_to_async(make_delivery)(subscription=subscription)
        for _ in range(10)
    ]
    took = await _serve(Engine(concurrency=10), [d.pk for d in normal], timeout=5)
    assert took < 1.0
    for delivery in normal:
        await delivery.arefresh_from_db()
        assert delivery.state == State.DELIVERED
    for row in (poison, settings_poison):
        await row.arefresh_from_db()
        assert row.state == State.FAILED
        assert row.outcome == "red"
        assert row.reason == queue.UNPREPARABLE.format(
            detail="it holds a lone UTF-16 surrogate, which is not valid Unicode"
        )
        assert row.claimed_by == ""
    assert len(receiver.received) == 10


def test_a_poison_row_shows_and_can_be_deleted(client):
    subscription = make_subscription()
    poison = _store_poison(subscription)
    asyncio.run(_serve(Engine(concurrency=2), [poison.pk], timeout=5))
    page = client.get(reverse("delivery:detail", args=[poison.pk]))
    assert page.status_code == 200
    assert "could not build Segment&#x27;s request" in page.text
    # The stored surrogate is shown as the replacement character, not a crash.
    assert "\ufffd" in page.text
    response = client.post(reverse("delivery:delete", args=[poison.pk]))
    assert response.status_code == 302
    assert not Delivery.objects.filter(pk=poison.pk).exists()


def test_a_row_nested_beyond_python_decoding_ends_alone(receiver, deliver_due):
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    poison = _store_poison(subscription)
    # Valid for SQLite's JSON functions (up to 1000 levels), too deep for Python's
    # decoder on a busy stack: written as text, as only another program could.
    deep = '{"type": "track", "deep": ' + "[" * 990 + "]" * 990 + "}"
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE delivery_delivery SET payload = %s WHERE id = %s",
            [deep, poison.pk],
        )
    normal = make_delivery(subscription=subscription)
    deliver_due()
    normal.refresh_from_db()
    assert normal.state == State.DELIVERED
    ended = Delivery.objects.values("state", "reason").get(pk=poison.pk)
    assert ended["state"] == State.FAILED
    assert "nested too deeply" in ended["reason"]


def test_credentials_in_a_stored_url_are_recorded_not_raised(receiver, deliver_due):
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    delivery = make_delivery(subscription=subscription)
    # An endpoint stored before URLs with credentials were refused at the door.
    url = receiver.url("/ok").replace("http://", "http://user:pass@")
    stored = DeliveryTarget.objects.create(
        name="ad hoc", endpoint_url=url, api_key="k", content_key="with-credentials"
    )
    Delivery.objects.filter(pk=delivery.pk).update(target=stored, subscription=None)
    deliver_due()
    delivery.refresh_from_db()
    attempt = delivery.attempts.get()
    assert delivery.state == State.DISCARDED
    assert attempt.error_kind == Attempt.ErrorKind.INVALID_URL
    assert "cannot be used" in attempt.error_message
    assert receiver.received == []


@pytest.mark.parametrize("value", ["1e20", "inf", "nan", "-5"])
def test_any_retry_after_is_recorded_as_what_happened(receiver, deliver_due, value):
    subscription = make_subscription(endpoint_url=receiver.url(f"/retry-after/{value}"))
    delivery = make_delivery(subscription=subscription)
    before = timezone.now()
    deliver_due()
    delivery.refresh_from_db()
    assert delivery.state == State.RETRYING
    assert delivery.attempts.get().response_status == 429
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert wait <= retry.LONGEST_WAIT_SECONDS + 1
    if value in {"1e20", "inf"}:
        assert wait >= retry.LONGEST_WAIT_SECONDS - 1
        assert "held to 2.4 h, the longest wait in Segment's schedule" in (
            delivery.reason
        )
    else:
        assert "held to" not in delivery.reason


def test_an_error_body_with_a_lone_surrogate_keeps_the_real_400(
    receiver, deliver_due, client
):
    subscription = make_subscription(endpoint_url=receiver.url("/surrogate"))
    delivery = make_delivery(subscription=subscription)
    deliver_due()
    delivery.refresh_from_db()
    attempt = delivery.attempts.get()
    assert delivery.state == State.DISCARDED
    assert attempt.response_status == 400
    assert "bad \ufffd input" in attempt.reason
    assert client.get(reverse("delivery:detail", args=[delivery.pk])).status_code == 200


@pytest.mark.slow
def test_a_five_second_timeout_lasts_five_seconds(receiver, deliver_due):
    subscription = make_subscription(
        endpoint_url=receiver.url("/hang"), timeout_seconds=5.0, retry_policy="none"
    )
    delivery = make_delivery(subscription=subscription)
    deliver_due()
    attempt = delivery.attempts.get()
    assert attempt.error_kind == Attempt.ErrorKind.TIMEOUT
    assert 5000 <= attempt.latency_ms <= 5200


@pytest.mark.slow
async def test_retries_leave_when_they_fall_due(receiver):
    subscription = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/flaky/4/503"), time_scale=240
    )
    delivery = await database_sync_to_async(make_delivery)(subscription=subscription)
    await _serve(Engine(concurrency=10), [delivery.pk], timeout=20)
    attempts = [
        a async for a in Attempt.objects.filter(delivery=delivery).order_by("number")
    ]
    assert [a.response_status for a in attempts] == [503, 503, 503, 503, 200]
    late = [(a.started_at - a.due_at).total_seconds() for a in attempts[1:]]
    assert all(seconds >= 0 for seconds in late)
    assert statistics.median(late) < 0.020
    assert max(late) < 0.100
