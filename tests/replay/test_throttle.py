"""How a replay slows down after 429s and comes back: cut below the share it
ran at, back to just under that share soon, no further for a while (a limit
that held is not tried again at once), then doubling (a limit that was lifted
is soon left behind)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from sandbox.delivery import queue
from sandbox.delivery.models import Attempt, Run
from sandbox.replay import services
from tests.factories import ad_hoc_target
from tests.replay.helpers import EngineThread, wait_until, write_lines


def test_the_share_after_a_429_follows_cut_ramp_plateau_then_doubling():
    at, ceiling = 1000.0, 0.5
    cut = ceiling * queue.THROTTLE_CUT

    def share(after: float) -> float:
        return queue.throttle_factor(cut, at, at + after, ceiling)

    below = ceiling * queue.THROTTLE_BELOW
    hold = queue.THROTTLE_HOLD_SECONDS
    ramp_ends = hold + queue.THROTTLE_RAMP_SECONDS
    plateau_ends = ramp_ends + queue.THROTTLE_PLATEAU_SECONDS
    assert share(0) == share(hold) == pytest.approx(cut)
    assert cut < share(hold + queue.THROTTLE_RAMP_SECONDS / 2) < below
    assert share(ramp_ends) == share(plateau_ends) == pytest.approx(below)
    # Never above the share that was refused until the plateau is over.
    assert max(share(t / 10) for t in range(int(plateau_ends * 10))) <= ceiling
    assert share(plateau_ends + queue.THROTTLE_DOUBLING_SECONDS) == pytest.approx(
        2 * below
    )
    assert share(plateau_ends + 100) == 1.0
    # Never throttled: the whole rate.
    assert queue.throttle_factor(1.0, 0.0, at) == 1.0


def _limited_replay(receiver, tmp_path, *, rate: float | None):
    """A replay of 2,500 events, 10 in flight, to an endpoint that takes 100
    events/s (429 with Retry-After: 1 beyond); and its 429 answers."""
    replay = services.replay_create(
        target=ad_hoc_target(receiver.url("/limited/100"), time_scale=100),
        path=write_lines(tmp_path / "e.jsonl", 2500),
        rate=rate,
        concurrency=10,
    )
    refused = Attempt.objects.filter(
        delivery__run_id=replay.run_id, response_status=429
    )
    return replay, refused


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_limit_that_held_is_not_tried_again_for_a_while(receiver, tmp_path):
    """An endpoint that takes 100 events/s (429 with Retry-After: 1 beyond) and
    a replay asked for 150/s: after a few 429s the replay settles just under
    the rate that was refused, and meets no 429 again for the plateau, still
    sending near the endpoint's rate. (Halving and doubling back every 2 s met
    a 429 every few seconds, and kept three fifths of the endpoint's rate.)"""
    replay, refused = _limited_replay(receiver, tmp_path, rate=150.0)
    with EngineThread():
        services.replay_feed_in_background(replay_id=replay.pk)
        wait_until(refused.exists, timeout=30)
        first = timezone.now()
        quiet_from = first + timedelta(seconds=8)
        wait_until(lambda: timezone.now() >= quiet_from, timeout=20)
        sent_before = len(receiver.received)
        quiet_until = quiet_from + timedelta(seconds=7)
        wait_until(lambda: timezone.now() >= quiet_until, timeout=20)
        sent_quiet = len(receiver.received) - sent_before
        services.replay_cancel(replay=replay)
    late = [
        (moment - first).total_seconds()
        for moment in refused.values_list("started_at", flat=True)
        if quiet_from <= moment <= quiet_until
    ]
    assert late == []
    # Meanwhile it sent near the endpoint's rate (100/s): 7 s at 0.9 of it
    # would be 630; less than the old sawtooth's three fifths fails.
    assert sent_quiet >= 7 * 100 * 0.65, sent_quiet
    run = Run.objects.get(pk=replay.run_id)
    assert run.throttle_ceiling < 1 and run.throttled_count == refused.count()
    assert run.throttle_factor == pytest.approx(
        max(queue.THROTTLE_FLOOR, run.throttle_ceiling * queue.THROTTLE_CUT)
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_replay_asked_for_no_rate_is_slowed_by_rate_after_a_429(receiver, tmp_path):
    """With no rate asked, a 429 measures the rate the replay went at, and the
    share applies to that rate: an endpoint that answers at once is not
    slowed by fewer requests in flight alone, which met a 429 again at once."""
    replay, refused = _limited_replay(receiver, tmp_path, rate=None)
    with EngineThread():
        services.replay_feed_in_background(replay_id=replay.pk)
        wait_until(refused.exists, timeout=30)
        first = timezone.now()
        wait_until(lambda: timezone.now() >= first + timedelta(seconds=10), timeout=20)
        services.replay_cancel(replay=replay)
    run = Run.objects.get(pk=replay.run_id)
    assert run.rate is None and run.throttle_rate > 100
    # About one 429 burst per cut, a cut per second or two while it comes
    # down to the endpoint's 100/s; then none.
    assert refused.count() < 80, refused.count()
    assert len(receiver.received) >= 700
