"""The pipeline's seams: target rows, the fair claim, the bulk door, a sender per
kind, and runs of any events."""

import asyncio
import json
import time
from collections import Counter
from contextlib import contextmanager
from urllib.parse import parse_qs

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.utils import timezone

from sandbox import spec
from sandbox.delivery import engine as engine_module
from sandbox.delivery import queue, runs, senders, services, transport, webhook
from sandbox.delivery.engine import Engine
from sandbox.delivery.models import (
    Attempt,
    Delivery,
    DeliveryTarget,
    Door,
    Run,
    State,
)
from sandbox.delivery.targets import Target
from sandbox.subscriptions.services import subscription_update
from tests.factories import make_delivery, make_subscription


@contextmanager
def statements_run():
    """Every statement SQLite runs meanwhile, as it ran it: those the queue and
    the bulk door run on the driver's connection (Django's query log never sees
    them) included."""
    connection.ensure_connection()
    seen: list[str] = []
    connection.connection.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        connection.connection.set_trace_callback(None)


pytestmark = pytest.mark.django_db(transaction=True)


def _event(message_id: str | None = None) -> dict:
    event = spec.sample_event("track")
    if message_id is not None:
        event["messageId"] = message_id
    return event


def _claim(name: str = "engine", limit: int = 10) -> list[queue.Claimed]:
    return queue.deliveries_claim(
        claimer=name, token=f"{name}#{time.monotonic_ns()}", limit=limit,
        lease_seconds=60,
    )  # fmt: skip


# Target rows ---------------------------------------------------------------------


def test_deliveries_to_one_subscription_share_one_target_row():
    subscription = make_subscription(api_key="secret-key")
    first = make_delivery(subscription=subscription)
    second = make_delivery(subscription=subscription)
    assert first.target_id == second.target_id
    assert DeliveryTarget.objects.count() == 1
    assert DeliveryTarget.objects.get().api_key == "secret-key"
    assert second.subscription_name == subscription.name


def test_an_edited_url_reaches_the_next_retry(receiver, deliver_due):
    subscription = make_subscription(endpoint_url=receiver.url("/status/503"))
    delivery = make_delivery(subscription=subscription)
    deliver_due()
    delivery.refresh_from_db()
    assert delivery.state == State.RETRYING
    subscription_update(
        subscription=subscription, endpoint_url=receiver.url("/ok"), api_key="new"
    )
    services.delivery_retry_now(delivery=delivery)
    deliver_due()
    delivery.refresh_from_db()
    first, second = delivery.timeline
    assert delivery.state == State.DELIVERED
    assert first.request_url.endswith("/status/503")
    assert second.request_url.endswith("/ok")
    assert second.request_headers[1] == [
        "Authorization",
        webhook.authorization_value("new"),
    ]
    assert first.target_id != second.target_id
    assert delivery.target_id == second.target_id
    # The old target row is kept: history shows what attempt 1 was sent to.
    assert first.target.endpoint_url.endswith("/status/503")
    assert [r.path for r in receiver.received] == ["/status/503", "/ok"]


def test_disabling_a_subscription_stops_its_open_deliveries(receiver, deliver_due):
    subscription = make_subscription(endpoint_url=receiver.url("/status/503"))
    delivery = make_delivery(subscription=subscription)
    deliver_due()
    delivery.refresh_from_db()
    assert delivery.state == State.RETRYING
    subscription_update(subscription=subscription, enabled=False)
    delivery.refresh_from_db()
    assert delivery.state == State.FAILED
    assert delivery.reason == services.SUBSCRIPTION_DISABLED_STOPPED.format(
        name=subscription.name
    )
    assert delivery.next_attempt_at is None
    deliver_due()
    assert len(receiver.received) == 1


def test_a_retry_due_when_its_subscription_was_disabled_is_not_sent(
    receiver, deliver_due
):
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    delivery = make_delivery(subscription=subscription)
    # Disabled by another process between the enqueue and the claim.
    type(subscription).objects.filter(pk=subscription.pk).update(enabled=False)
    deliver_due()
    delivery.refresh_from_db()
    assert delivery.state == State.FAILED
    assert delivery.reason == queue.SUBSCRIPTION_DISABLED.format(name=subscription.name)
    assert not delivery.attempts.exists()
    assert receiver.received == []


def test_a_deleted_subscriptions_history_keeps_its_target(receiver, deliver_due):
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    delivery = make_delivery(subscription=subscription)
    deliver_due()
    from sandbox.subscriptions.services import subscription_delete

    subscription_delete(subscription=subscription)
    delivery = Delivery.objects.select_related("target").get(pk=delivery.pk)
    assert delivery.subscription_id is None
    assert delivery.subscription_name == "Partner webhook"
    assert delivery.target.endpoint_url == receiver.url("/ok")


def test_the_body_is_stored_once_and_is_what_was_sent(receiver, deliver_due):
    delivery = make_delivery(
        subscription=make_subscription(endpoint_url=receiver.url("/ok"))
    )
    deliver_due()
    attempt = Attempt.objects.get(delivery=delivery)
    [received] = receiver.received
    assert attempt.request_body.encode() == received.body
    columns = [field.name for field in Attempt._meta.get_fields()]
    assert "request_body" not in columns


# The fair claim ------------------------------------------------------------------


def _run_of(subscription, copies: int, *, concurrency: int = 1) -> Run:
    run = Run.objects.create(door=Door.CLI, label="big run", concurrency=concurrency)
    services.deliveries_enqueue(
        target=Target.of(subscription),
        events=[_event() for _ in range(copies)],
        door=Door.CLI,
        run=run,
    )
    return run


@pytest.mark.slow
def test_a_run_at_its_cap_hides_no_other_due_row():
    subscription = make_subscription()
    run = _run_of(subscription, 10_000)
    # The run's one slot, and two rows claimed ahead of it.
    first = _claim(limit=10)
    assert [c.delivery.run_id for c in first] == [run.pk] * 3
    assert queue.run_caps[run.pk] == 1
    plain = make_delivery(subscription=subscription)
    with statements_run() as statements:
        claimed = _claim(limit=10)
    assert [c.delivery.pk for c in claimed] == [plain.pk]
    assert any("UPDATE" in sql for sql in statements)  # the claim was seen
    # The capped run's rows were not read, let alone sorted.
    assert not any("LIMIT 10000" in sql for sql in statements)


def test_the_claim_bumps_updated_at_so_the_page_shows_it_sending():
    delivery = make_delivery(subscription=make_subscription())
    before = Delivery.objects.get(pk=delivery.pk).updated_at
    time.sleep(0.002)
    _claim()
    assert Delivery.objects.get(pk=delivery.pk).updated_at > before


async def _seconds_until_delivered(delivery: Delivery, within: float = 5) -> float:
    """How long, from now, until the stored delivery is delivered (or `within`)."""
    started = time.perf_counter()
    while time.perf_counter() - started < within:
        await delivery.arefresh_from_db()
        if delivery.state == State.DELIVERED:
            break
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


@pytest.mark.slow
async def test_a_plain_send_goes_out_while_a_big_run_is_in_flight(receiver):
    subscription = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/slow")
    )
    await database_sync_to_async(_run_of)(subscription, 10_000, concurrency=2)
    engine = Engine(concurrency=10)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run_forever(stop))
    try:
        await asyncio.sleep(0.3)  # the run is going out, two at a time
        plain = await database_sync_to_async(make_delivery)(subscription=subscription)
        took = await _seconds_until_delivered(plain)
    finally:
        stop.set()
        await task
    assert plain.state == State.DELIVERED
    # One engine tick to claim it, then the receiver's 0.15 s.
    assert took < 0.6
    assert receiver.max_in_flight <= 3


@pytest.mark.slow
async def test_a_run_claimed_ahead_never_has_more_in_flight_than_its_concurrency(
    receiver,
):
    subscription = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/slow")
    )
    run = await database_sync_to_async(_run_of)(subscription, 12, concurrency=3)
    engine = Engine(concurrency=10)
    try:
        assert await engine.run_due() == 12
    finally:
        await engine.close()
    states = await database_sync_to_async(
        lambda: set(Delivery.objects.filter(run=run).values_list("state", flat=True))
    )()
    assert states == {State.DELIVERED}
    # Rows of the run were claimed ahead of its three slots (up to nine at
    # once), but the engine started no more than three of them at a time.
    assert receiver.max_in_flight == 3


@pytest.mark.slow
async def test_a_claimed_row_that_waited_past_its_lease_goes_back_unsent(
    receiver, monkeypatch
):
    # A lease 0.4 s longer than a request and its margin: a claimed row that
    # waits longer for the slot is given back instead of sent late.
    monkeypatch.setattr(
        engine_module, "LEASE_SECONDS", 1.0 + engine_module.LEASE_MARGIN_SECONDS + 0.4
    )
    subscription = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/slow"), timeout_seconds=1.0
    )
    await database_sync_to_async(services.deliveries_enqueue)(
        target=Target.of(subscription),
        events=[_event() for _ in range(12)],
        door=Door.CLI,
    )
    engine = Engine(concurrency=1)  # six claimed at once, one sent per 0.15 s
    try:
        await engine.run_due()
    finally:
        await engine.close()

    def stored() -> tuple[set, list, list]:
        states = set(Delivery.objects.values_list("state", flat=True))
        attempts = list(Attempt.objects.values_list("id", "error_kind", "number"))
        return states, attempts, [d.attempt_count for d in Delivery.objects.all()]

    states, attempts, counts = await database_sync_to_async(stored)()
    assert states == {State.DELIVERED}
    received = Counter(json.loads(r.body)["messageId"] for r in receiver.received)
    assert len(received) == 12 and set(received.values()) == {1}
    # One attempt each, none interrupted: the rows given back were never sent.
    assert len(attempts) == 12
    assert {(kind, number) for _, kind, number in attempts} == {("", 1)}
    assert counts == [1] * 12
    # Attempts were written ahead and removed again (ids are never reused).
    ids = [pk for pk, _, _ in attempts]
    assert max(ids) - min(ids) + 1 > 12


async def test_an_engine_looping_here_is_woken_by_what_this_process_enqueues(
    receiver, monkeypatch
):
    # Without the wake the engine would look again only after its idle wait.
    monkeypatch.setattr(engine_module, "IDLE_WAKE_SECONDS", 10.0)
    subscription = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/ok")
    )
    engine = Engine(concurrency=2)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run_forever(stop))
    try:
        await asyncio.sleep(0.3)  # its first look found nothing: it sleeps
        enqueue = database_sync_to_async(
            lambda: services.deliveries_enqueue(
                target=Target.of(subscription), events=[_event()], door=Door.CLI
            )
        )
        [delivery] = await enqueue()
        took = await _seconds_until_delivered(delivery)
    finally:
        stop.set()
        engine.wake()
        await task
    assert delivery.state == State.DELIVERED
    assert took < 2


# The bulk door ------------------------------------------------------------------


def test_bulk_enqueue_dedupes_inside_the_batch_and_against_history():
    subscription = make_subscription()
    earlier = make_delivery(subscription=subscription, event=_event("m-old"))
    stored = services.deliveries_enqueue(
        target=Target.of(subscription),
        events=[_event("m-1"), _event("m-old"), _event("m-1"), _event("m-2")],
        door=Door.CLI,
    )
    states = [(d.message_id, d.state, d.duplicate_of_id) for d in stored]
    assert states == [
        ("m-1", State.PENDING, None),
        ("m-old", State.DEDUPLICATED, earlier.pk),
        ("m-1", State.DEDUPLICATED, stored[0].pk),
        ("m-2", State.PENDING, None),
    ]
    assert Delivery.objects.count() == 5
    assert all(d.pk for d in stored)


def test_bulk_enqueue_bypassing_dedupe_stores_every_copy():
    subscription = make_subscription()
    stored = services.deliveries_enqueue(
        target=Target.of(subscription),
        events=[_event("same"), _event("same")],
        door=Door.CLI,
        bypass_dedupe=True,
    )
    assert [d.state for d in stored] == [State.PENDING, State.PENDING]


def test_bulk_enqueue_is_all_or_nothing_and_names_the_bad_event():
    subscription = make_subscription()
    bad = _event()
    bad["properties"] = {"price": float("nan")}
    with pytest.raises(services.EventRefused) as refusal:
        services.deliveries_enqueue(
            target=Target.of(subscription),
            events=[_event(), bad, _event()],
            door=Door.CLI,
        )
    assert str(refusal.value).startswith("Event 2 of 3: Not sent:")
    assert not Delivery.objects.exists()


def test_bulk_enqueue_writes_the_batch_in_a_few_queries():
    subscription = make_subscription()
    make_delivery(subscription=subscription)  # the target row exists
    with statements_run() as statements:
        services.deliveries_enqueue(
            target=Target.of(subscription),
            events=[_event() for _ in range(200)],
            door=Door.CLI,
        )
    assert Delivery.objects.count() == 201
    verbs = [sql.split()[0] for sql in statements]
    # The batch's dedupe holders in one look-up (the target row is remembered),
    # and the rows in as few INSERTs as SQLite's 999 parameters allow.
    assert verbs.count("SELECT") == 1
    assert 1 <= verbs.count("INSERT") <= 200 // 30 + 1


# A sender per kind ---------------------------------------------------------------


class FormPostSender:
    """A second kind, for this test only: the event's fields as a form POST."""

    def prepare(self, *, target, event_text):
        event = json.loads(event_text)
        fields = {"type": event["type"], "userId": event.get("userId") or ""}
        body = "&".join(f"{k}={v}" for k, v in fields.items()).encode()
        headers = [("Content-Type", "application/x-www-form-urlencoded")]
        return senders.Prepared("POST", target.endpoint_url, headers, body)

    def body_text(self, event):
        return json.dumps(event)

    async def send(self, session, *, prepared, target):
        exchange = await transport.send(
            session,
            webhook.WebhookRequest(
                prepared.method, prepared.url, prepared.headers, prepared.body
            ),
            timeout=target.timeout_seconds,
            body_limit=1024,
        )
        return senders.Answer(exchange=exchange, verdict=senders.verdict_for(exchange))


def test_a_new_kind_needs_only_its_sender(receiver, deliver_due):
    senders.register("form-post", FormPostSender())
    target = Target(
        name="form target",
        endpoint_url=receiver.url("/ok"),
        api_key="",
        custom_settings={},
        timeout_seconds=5,
        kind="form-post",
    )
    [delivery] = services.deliveries_enqueue(
        target=target, events=[_event()], door=Door.CLI
    )
    assert deliver_due() == 1
    delivery.refresh_from_db()
    [received] = receiver.received
    assert parse_qs(received.body.decode(), keep_blank_values=True) == {
        "type": ["track"],
        "userId": [delivery.user_id],
    }
    assert delivery.state == State.DELIVERED
    assert delivery.target.kind == "form-post"


def test_a_kind_without_a_sender_ends_alone_saying_so(receiver, deliver_due):
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    unknown = DeliveryTarget.objects.create(
        kind="carrier-pigeon", name="x", endpoint_url="http://x", content_key="k"
    )
    odd = make_delivery(subscription=subscription)
    Delivery.objects.filter(pk=odd.pk).update(target=unknown, subscription=None)
    normal = make_delivery(subscription=subscription)
    deliver_due()
    odd.refresh_from_db()
    normal.refresh_from_db()
    assert odd.state == State.FAILED
    assert "no sender for targets of kind 'carrier-pigeon'" in odd.reason
    assert normal.state == State.DELIVERED


# Runs ----------------------------------------------------------------------------


def test_a_run_settles_once_nothing_of_it_is_open(receiver, deliver_due):
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    run = _run_of(subscription, 3, concurrency=3)
    assert not queue.run_is_settled(run.pk)
    deliver_due()
    assert queue.run_is_settled(run.pk)
    _claim()  # the next claim notices and marks it
    run.refresh_from_db()
    assert run.settled_at is not None
    assert run.settled_at <= timezone.now()
    _claim()  # and the one after forgets its concurrency
    assert run.pk not in queue.run_caps


async def test_waiting_for_a_run_of_different_events(receiver):
    subscription = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/ok")
    )

    def enqueue() -> Run:
        run = runs.run_create(door=Door.CLI, label="mixed", concurrency=4)
        services.deliveries_enqueue(
            target=Target.of(subscription),
            events=[spec.sample_event(kind) for kind in ("identify", "track", "page")],
            door=Door.CLI,
            run=run,
        )
        return run

    run = await database_sync_to_async(enqueue)()
    engine = Engine(concurrency=10)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run_forever(stop))
    try:
        progress = await runs.run_wait(run_id=run.pk, timeout=5)
    finally:
        stop.set()
        await task
    assert progress.settled
    assert progress.by_state == {State.DELIVERED: 3}
    assert sorted(json.loads(r.body)["type"] for r in receiver.received) == [
        "identify",
        "page",
        "track",
    ]


async def test_waiting_for_a_run_that_does_not_settle_times_out():
    subscription = await database_sync_to_async(make_subscription)()
    run = await database_sync_to_async(_run_of)(subscription, 2)
    with pytest.raises(TimeoutError):
        await runs.run_wait(run_id=run.pk, timeout=0.2)
