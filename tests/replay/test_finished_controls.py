"""A finished replay's pause, resume and cancel change nothing, saying so (its
status and its settled run, so its average rate, stay as they were); the
command's --resume shows its summary and sends nothing."""

from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.urls import reverse

from sandbox.delivery.models import Run
from sandbox.replay import selectors, services
from sandbox.replay.models import Replay
from tests.factories import ad_hoc_target
from tests.replay.helpers import EngineThread, wait_until, write_lines


def _status(replay: Replay) -> str:
    return selectors.replay_status(replay=selectors.replay_get(pk=replay.pk))


@pytest.mark.django_db(transaction=True)
def test_a_finished_replay_is_not_paused_resumed_or_cancelled(
    client, receiver, tmp_path
):
    path = write_lines(tmp_path / "e.jsonl", 5)
    replay = services.replay_create(
        target=ad_hoc_target(receiver.url("/ok")), path=path, concurrency=2
    )
    with EngineThread():
        services.replay_feed(replay_id=replay.pk)
        wait_until(lambda: _status(replay) == "finished")
    settled_at = Run.objects.get(pk=replay.run_id).settled_at
    assert settled_at is not None
    for action in ("pause", "resume", "cancel"):
        response = client.post(reverse(f"replay:{action}", args=[replay.pk]))
        assert response.status_code == 302
        said = [str(m) for m in get_messages(response.wsgi_request)]
        assert said[-1] == (
            f"Replay {replay.pk} finished already: there is nothing to {action}."
        )
        replay.refresh_from_db()
        assert replay.status == Replay.Status.RUNNING
        assert _status(replay) == "finished"
        run = Run.objects.get(pk=replay.run_id)
        assert run.settled_at == settled_at and not run.paused
    out = StringIO()
    call_command("replay", "--resume", str(replay.run_id), stdout=out)
    said = out.getvalue().splitlines()
    assert said[0] == f"Run {replay.run_id} finished already: nothing is left to send."
    assert said[-1].startswith("Summary: 5 events read, 0 bad lines, 5 delivered, ")
    assert len(receiver.received) == 5
