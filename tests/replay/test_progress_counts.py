"""A replay's progress counts, remembered for its settled rows and counted
for the rest, against a plain grouped count of its deliveries: while it runs,
paused, cancelled, resumed, finished, and after one of them is deleted."""

import time
from collections import Counter

import pytest
from django.db.models import Count

from sandbox.delivery.models import Delivery, State
from sandbox.delivery.services import Target, delivery_delete
from sandbox.replay import selectors, services
from sandbox.replay.models import Replay
from tests.replay.helpers import EngineThread, wait_until, write_lines

EVENTS = 600
FINAL = ("delivered", "unsupported", "failed", "deduplicated")


def _plain(run_id: int) -> dict[str, int]:
    """The counts replay_progress shows, from one grouped count of every row."""
    states = Counter(
        dict(
            Delivery.objects.filter(run_id=run_id)
            .order_by()
            .values_list("state")
            .annotate(number=Count("id"))
        )
    )
    return {
        "delivered": states[State.DELIVERED],
        "unsupported": states[State.UNSUPPORTED],
        "failed": states[State.FAILED] + states[State.DISCARDED],
        "deduplicated": states[State.DEDUPLICATED],
        "retrying": states[State.RETRYING],
        "pending": states[State.PENDING],
        "enqueued": sum(states.values()),
        "sent": Delivery.objects.filter(run_id=run_id, attempt_count__gt=0).count(),
    }


def _shown(replay: Replay) -> dict[str, int]:
    progress = selectors.replay_progress(replay=selectors.replay_get(pk=replay.pk))
    return {name: getattr(progress, name) for name in _plain(replay.run_id)}


def _landed(replay: Replay) -> bool:
    return not Delivery.objects.filter(
        run_id=replay.run_id, claimed_until__isnull=False
    ).exists()


def _reading_waits(replay: Replay, window: int) -> bool:
    """All is read, or the reading waits for fewer open rows than `window`."""
    counts = _plain(replay.run_id)
    if counts["pending"] + counts["retrying"] >= window:
        return True
    return Replay.objects.get(pk=replay.pk).fed_at is not None


def _between(replay: Replay) -> tuple[dict, dict, dict]:
    """A plain count, the progress, a plain count again: rows that ended stay
    ended, so each final count shown lies between the two."""
    before = _plain(replay.run_id)
    shown = _shown(replay)
    after = _plain(replay.run_id)
    for name in (*FINAL, "sent", "enqueued"):
        assert before[name] <= shown[name] <= after[name], (name, before, after)
    return before, shown, after


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_progress_counts_equal_a_plain_count_through_a_replay(receiver, tmp_path):
    # Every event fails once (a 500, retried soon): rows wait for their retry
    # below others that are done.
    path = write_lines(tmp_path / "e.jsonl", EVENTS)
    url = receiver.url("/flaky/1/500")
    target = Target(
        name="flaky",
        endpoint_url=url,
        api_key="k",
        custom_settings={},
        timeout_seconds=5.0,
        time_scale=1000.0,
        dedupe_window_hours=None,
    )
    replay = services.replay_create(target=target, path=path, rate=400, concurrency=10)
    small = {"chunk_events": 50, "window": 150}
    with EngineThread():
        services.replay_feed_in_background(replay_id=replay.pk, **small)
        for share in (0.1, 0.25, 0.4):
            wait_until(
                lambda share=share: (
                    _plain(replay.run_id)["delivered"] >= EVENTS * share
                ),
                timeout=60,
            )
            _between(replay)
            _between(replay)

        # Paused, once what was in flight landed and the reading filled its
        # window of open rows: nothing moves.
        replay = services.replay_pause(replay=replay)
        wait_until(lambda: _landed(replay) and _reading_waits(replay, small["window"]))
        time.sleep(0.2)
        assert _shown(replay) == _plain(replay.run_id)
        assert _shown(replay) == _plain(replay.run_id)
        services.replay_resume(replay=replay)
        wait_until(lambda: _plain(replay.run_id)["delivered"] >= EVENTS * 0.55)
        _between(replay)

        # Cancelled: open rows end as failed, and are counted so.
        replay = services.replay_cancel(replay=selectors.replay_get(pk=replay.pk))
        # The reading stops too (and lets go of the replay, so resuming can
        # read on).
        wait_until(
            lambda: _landed(replay) and not Replay.objects.get(pk=replay.pk).feeder
        )
        cancelled = _plain(replay.run_id)
        assert cancelled["failed"] > 0
        assert _shown(replay) == cancelled
        assert _shown(replay) == cancelled

        # Resumed: the cancelled rows are sent after all. Nothing asks for the
        # progress until the replay is done, so what was shown while cancelled
        # must not stand for them.
        replay = services.replay_resume(replay=selectors.replay_get(pk=replay.pk))
        assert services.replay_feed_in_background(replay_id=replay.pk, **small)
        wait_until(
            lambda: (
                Replay.objects.get(pk=replay.pk).fed_at is not None
                and not Delivery.objects.filter(
                    run_id=replay.run_id, state__in=["pending", "retrying"]
                ).exists()
            ),
            timeout=90,
        )
    finished = _plain(replay.run_id)
    assert finished["delivered"] == finished["enqueued"] == EVENTS
    assert finished["failed"] == 0
    assert _shown(replay) == finished
    assert selectors.replay_progress(replay=selectors.replay_get(pk=replay.pk)).finished

    # A delivery deleted from history leaves the counts once they are checked
    # again (every RECOUNT_SECONDS).
    delivery_delete(delivery=Delivery.objects.filter(run_id=replay.run_id).first())
    time.sleep(selectors.RECOUNT_SECONDS)
    shown = _shown(replay)
    assert shown == _plain(replay.run_id)
    assert shown["delivered"] == EVENTS - 1
