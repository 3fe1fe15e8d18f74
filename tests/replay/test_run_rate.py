"""A run's rate, however slow, lets its events go; a run filled after it was
created (and found empty meanwhile) still sends."""

import logging
import time

import pytest

from sandbox.delivery.models import Delivery, Door, Run, State
from sandbox.delivery.runs import run_create
from sandbox.delivery.services import Target, deliveries_enqueue
from tests.factories import make_subscription
from tests.replay.helpers import EngineThread, event, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("rate", [2.0, 3.0, 7.0])
def test_a_slow_rate_sends_every_event_at_that_pace(receiver, rate):
    subscription = make_subscription(name="Slow", endpoint_url=receiver.url("/ok"))
    with EngineThread():
        run = run_create(door=Door.REPLAY, label="slow", concurrency=5)
        # The engine may find the run empty, and settle it, before it is filled.
        time.sleep(0.5)
        Run.objects.filter(pk=run.pk).update(rate=rate, rate_clock=time.time())
        started = time.monotonic()
        deliveries_enqueue(
            target=Target.of(subscription),
            events=[event(n, messageId=f"slow-{rate}-{n}") for n in range(4)],
            door=Door.REPLAY,
            run=run,
            as_is=True,
        )
        wait_until(
            lambda: (
                Delivery.objects.filter(run=run, state=State.DELIVERED).count() == 4
            ),
            timeout=15,
        )
        took = time.monotonic() - started
        # Once all of it is final, the run settles.
        wait_until(lambda: Run.objects.get(pk=run.pk).settled_at is not None, timeout=5)
    # Four events at `rate` a second, the first at once: three gaps of 1/rate.
    assert took >= 3 / rate * 0.8


def test_a_run_whose_rate_allows_one_event_in_ages_holds_them_and_the_engine_goes_on(
    receiver, caplog
):
    # A rate no door takes (their least is 0.001/s), stored all the same: its
    # events wait, and the engine keeps sending other runs' (the allowance it
    # sleeps until was past any date a datetime holds).
    slow = make_subscription(name="Ages", endpoint_url=receiver.url("/ok"))
    other = make_subscription(name="Other", endpoint_url=receiver.url("/ok"))
    with EngineThread():
        run = run_create(door=Door.REPLAY, label="ages", concurrency=5)
        time.sleep(0.5)
        Run.objects.filter(pk=run.pk).update(rate=1e-300, rate_clock=time.time())
        deliveries_enqueue(
            target=Target.of(slow),
            events=[event(n, messageId=f"ages-{n}") for n in range(3)],
            door=Door.REPLAY,
            run=run,
            as_is=True,
        )
        time.sleep(1.0)
        later = deliveries_enqueue(
            target=Target.of(other),
            events=[event(n, messageId=f"other-{n}") for n in range(3)],
            door=Door.REPLAY,
        )
        ids = [delivery.pk for delivery in later]
        wait_until(
            lambda: (
                Delivery.objects.filter(pk__in=ids, state=State.DELIVERED).count() == 3
            ),
            timeout=15,
        )
    assert Delivery.objects.filter(run=run, state=State.PENDING).count() == 3
    faults = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not faults, faults[0].getMessage()
