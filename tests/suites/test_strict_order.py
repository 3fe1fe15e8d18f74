"""Strict order: a suite's next step goes out only once the step before it has
its final outcome, retries included, as Segment's tester sends."""

import asyncio
import json

import pytest

from sandbox.delivery import runs
from sandbox.delivery.engine import Engine
from sandbox.delivery.models import Door
from sandbox.delivery.services import Target, deliveries_enqueue
from sandbox.suites import fileformat, selectors, services
from sandbox.suites.models import SuiteSource
from tests.factories import make_subscription


def _found(count: int) -> selectors.FoundSuite:
    document = {
        "format": fileformat.FORMAT,
        "name": "Flaky",
        "steps": [
            {"event": {"type": "track", "event": f"Step {n}", "userId": "u"}}
            for n in range(1, count + 1)
        ],
    }
    suite = fileformat.suite_from_document(document)
    return selectors.FoundSuite(suite=suite, source=SuiteSource.FILE)


def _event_names(receiver) -> list[str]:
    return [json.loads(r.body)["event"] for r in receiver.received]


@pytest.mark.django_db(transaction=True)
def test_a_retrying_step_holds_the_next_one_back(receiver):
    subscription = make_subscription(
        endpoint_url=receiver.url("/flaky/2/503"), time_scale=240
    )
    suite_run = services.suite_run_start(
        found=_found(3), target=Target.of(subscription)
    )
    assert suite_run.run.strict_order
    settled = asyncio.run(services.suite_run_deliver(suite_run=suite_run, timeout=30))
    assert settled
    # Each step failed twice (503, retried) before it was delivered, and no step
    # went out while the one before it waited for its retry.
    assert _event_names(receiver) == [
        "Step 1", "Step 1", "Step 1",
        "Step 2", "Step 2", "Step 2",
        "Step 3", "Step 3", "Step 3",
    ]  # fmt: skip
    suite_run = services.suite_run_finish(suite_run=suite_run)
    assert suite_run.passed
    assert [r["attempts"] for r in suite_run.results] == [3, 3, 3]


@pytest.mark.django_db(transaction=True)
def test_without_strict_order_the_next_step_overtakes_a_retrying_one(receiver):
    """What strict order is for: concurrency 1 counts only rows in flight."""
    subscription = make_subscription(
        endpoint_url=receiver.url("/flaky/1/503"), time_scale=240
    )
    run = runs.run_create(door=Door.SUITE, concurrency=1)
    events = [{"type": "track", "event": f"Step {n}", "userId": "u"} for n in (1, 2)]
    deliveries_enqueue(
        target=Target.of(subscription), events=events, door=Door.SUITE, run=run
    )

    async def deliver() -> None:
        engine = Engine(concurrency=4)
        stop = asyncio.Event()
        working = asyncio.create_task(engine.run_forever(stop))
        try:
            await runs.run_wait(run_id=run.pk, timeout=30)
        finally:
            stop.set()
            engine.wake()
            await working

    asyncio.run(deliver())
    assert _event_names(receiver)[:2] == ["Step 1", "Step 2"]


@pytest.mark.django_db(transaction=True)
def test_strict_order_leaves_other_work_flowing(receiver):
    """A strict run waiting for its retry hides nothing else that is due."""
    flaky = make_subscription(
        name="Flaky", endpoint_url=receiver.url("/flaky/1/503"), time_scale=60
    )
    other = make_subscription(name="Other", endpoint_url=receiver.url("/ok"))
    suite_run = services.suite_run_start(found=_found(2), target=Target.of(flaky))

    async def deliver() -> None:
        engine = Engine(concurrency=4)
        stop = asyncio.Event()
        working = asyncio.create_task(engine.run_forever(stop))
        try:
            # Step 1 has failed once and waits about half a second for its retry.
            while len(receiver.received) < 1:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(
                deliveries_enqueue,
                target=Target.of(other),
                events=[{"type": "track", "event": "Elsewhere", "userId": "u"}],
                door=Door.COMPOSER,
            )
            await runs.run_wait(run_id=suite_run.run_id, timeout=30)
        finally:
            stop.set()
            engine.wake()
            await working

    asyncio.run(deliver())
    assert _event_names(receiver)[:3] == ["Step 1", "Elsewhere", "Step 1"]
