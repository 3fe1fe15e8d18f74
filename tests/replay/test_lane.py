"""The replay lane (sandbox/replay/lane.py): the `replay` command's first
attempts, written ahead by its feeding process and sent by the command. Each
event is stored once, whole, as the engine stores it; pause, cancel, Ctrl+C,
429s and crashes of either process or both lose nothing and send nothing twice
but what may have been in flight."""

import json
import os
import signal
import subprocess
import time
from collections import Counter

import pytest

from sandbox.replay.services import CANCELLED
from tests.replay.helpers import replay_argv, wait_until, write_lines
from tests.server import ROOT, Server


def _start(server: Server, path, url: str, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        replay_argv(path, url, *options),
        env=server.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _seen(receiver) -> Counter:
    return Counter(json.loads(r.body)["messageId"] for r in receiver.received)


def _control(server: Server, action: str) -> None:
    server.manage(
        "shell",
        "-c",
        "from sandbox.replay import services; "
        "from sandbox.replay.models import Replay; "
        f"services.replay_{action}(replay=Replay.objects.get())",
    )


def _children(pid: int) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True
    ).stdout.split()
    return [int(child) for child in found]


def _count(server: Server, sql: str) -> int:
    [(found,)] = server.query(sql)
    return found


def _resume_sends_the_rest_once(server: Server, receiver, count: int) -> None:
    resumed = server.manage("replay", "--resume", "1", check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    seen = _seen(receiver)
    assert set(seen) == {f"replay-{n}" for n in range(count)}
    assert set(seen.values()) == {1}


@pytest.fixture
def server(tmp_path) -> Server:
    server = Server(tmp_path)
    server.manage("migrate", "-v0")
    return server


@pytest.mark.slow
def test_each_event_is_stored_once_with_the_request_as_it_went(
    receiver, server, tmp_path
):
    count = 3000
    path = write_lines(tmp_path / "export.jsonl.gz", count, gzipped=True)
    done = server.manage(
        *replay_argv(path, receiver.url("/ok"), "--concurrency", "10")[2:]
    )
    assert done.stdout.splitlines()[-1].startswith(
        f"Summary: {count} events read, 0 bad lines, {count} delivered, 0 failed"
    )
    assert set(_seen(receiver).values()) == {1}
    assert len(_seen(receiver)) == count
    # The feeding process wrote the events (a child of the command): the lane.
    assert _count(server, "SELECT COUNT(*) FROM replay_laneitem") == 0
    rows = server.query(
        "SELECT d.message_id, d.state, d.outcome, d.response_status, "
        "d.latency_ms, d.attempt_count, d.payload, a.number, a.request_url, "
        "a.request_headers, a.response_status, a.response_body, a.outcome "
        "FROM delivery_delivery d JOIN delivery_attempt a ON a.delivery_id = d.id"
    )
    assert len(rows) == count
    sent = {json.loads(r.body)["messageId"]: r for r in receiver.received}
    for row in rows[:: count // 50]:
        message_id, state, outcome, status, latency, attempts, payload = row[:7]
        number, url, headers, answered, body, attempt_outcome = row[7:]
        assert (state, outcome, status, attempts) == ("delivered", "green", 200, 1)
        assert latency is not None and number == 1 and answered == 200
        assert attempt_outcome == "green" and json.loads(body) == {"success": True}
        assert url == receiver.url("/ok")
        # What is stored is what went out: the body and every header.
        received = sent[message_id]
        assert payload.encode() == received.body
        assert [tuple(pair) for pair in json.loads(headers)] == [
            pair for pair in received.raw_headers if pair[0] != "Host"
        ]
    [(settled_at,)] = server.query("SELECT settled_at FROM delivery_run")
    assert settled_at is not None


@pytest.mark.slow
def test_ctrl_c_stores_what_was_not_sent_and_a_resume_sends_it_once(
    receiver, server, tmp_path
):
    count = 3000
    path = write_lines(tmp_path / "export.jsonl", count)
    replaying = _start(
        server, path, receiver.url("/ok"), "--rate", "400", "--concurrency", "5"
    )
    wait_until(lambda: len(receiver.received) >= 800, timeout=60)
    replaying.send_signal(signal.SIGINT)
    replaying.communicate(timeout=60)
    assert replaying.returncode != 0
    # Nothing is left in hand: what the command held went back unsent, as
    # pending deliveries, and nothing is interrupted.
    assert _count(server, "SELECT COUNT(*) FROM replay_laneitem") == 0
    assert (
        _count(
            server,
            "SELECT COUNT(*) FROM delivery_attempt WHERE error_kind = 'interrupted'",
        )
        == 0
    )
    stored = _count(server, "SELECT COUNT(*) FROM delivery_delivery")
    sent = len(receiver.received)
    assert (
        _count(server, "SELECT COUNT(*) FROM delivery_delivery WHERE state = 'pending'")
        == stored - sent
    )

    _resume_sends_the_rest_once(server, receiver, count)


@pytest.mark.slow
def test_a_crash_of_both_processes_is_recovered_by_a_resume(receiver, server, tmp_path):
    count = 3000
    path = write_lines(tmp_path / "export.jsonl", count)
    replaying = _start(
        server,
        path,
        receiver.url("/ok"),
        "--rate",
        "500",
        "--concurrency",
        "5",
        "--time-scale",
        "100",
    )
    wait_until(lambda: len(receiver.received) >= 1000, timeout=60)
    [child] = _children(replaying.pid)
    # The machine going down: both at once, before either can store a thing.
    os.kill(child, signal.SIGSTOP)
    os.kill(replaying.pid, signal.SIGKILL)
    os.kill(child, signal.SIGKILL)
    replaying.wait(10)
    replaying.stdout.close()
    replaying.stderr.close()
    in_hand = _count(server, "SELECT COUNT(*) FROM replay_laneitem")
    assert in_hand > 0
    before = _seen(receiver)

    resumed = server.manage("replay", "--resume", "1", check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _count(server, "SELECT COUNT(*) FROM replay_laneitem") == 0
    interrupted = {
        message_id
        for (message_id,) in server.query(
            "SELECT d.message_id FROM delivery_delivery d JOIN delivery_attempt a "
            "ON a.delivery_id = d.id WHERE a.error_kind = 'interrupted'"
        )
    }
    # Everything it had in hand is said to be interrupted (the endpoint may
    # have it), and went again as its retry; nothing else went twice (beside
    # it, the engine may have had its own rows claimed: three times the
    # concurrency at most).
    assert in_hand <= len(interrupted) <= in_hand + 3 * 5
    seen = _seen(receiver)
    assert set(seen) == {f"replay-{n}" for n in range(count)}
    twice = {message_id for message_id, times in seen.items() if times > 1}
    assert twice <= interrupted & set(before)
    assert set(seen.values()) <= {1, 2}


@pytest.mark.slow
def test_pause_holds_the_command_and_cancel_ends_it(receiver, server, tmp_path):
    count = 4000
    path = write_lines(tmp_path / "export.jsonl", count)
    replaying = _start(
        server, path, receiver.url("/ok"), "--rate", "300", "--concurrency", "5"
    )
    try:
        wait_until(lambda: len(receiver.received) >= 300, timeout=60)
        _control(server, "pause")
        time.sleep(0.5)
        held_at = len(receiver.received)
        time.sleep(1.5)
        assert len(receiver.received) == held_at
        _control(server, "resume")
        wait_until(lambda: len(receiver.received) >= held_at + 300, timeout=30)
        _control(server, "cancel")
        out, err = replaying.communicate(timeout=60)
    finally:
        replaying.kill()
    assert replaying.returncode == 1, out + err
    assert _count(server, "SELECT COUNT(*) FROM replay_laneitem") == 0
    sent = len(receiver.received)
    assert sent < count
    # What the command held is stored cancelled, as the cancel ends deliveries.
    cancelled = _count(
        server,
        "SELECT COUNT(*) FROM delivery_delivery WHERE state = 'failed' "
        f"AND reason = '{CANCELLED}'",
    )
    assert cancelled > 0
    assert set(_seen(receiver).values()) == {1}

    _resume_sends_the_rest_once(server, receiver, count)


@pytest.mark.slow
def test_429_answers_slow_the_command_and_it_says_so(receiver, server, tmp_path):
    count = 600
    path = write_lines(tmp_path / "export.jsonl", count)
    done = server.manage(
        *replay_argv(
            path,
            receiver.url("/limited/150"),
            *("--concurrency", "10", "--time-scale", "100"),
        )[2:],
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The endpoint answered 429" in done.stdout
    assert "the replay slowed down" in done.stdout
    [(throttled,)] = server.query("SELECT throttled_count FROM delivery_run")
    assert throttled > 0
    refused = sum(1 for r in receiver.received if r.path == "/limited/150") - count
    # Slowed, not hammering: far fewer refusals than events.
    assert 0 < refused < count
    assert (
        _count(
            server, "SELECT COUNT(*) FROM delivery_delivery WHERE state = 'delivered'"
        )
        == count
    )
