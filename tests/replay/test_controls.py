"""A replay's controls, honoured by the engine's claim: rate, pause, resume,
cancel, and slowing down when the endpoint answers 429."""

import time

import pytest

from sandbox.delivery.models import Delivery, Run, State
from sandbox.replay import selectors, services
from sandbox.replay.models import Replay
from tests.factories import ad_hoc_target
from tests.replay.helpers import EngineThread, wait_until, write_lines


def _delivered(replay: Replay) -> int:
    return Delivery.objects.filter(run_id=replay.run_id, state=State.DELIVERED).count()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rate", [50.0, 400.0])
def test_the_send_rate_holds_to_thead_hoc_target(receiver, tmp_path, rate):
    count = int(rate * 4)
    path = write_lines(tmp_path / "e.jsonl", count)
    replay = services.replay_create(
        target=ad_hoc_target(receiver.url("/ok")), path=path, rate=rate, concurrency=20
    )
    with EngineThread():
        services.replay_feed(replay_id=replay.pk)
        wait_until(lambda: len(receiver.received) >= count, timeout=60)
    # The first second may hold a short burst (the saved-up allowance).
    times = sorted(r.at for r in receiver.received)
    start = times[0] + 1.0
    steady = [t for t in times if t >= start]
    measured = (len(steady) - 1) / (steady[-1] - steady[0])
    assert rate * 0.8 <= measured <= rate * 1.2, measured


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_pause_resume_and_cancel(receiver, tmp_path):
    path = write_lines(tmp_path / "e.jsonl", 400)
    replay = services.replay_create(
        target=ad_hoc_target(receiver.url("/ok")), path=path, rate=100, concurrency=5
    )
    small = {"chunk_events": 50, "window": 100}
    with EngineThread():
        services.replay_feed_in_background(replay_id=replay.pk, **small)
        wait_until(lambda: _delivered(replay) >= 50)
        replay = services.replay_pause(replay=replay)
        assert replay.status == Replay.Status.PAUSED
        # What was in flight lands; then nothing more goes out.
        wait_until(
            lambda: (
                not Delivery.objects.filter(
                    run_id=replay.run_id, claimed_until__isnull=False
                ).exists()
            )
        )
        paused_at = len(receiver.received)
        time.sleep(0.6)
        assert len(receiver.received) == paused_at
        shown = selectors.replay_progress(replay=replay)
        assert shown.status == "paused"
        # It sent a moment ago, but a paused replay has no time left to count.
        assert shown.current_rate > 0 and shown.eta_seconds is None
        services.replay_resume(replay=replay)
        wait_until(lambda: len(receiver.received) >= paused_at + 50)
        assert selectors.replay_progress(replay=replay).eta_seconds > 0
        replay = services.replay_cancel(replay=selectors.replay_get(pk=replay.pk))
        cancelled = Delivery.objects.filter(
            run_id=replay.run_id, reason=services.CANCELLED
        )
        assert cancelled.exists()
        assert set(cancelled.values_list("state", flat=True)) == {State.FAILED}
        # What was in flight lands as it went (here: delivered).
        wait_until(
            lambda: (
                not Delivery.objects.filter(
                    run_id=replay.run_id, state__in=[State.PENDING, State.RETRYING]
                ).exists()
            )
        )
        wait_until(lambda: not selectors.replay_get(pk=replay.pk).feeder)
        shown = selectors.replay_progress(replay=selectors.replay_get(pk=replay.pk))
        assert shown.status == "cancelled" and shown.eta_seconds is None
        time.sleep(0.3)
        stopped_at = len(receiver.received)
        time.sleep(0.3)
        assert len(receiver.received) == stopped_at
        progress = selectors.replay_progress(replay=selectors.replay_get(pk=replay.pk))
        assert progress.status == "cancelled" and progress.failed > 0
        # Resumed after the cancel: what the cancel stopped goes out, and the
        # file is read on from where it stopped.
        replay = services.replay_resume(replay=selectors.replay_get(pk=replay.pk))
        assert services.replay_needs_feeding(replay=replay)
        assert 0 < replay.position < 400
        services.replay_feed_in_background(replay_id=replay.pk, **small)
        wait_until(
            lambda: (
                selectors.replay_progress(
                    replay=selectors.replay_get(pk=replay.pk)
                ).finished
            )
        )
    ids = [r.json["messageId"] for r in receiver.received]
    assert sorted(ids) == sorted(f"replay-{n}" for n in range(400))
    assert _delivered(replay) == 400


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_429_answers_slow_the_replay_then_it_recovers(receiver, tmp_path):
    path = write_lines(tmp_path / "e.jsonl", 300)
    replay = services.replay_create(
        target=ad_hoc_target(receiver.url("/limited/100"), time_scale=20),
        path=path,
        concurrency=20,
    )
    with EngineThread():
        services.replay_feed(replay_id=replay.pk)
        wait_until(
            lambda: (
                selectors.replay_progress(
                    replay=selectors.replay_get(pk=replay.pk)
                ).finished
            ),
            timeout=90,
        )
    run = Run.objects.get(pk=replay.run_id)
    answered_429 = len(receiver.received) - 300
    assert _delivered(replay) == 300
    assert run.throttled_count == answered_429 > 0
    # Without slowing down, each event would meet several 429s before its turn.
    assert answered_429 < 150
