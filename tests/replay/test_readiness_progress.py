"""A readiness check's progress, as it stores it while it runs: the phase it is
in with the report so far, and its own probe runs, whatever else runs against
the same subscription at the same time."""

import random
import time

import pytest
from django.urls import reverse

from sandbox.replay import readiness, selectors
from sandbox.replay.models import ReadinessCheck
from sandbox.subscriptions import services as subscriptions_services
from tests.factories import make_subscription
from tests.replay.helpers import EngineThread, wait_until

# One short rate step: the order phase (24 events, one at a time, to an
# endpoint that answers after 150 ms) is what lasts.
ONE_STEP = readiness.RampOptions(start=20, most=20, step_seconds=0.5)


def _start(subscription, seed: int, *, beside: bool = False) -> ReadinessCheck:
    """A check started, and run in the background; `beside`: made as a second
    one running at once (readiness_create refuses that; another process on
    an older version, or a row left running, does not ask)."""
    if beside:
        check = ReadinessCheck.objects.create(
            subscription=subscription,
            subscription_name=subscription.name,
            endpoint_url=subscription.endpoint_url,
        )
    else:
        check = readiness.readiness_create(subscription=subscription)
    readiness.readiness_run_in_background(
        check_id=check.pk, options=ONE_STEP, rng=random.Random(seed)
    )
    return check


def _fresh(check: ReadinessCheck) -> ReadinessCheck:
    return ReadinessCheck.objects.get(pk=check.pk)


def _done(*checks: ReadinessCheck) -> bool:
    return all(_fresh(check).status != "running" for check in checks)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_checks_of_one_subscription_each_show_only_their_own_probes(
    client, receiver
):
    subscription = make_subscription(name="Partner", endpoint_url=receiver.url("/slow"))
    with EngineThread():
        first = _start(subscription, 1)
        second = _start(subscription, 2, beside=True)
        try:
            wait_until(
                lambda: all(_fresh(c).phase == "order" for c in (first, second)),
                timeout=30,
            )
            seen = {first.pk: set(), second.pk: set()}
            for _ in range(5):
                for check in (first, second):
                    check = _fresh(check)
                    progress = selectors.readiness_progress(check=check)
                    own = {probe["run"] for probe in check.probe_runs}
                    shown = {probe.run_id for probe in progress.probes}
                    assert shown <= own
                    seen[check.pk] |= shown
                    labels = [probe.label for probe in progress.probes]
                    assert labels.count("timestamps") == 1, labels
                    [stamps] = [p for p in progress.probes if p.label == "timestamps"]
                    assert stamps.events == len(readiness.AGES)
                    assert stamps.phase == "timestamps"
                    # The live part the page polls, over HTTP.
                    live = client.get(
                        reverse("replay:readiness-detail", args=[check.pk]),
                        headers={"HX-Request": "true"},
                    ).content.decode()
                    assert live.count('data-probe="timestamps"') == 1
            assert seen[first.pk] and seen[second.pk]
            assert not seen[first.pk] & seen[second.pk]
        finally:
            wait_until(lambda: _done(first, second), timeout=90)
    for check in (first, second):
        check = _fresh(check)
        assert check.status == "done", check.problem
        assert check.report["timestamps"]["passed"] and check.report["order"]["passed"]
        assert [probe["phase"] for probe in check.probe_runs] == [
            "timestamps",
            "order",
            "order",
            "rate",
        ]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_check_stores_each_phase_as_it_ends(client, receiver):
    subscription = make_subscription(name="Partner", endpoint_url=receiver.url("/slow"))
    with EngineThread():
        check = _start(subscription, 3)
        try:
            stored = wait_until(
                lambda: (found := _fresh(check)).report.get("timestamps") and found,
                timeout=30,
            )
            # The timestamps part is in; the check goes on with the next.
            assert stored.status == "running"
            assert stored.phase in ("order", "rate")
            assert "rate" not in stored.report
            results = stored.report["timestamps"]["results"]
            assert [row["age"] for row in results] == [age for age, _ in readiness.AGES]
            progress = selectors.readiness_progress(check=stored)
            assert progress.running and progress.phase in ("order", "rate")

            wait_until(lambda: "order" in _fresh(check).report, timeout=30)
            stored = _fresh(check)
            assert stored.phase == "rate" and stored.status == "running"
            assert stored.report["order"]["ok_in_order"] == readiness.ORDER_EVENTS
            live = client.get(
                reverse("replay:readiness-detail", args=[check.pk]),
                headers={"HX-Request": "true"},
            ).content.decode()
            assert 'data-phase="rate"' in live or 'data-status="done"' in live
        finally:
            wait_until(lambda: _done(check), timeout=60)
    check = _fresh(check)
    assert check.status == "done", check.problem
    assert set(check.report) == {"timestamps", "order", "rate"}
    page = client.get(reverse("replay:readiness-detail", args=[check.pk]))
    assert 'data-verdict="timestamps">yes' in page.content.decode()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_check_whose_subscription_is_deleted_sends_no_more_probes(receiver):
    subscription = make_subscription(name="Partner", endpoint_url=receiver.url("/slow"))
    with EngineThread():
        check = _start(subscription, 4)
        try:
            wait_until(lambda: _fresh(check).phase == "order", timeout=30)
            subscriptions_services.subscription_delete(subscription=subscription)
        finally:
            wait_until(lambda: _done(check), timeout=60)
        received = len(receiver.received)
        check = _fresh(check)
        assert check.status == "failed"
        assert check.problem == readiness.SUBSCRIPTION_GONE
        # It stopped before the rate steps: no probe run of theirs was made.
        assert "rate" not in {probe["phase"] for probe in check.probe_runs}
        time.sleep(1)
        assert len(receiver.received) == received
