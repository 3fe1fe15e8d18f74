"""A replay command's feeding: a thread of the command at first, then a process
of its own (feed_process.py). Every event is enqueued and sent once, whichever
fed it; a feeding process that dies leaves the replay interrupted and
resumable, and the command says so."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections import Counter

import pytest
from asgiref.sync import sync_to_async

from sandbox.delivery.engine import Engine
from sandbox.delivery.models import Delivery, State
from sandbox.replay import services
from sandbox.replay.feed_process import Early, Feeding, Forked
from sandbox.replay.models import Replay
from tests.factories import ad_hoc_target
from tests.replay.helpers import replay_argv, wait_until, write_lines
from tests.server import ROOT, Server


async def _until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await sync_to_async(condition)():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _message_ids(receiver) -> Counter:
    return Counter(json.loads(r.body)["messageId"] for r in receiver.received)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_the_child_process_goes_on_from_where_the_command_stopped(
    receiver, tmp_path
):
    count = 4000
    path = write_lines(tmp_path / "events.jsonl", count)
    replay = await sync_to_async(services.replay_create)(
        # A rate the command's own thread cannot read to the end before the
        # child is ready (half a second).
        target=ad_hoc_target(receiver.url("/ok")),
        path=path,
        rate=2000.0,
        concurrency=10,
    )
    engine = Engine(concurrency=10)
    stop = asyncio.Event()
    working = asyncio.create_task(engine.run_forever(stop))
    feeder = await sync_to_async(services.replay_feeding_take)(replay_id=replay.pk)
    feeding = Feeding(replay_id=replay.pk, feeder=feeder, wake=engine.wake)
    feeding.start()
    try:
        await _until(feeding.done, timeout=60)
        assert await feeding.stop() is None
        assert feeding.in_child
        await _until(
            lambda: (
                not Delivery.objects.filter(
                    run_id=replay.run_id, state__in=["pending", "retrying"]
                ).exists()
            ),
            timeout=60,
        )
    finally:
        stop.set()
        engine.wake()
        await working
    stored = await sync_to_async(Replay.objects.get)(pk=replay.pk)
    assert stored.fed_at is not None and stored.feeder == ""
    assert (stored.position, stored.events_read) == (count, count)
    seen = _message_ids(receiver)
    assert set(seen) == {f"replay-{n}" for n in range(count)}
    assert set(seen.values()) == {1}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_small_file_is_read_by_the_command_and_the_child_never_feeds(
    receiver, tmp_path
):
    path = write_lines(tmp_path / "events.jsonl", 30)
    replay = await sync_to_async(services.replay_create)(
        target=ad_hoc_target(receiver.url("/ok")), path=path, concurrency=10
    )
    feeder = await sync_to_async(services.replay_feeding_take)(replay_id=replay.pk)
    feeding = Feeding(replay_id=replay.pk, feeder=feeder, wake=lambda: None)
    feeding.start()
    await _until(feeding.done, timeout=30)
    assert await feeding.stop() is None
    assert not feeding.in_child
    stored = await sync_to_async(Replay.objects.get)(pk=replay.pk)
    assert stored.fed_at is not None and stored.events_read == 30


def _children(pid: int) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True
    ).stdout.split()
    return [int(child) for child in found]


@pytest.mark.slow
def test_a_killed_feeding_process_leaves_the_replay_to_resume(receiver, tmp_path):
    server = Server(tmp_path)
    server.manage("migrate", "-v0")
    count = 6000
    path = write_lines(tmp_path / "export.jsonl", count)
    replaying = subprocess.Popen(
        replay_argv(path, receiver.url("/ok"), "--rate", "1000", "--concurrency", "5"),
        env={**server.env, "SANDBOX_REPLAY_CHUNK": "100"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The child feeds once the command's own thread has handed over: the
        # replay then reads on while the command's process holds no feeding.
        wait_until(lambda: len(receiver.received) >= 1500, timeout=60)
        [child] = _children(replaying.pid)
        os.kill(child, signal.SIGKILL)
        out, err = replaying.communicate(timeout=60)
    finally:
        replaying.kill()
    assert replaying.returncode == 1, out + err
    assert "Reading the file failed: the feeding process ended unexpectedly" in err
    [(position, feeder, fed_at)] = server.query(
        "SELECT position, feeder, fed_at FROM replay_replay"
    )
    assert 0 < position < count and feeder == "" and fed_at is None

    resumed = server.manage("replay", "--resume", "1", check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert resumed.stdout.startswith(f"Resuming run 1 from line {position} ")
    seen = _message_ids(receiver)
    assert set(seen) == {f"replay-{n}" for n in range(count)}
    # Nothing was in flight from the child: the engine, in the command, went on
    # until every enqueued event was sent, so none went twice.
    assert set(seen.values()) == {1}
    [(open_rows,)] = server.query(
        "SELECT COUNT(*) FROM delivery_delivery WHERE state IN ('pending', 'retrying')"
    )
    assert open_rows == 0
    [(delivered,)] = server.query(
        f"SELECT COUNT(*) FROM delivery_delivery WHERE state = '{State.DELIVERED}'"
    )
    assert delivered == count


@pytest.mark.slow
def test_a_relative_data_directory_is_the_same_for_the_reading_process(
    receiver, tmp_path
):
    """Run from another directory with SANDBOX_DATA_DIR relative to it, the
    reading process (started in the project's directory) opens the same
    database and the same shuffle buckets."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "SANDBOX_DB_PATH"},
        "SANDBOX_DATA_DIR": "data",
    }
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"],
        env=env,
        cwd=tmp_path,
        check=True,
    )
    count = 3000
    path = write_lines(tmp_path / "export.jsonl", count)
    replayed = subprocess.run(
        replay_argv("export.jsonl", receiver.url("/ok"), "--rate", "1000", "--shuffle"),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert f"Summary: {count} events read, 0 bad lines, {count} delivered" in (
        replayed.stdout
    )
    seen = _message_ids(receiver)
    assert set(seen) == {f"replay-{n}" for n in range(count)}
    assert set(seen.values()) == {1}
    assert path.parent.joinpath("data", "sandbox.sqlite3").exists()
    assert not ROOT.joinpath("data").exists()


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as found:
        return found.read().decode().split("\0")[:-1]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux")
def test_the_command_forks_its_reading_process_which_reads_it_all(receiver, tmp_path):
    """Run as a process of its own (no thread but its own), the command forks
    its reading process instead of starting one afresh: it is the same
    program, ready at once, and every event goes out once through the lane."""
    server = Server(tmp_path)
    server.manage("migrate", "-v0")
    count = 1500
    path = write_lines(tmp_path / "export.jsonl", count)
    replaying = subprocess.Popen(
        replay_argv(path, receiver.url("/ok"), "--rate", "500"),
        env=server.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: len(receiver.received) >= 100, timeout=60)
        [child] = _children(replaying.pid)
        assert _cmdline(child) == _cmdline(replaying.pid)
        out, err = replaying.communicate(timeout=60)
    finally:
        replaying.kill()
    assert replaying.returncode == 0, out + err
    assert f"Summary: {count} events read, 0 bad lines, {count} delivered" in out
    seen = _message_ids(receiver)
    assert seen == Counter({f"replay-{n}": 1 for n in range(count)})
    # No event went through the engine's queue: the lane stored each once.
    [(attempts, deliveries)] = server.query(
        "SELECT (SELECT COUNT(*) FROM delivery_attempt), "
        "(SELECT COUNT(*) FROM delivery_delivery)"
    )
    assert attempts == deliveries == count


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_forked_reading_process_that_dies_before_it_is_ready_leaves_the_reading_to_the_command(  # noqa: E501
    receiver, tmp_path
):
    count = 300
    path = write_lines(tmp_path / "events.jsonl", count)
    replay = await sync_to_async(services.replay_create)(
        target=ad_hoc_target(receiver.url("/ok")), path=path, concurrency=10
    )
    feeder = await sync_to_async(services.replay_feeding_take)(replay_id=replay.pk)
    # A child that ends before it says it is ready, as a forked one could.
    ours, theirs = socket.socketpair()
    with warnings.catch_warnings():
        # Python 3.12 warns of a fork beside threads; this child only exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        os._exit(3)
    theirs.close()
    early = Early(Forked(pid), ours, None)
    engine = Engine(concurrency=10)
    stop = asyncio.Event()
    working = asyncio.create_task(engine.run_forever(stop))
    feeding = Feeding(replay_id=replay.pk, feeder=feeder, wake=engine.wake, early=early)
    feeding.start()
    try:
        await _until(feeding.done, timeout=60)
        assert await feeding.stop() is None
        assert not feeding.in_child
        await _until(
            lambda: (
                not Delivery.objects.filter(
                    run_id=replay.run_id, state__in=["pending", "retrying"]
                ).exists()
            ),
            timeout=60,
        )
    finally:
        stop.set()
        engine.wake()
        await working
    assert early.process.wait() == 3
    stored = await sync_to_async(Replay.objects.get)(pk=replay.pk)
    assert stored.fed_at is not None and stored.events_read == count
    assert _message_ids(receiver) == Counter({f"replay-{n}": 1 for n in range(count)})
