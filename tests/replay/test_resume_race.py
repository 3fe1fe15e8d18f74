"""A resume that arrives while the feeding is ending at a cancel: the feeding
reads on, instead of leaving a resumed replay that nobody reads."""

import threading
import time

import pytest
from django.db import transaction

from sandbox.delivery.models import Delivery, State
from sandbox.replay import services
from sandbox.replay.models import Replay
from tests.factories import ad_hoc_target
from tests.replay.helpers import EngineThread, wait_until, write_lines


@pytest.mark.django_db(transaction=True)
def test_a_resume_while_the_feeding_ends_at_a_cancel_reads_on(receiver, tmp_path):
    path = write_lines(tmp_path / "e.jsonl", 1_000)
    replay = services.replay_create(
        target=ad_hoc_target(receiver.url("/ok")), path=path
    )
    feeding = threading.Thread(
        target=services.replay_feed,
        kwargs={"replay_id": replay.pk, "chunk_events": 100, "window": 250},
    )
    feeding.start()
    # No engine yet: the window fills and the feeding waits there.
    wait_until(lambda: Delivery.objects.filter(run_id=replay.run_id).count() >= 300)
    services.replay_cancel(replay=Replay.objects.get(pk=replay.pk))
    # The resume holds the database's write lock while the feeding sees the
    # cancel and tries to let go of the replay: it sees the feeding as live,
    # so it starts none.
    with transaction.atomic():
        resumed = services.replay_resume(replay=Replay.objects.get(pk=replay.pk))
        assert not services.replay_needs_feeding(replay=resumed)
        time.sleep(0.6)
    with EngineThread():
        wait_until(
            lambda: (
                Delivery.objects.filter(
                    run_id=replay.run_id, state=State.DELIVERED
                ).count()
                == 1_000
            ),
            timeout=60,
        )
        feeding.join(10)
    assert not feeding.is_alive()
    assert Replay.objects.get(pk=replay.pk).fed_at is not None
    assert len(receiver.received) == 1_000
