"""A replay whose process is killed resumes from where it stopped, and sends
nothing twice but what was in flight at the kill (which the sandbox records as
interrupted: the endpoint may have received it)."""

import json
import os
import signal
import subprocess
import time
from collections import Counter

import pytest

from tests.replay.helpers import replay_argv, wait_until, write_lines
from tests.server import ROOT, Server


def _children(pid: int) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True
    ).stdout.split()
    return [int(child) for child in found]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_a_killed_replay_resumes_without_sending_twice(receiver, tmp_path):
    server = Server(tmp_path)
    server.manage("migrate", "-v0")
    path = write_lines(tmp_path / "export.jsonl.gz", 3000, gzipped=True)
    replaying = subprocess.Popen(
        replay_argv(
            path,
            receiver.url("/ok"),
            *("--rate", "500", "--concurrency", "5", "--time-scale", "100"),
        ),
        env={**server.env, "SANDBOX_REPLAY_CHUNK": "100"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_until(lambda: len(receiver.received) >= 800, timeout=60)
    reading = _children(replaying.pid)
    os.kill(replaying.pid, signal.SIGKILL)
    replaying.wait(10)
    # Its reading process stores what the command had in hand, then ends.
    wait_until(lambda: not any(_alive(pid) for pid in reading), timeout=30)
    first_line = replaying.stdout.readline()
    replaying.stdout.close()
    assert "(run 1)" in first_line
    [(position,)] = server.query("SELECT position FROM replay_replay")
    assert 0 < position < 3000
    sent_before = len(receiver.received)
    time.sleep(0.2)
    assert len(receiver.received) == sent_before

    resumed = server.manage("replay", "--resume", "1", check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert resumed.stdout.startswith(f"Resuming run 1 from line {position} ")
    assert "Summary: " in resumed.stdout.splitlines()[-1]
    seen = Counter(json.loads(r.body)["messageId"] for r in receiver.received)
    assert set(seen) == {f"replay-{n}" for n in range(3000)}
    twice = {message_id for message_id, times in seen.items() if times > 1}
    interrupted = {
        message_id
        for (message_id,) in server.query(
            "SELECT d.message_id FROM delivery_delivery d JOIN delivery_attempt a "
            "ON a.delivery_id = d.id WHERE a.error_kind = 'interrupted'"
        )
    }
    # Only what was in flight at the kill (at most the concurrency) went twice;
    # what was claimed ahead of the slots is recorded interrupted too.
    assert twice <= interrupted
    assert len(twice) <= 5
    assert len(interrupted) <= 5 * 3
    assert all(times <= 2 for times in seen.values())
