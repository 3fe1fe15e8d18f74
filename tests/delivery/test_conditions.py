"""Delivery conditions: concurrency, shuffled order, injected duplicates, jitter."""

import asyncio
import itertools
import random

import pytest
from channels.db import database_sync_to_async

from sandbox import spec
from sandbox.delivery import conditions, services
from sandbox.delivery.engine import Engine
from sandbox.delivery.models import Delivery, Door, State
from tests.factories import make_subscription


def test_plan_in_order_without_faults():
    result = conditions.plan(5, conditions.Conditions(copies=5))
    assert [item.index for item in result.items] == [0, 1, 2, 3, 4]
    dues = [item.due_in_seconds for item in result.items]
    assert dues == sorted(dues)
    assert dues[-1] < 0.001
    assert result.duplicates == 0


def test_plan_shuffles_with_a_seed():
    chosen = conditions.Conditions(copies=20, shuffle=True)
    result = conditions.plan(20, chosen, rng=random.Random(3))
    order = [item.index for item in result.items]
    assert sorted(order) == list(range(20))
    assert order != list(range(20))


def test_plan_duplicates_every_event_at_rate_one():
    chosen = conditions.Conditions(copies=4, duplicate_rate=1.0)
    result = conditions.plan(4, chosen, rng=random.Random(1))
    assert result.duplicates == 4
    for original, duplicate in zip(result.items[::2], result.items[1::2], strict=True):
        assert duplicate.duplicate and duplicate.index == original.index
        assert 0.05 <= duplicate.due_in_seconds - original.due_in_seconds <= 0.5


def test_plan_spreads_events_by_jitter():
    chosen = conditions.Conditions(copies=10, jitter_ms=100)
    result = conditions.plan(10, chosen, rng=random.Random(2))
    gaps = [
        b.due_in_seconds - a.due_in_seconds for a, b in itertools.pairwise(result.items)
    ]
    assert all(0 <= gap <= 0.1 + 1e-5 for gap in gaps)
    assert sum(gaps) > 0.1


def test_conditions_report_bad_values():
    bad = conditions.Conditions(
        copies=0, concurrency=500, duplicate_rate=2, jitter_ms=-1
    )
    assert bad.problems() == [
        conditions.COPIES_RANGE,
        conditions.CONCURRENCY_RANGE,
        conditions.DUPLICATE_RATE_RANGE,
        conditions.JITTER_RANGE,
    ]


def test_describe_says_what_was_applied():
    chosen = conditions.Conditions(
        copies=10, concurrency=4, shuffle=True, duplicate_rate=0.2, jitter_ms=50
    )
    result = conditions.plan(10, chosen, rng=random.Random(5))
    text = conditions.describe(chosen, result)
    assert text.startswith("10 events, concurrency 4, shuffled, ")
    assert f"{result.duplicates} duplicate" in text
    assert text.endswith("injected (rate 0.2), jitter up to 50 ms between events")


@pytest.mark.django_db
def test_run_enqueue_makes_copies_and_marks_injected_duplicates():
    sub = make_subscription()
    run = services.run_enqueue(
        target=services.Target.of(sub),
        event=spec.sample_event("track"),
        door=Door.COMPOSER,
        conditions=conditions.Conditions(copies=3, duplicate_rate=1.0),
        rng=random.Random(0),
    )
    deliveries = list(run.deliveries.order_by("pk"))
    assert len(deliveries) == 6
    originals = [d for d in deliveries if not d.injected_duplicate]
    duplicates = [d for d in deliveries if d.injected_duplicate]
    assert len({d.message_id for d in originals}) == 3
    for duplicate in duplicates:
        assert duplicate.state == State.PENDING  # not swallowed by dedupe
        assert duplicate.duplicate_of.message_id == duplicate.message_id
        assert duplicate.payload == duplicate.duplicate_of.payload
    assert run.applied.startswith("3 events, concurrency 1, in order, 3 duplicates")


@pytest.mark.django_db
def test_run_enqueue_is_all_or_nothing_on_spec_problems():
    sub = make_subscription()
    with pytest.raises(services.SpecRejected):
        services.run_enqueue(
            target=services.Target.of(sub),
            event={"type": "track", "event": "x"},
            door=Door.COMPOSER,
            conditions=conditions.Conditions(copies=5),
        )
    assert Delivery.objects.count() == 0


@pytest.mark.django_db(transaction=True)
async def test_engine_keeps_a_run_within_its_concurrency(receiver):
    sub = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/slow")
    )
    run = await database_sync_to_async(services.run_enqueue)(
        target=services.Target.of(sub),
        event=spec.sample_event("track"),
        door=Door.COMPOSER,
        conditions=conditions.Conditions(copies=8, concurrency=2),
    )
    engine = Engine(concurrency=20)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run_forever(stop))
    for _ in range(200):
        await asyncio.sleep(0.05)
        if not await Delivery.objects.filter(run=run, state="pending").aexists():
            break
    stop.set()
    await task
    assert len(receiver.received) == 8
    assert receiver.max_in_flight == 2


@pytest.mark.django_db(transaction=True)
async def test_shuffled_run_arrives_out_of_order(receiver):
    sub = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/ok")
    )
    run = await database_sync_to_async(services.run_enqueue)(
        target=services.Target.of(sub),
        event=spec.sample_event("track"),
        door=Door.COMPOSER,
        conditions=conditions.Conditions(copies=12, shuffle=True),
        rng=random.Random(4),
    )
    engine = Engine(concurrency=1)
    await engine.run_due()
    await engine.close()
    made = [d.message_id async for d in Delivery.objects.filter(run=run).order_by("pk")]
    arrived = [r.json["messageId"] for r in receiver.received]
    assert sorted(arrived) == sorted(made)
    assert arrived != made
