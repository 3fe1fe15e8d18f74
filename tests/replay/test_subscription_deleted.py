"""A subscription deleted while a replay sends to it: the replay stops, saying
why, nothing more reaches its endpoint (not even through the copy its target
row keeps), a resume sends nothing, and no feeding fails on the deleted row."""

import logging
import subprocess
import sys
import time

import pytest

from sandbox.delivery.services import Target
from sandbox.replay import services
from sandbox.replay.models import Replay
from sandbox.subscriptions.services import subscription_delete
from tests.factories import make_subscription
from tests.replay.helpers import EngineThread, wait_until, write_lines
from tests.server import ROOT, Server


def _settled_count(receiver) -> int:
    """The requests received, once none came for half a second."""
    while True:
        seen = len(receiver.received)
        time.sleep(0.5)
        if len(receiver.received) == seen:
            return seen


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_page_replay_stops_when_its_subscription_is_deleted(
    receiver, tmp_path, caplog
):
    subscription = make_subscription(name="Going", endpoint_url=receiver.url("/ok"))
    path = write_lines(tmp_path / "e.jsonl", 400)
    replay = services.replay_create(
        target=Target.of(subscription), path=path, rate=100, concurrency=5
    )
    assert replay.subscription_name == "Going"
    with EngineThread():
        services.replay_feed_in_background(
            replay_id=replay.pk, chunk_events=50, window=100
        )
        wait_until(lambda: len(receiver.received) >= 50)
        subscription_delete(subscription=subscription)
        replay.refresh_from_db()
        assert replay.status == Replay.Status.CANCELLED
        assert "The subscription 'Going' was deleted" in replay.problem
        sent = _settled_count(receiver)
        assert sent < 400
        # A resume reads nothing more and sends nothing to the old endpoint.
        replay = services.replay_resume(replay=replay)
        thread = services.replay_feed_in_background(replay_id=replay.pk)
        if thread is not None:
            thread.join(10)
        assert _settled_count(receiver) == sent
    replay.refresh_from_db()
    assert "was deleted" in replay.problem
    faults = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not faults, faults[0].getMessage()


@pytest.mark.slow
def test_the_command_stops_when_its_subscription_is_deleted(receiver, tmp_path):
    server = Server(tmp_path)
    server.manage("migrate", "-v0")
    server.manage(
        "shell",
        "-c",
        "from tests.factories import make_subscription; "
        f"make_subscription(name='Going', endpoint_url={receiver.url('/ok')!r})",
    )
    path = write_lines(tmp_path / "export.jsonl", 2000)
    replaying = subprocess.Popen(
        [
            *[sys.executable, str(ROOT / "manage.py"), "replay", str(path)],
            *["--to", "Going", "--rate", "100"],
        ],
        env=server.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: len(receiver.received) >= 100, timeout=30)
        server.manage(
            "shell",
            "-c",
            "from sandbox.subscriptions.models import Subscription; "
            "from sandbox.subscriptions.services import subscription_delete; "
            "subscription_delete(subscription=Subscription.objects.get(name='Going'))",
        )
        output, _ = replaying.communicate(timeout=60)
    finally:
        replaying.kill()
    assert "Traceback" not in output, output
    assert "IntegrityError" not in output, output
    assert "The subscription 'Going' was deleted" in output, output
    assert replaying.returncode == 1, output
    assert len(receiver.received) < 2000
