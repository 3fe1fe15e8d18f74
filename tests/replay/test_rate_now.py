"""A replay's rate now, in its first seconds: the events of the time it has
been sending, not of a window longer than its life."""

import time

import pytest

from sandbox.replay import selectors, services
from tests.factories import ad_hoc_target
from tests.replay.helpers import EngineThread, write_lines


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_rate_now_of_a_young_replay_is_its_rate(receiver, tmp_path):
    path = write_lines(tmp_path / "e.jsonl", 1000)
    replay = services.replay_create(
        target=ad_hoc_target(receiver.url("/ok")), path=path, rate=100, concurrency=5
    )
    with EngineThread():
        services.replay_feed_in_background(replay_id=replay.pk)
        time.sleep(2.5)
        shown = selectors.replay_progress(replay=selectors.replay_get(pk=replay.pk))
        services.replay_cancel(replay=selectors.replay_get(pk=replay.pk))
    # 100 events/s, 2.5 s old: counted over 5 s it read 40 to 50.
    assert 70 <= shown.current_rate <= 130, shown.current_rate
    assert shown.eta_seconds is not None and shown.eta_seconds < 12
