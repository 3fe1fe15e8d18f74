"""Durable delivery: a killed server loses nothing, two engines never share a row.

These run real processes (`manage.py runserver`, `manage.py runengine`) on their
own SQLite file and a real local endpoint.
"""

import json
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.server import ROOT, Server


def _wait(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _create_subscription(server: Server, url: str, time_scale: float) -> None:
    server.shell(
        "from sandbox.subscriptions.services import subscription_create; "
        f"subscription_create(name='Flaky', endpoint_url={url!r}, "
        f"api_key='segment', time_scale={time_scale})"
    )


def _states(server: Server) -> Counter:
    return Counter(
        state for (state,) in server.query("SELECT state FROM delivery_delivery")
    )


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path)
    server.prepare()
    yield server
    server.stop()


@pytest.mark.slow
def test_kill_9_during_retries_loses_nothing_and_sends_nothing_twice(server, receiver):
    path = "/flaky/3/503"
    # Scale 48: retries after about 0.6 s, 1.2 s and 2.3 s.
    _create_subscription(server, receiver.url(path), time_scale=48)
    server.start()
    # Four terminals at once: each first attempt is a 503, made by the CLI itself.
    command = [sys.executable, str(ROOT / "manage.py"), "sendevent", "track"]
    sends = [
        subprocess.Popen(
            [*command, "--to", "Flaky"],
            env=server.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for sent in sends:
        _, stderr = sent.communicate(timeout=60)
        assert sent.returncode == 1, stderr
    assert len(receiver.received) >= 4
    # Let the server make some retries, then kill it without warning.
    _wait(lambda: len(receiver.received) >= 8, timeout=20, what="first retries")
    server.kill()
    before_restart = len(receiver.received)
    time.sleep(2.5)  # some retries fall due while nothing runs
    assert len(receiver.received) == before_restart
    restarted = time.monotonic()
    server.start()
    _wait(
        lambda: len(receiver.received) > before_restart,
        timeout=5,
        what="late retries after restart",
    )
    assert time.monotonic() - restarted < 5
    _wait(lambda: _states(server) == {"delivered": 4}, timeout=40, what="delivery")

    for message_id, attempts in server.query(
        "SELECT message_id, attempt_count FROM delivery_delivery"
    ):
        numbers = [
            n
            for (n,) in server.query(
                "SELECT a.number FROM delivery_attempt a JOIN delivery_delivery d "
                "ON a.delivery_id = d.id WHERE d.message_id = ? ORDER BY a.number",
                message_id,
            )
        ]
        interrupted = server.query(
            "SELECT count(*) FROM delivery_attempt a JOIN delivery_delivery d "
            "ON a.delivery_id = d.id WHERE d.message_id = ? "
            "AND a.error_kind = 'interrupted'",
            message_id,
        )[0][0]
        received = receiver.count(path, message_id)
        assert numbers == list(range(1, attempts + 1))
        # Every attempt went out at most once: an interrupted one may or may not
        # have reached the endpoint, the others did exactly once.
        assert attempts - interrupted <= received <= attempts
        assert received == 4  # three 503s, then the 200


@pytest.mark.slow
def test_two_engine_processes_never_send_the_same_delivery(server, receiver):
    _create_subscription(server, receiver.url("/ok"), time_scale=1)
    server.shell(
        "from sandbox import spec\n"
        "from sandbox.delivery.services import Target, delivery_enqueue\n"
        "from sandbox.subscriptions.models import Subscription\n"
        "target = Target.of(Subscription.objects.get(name='Flaky'))\n"
        "for _ in range(300):\n"
        "    delivery_enqueue(target=target, event=spec.sample_event('track'),"
        " door='cli')\n"
    )
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "runengine",
        "--until-idle",
        "--concurrency",
        "10",
    ]
    engines = [
        subprocess.Popen(command, env=server.env, cwd=ROOT, stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [engine.communicate(timeout=120)[0].decode() for engine in engines]
    assert [engine.returncode for engine in engines] == [0, 0]
    assert _states(server) == {"delivered": 300}
    message_ids = Counter(r.json["messageId"] for r in receiver.received)
    assert len(message_ids) == 300
    assert set(message_ids.values()) == {1}
    claimers = server.query("SELECT count(*) FROM delivery_attempt WHERE number > 1")
    assert claimers == [(0,)]
    assert all("stopped" in output for output in outputs), json.dumps(outputs)
