"""A replay deleted from its page while `manage.py replay` runs it: the command
ends with a sentence and exit 1, not a traceback."""

import subprocess

import pytest

from tests.replay.helpers import replay_argv, wait_until, write_lines
from tests.server import ROOT, Server


@pytest.mark.slow
def test_the_command_says_its_replay_was_deleted(receiver, tmp_path):
    server = Server(tmp_path)
    server.manage("migrate", "-v0")
    path = write_lines(tmp_path / "export.jsonl", 2000)
    replaying = subprocess.Popen(
        replay_argv(path, receiver.url("/ok"), "--rate", "50"),
        env=server.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: len(receiver.received) >= 5, timeout=30)
        server.manage(
            "shell",
            "-c",
            "from sandbox.replay import services, selectors; "
            "[services.replay_delete(replay=r) for r in selectors.replay_list()]",
        )
        output, _ = replaying.communicate(timeout=30)
    finally:
        replaying.kill()
    assert replaying.returncode == 1, output
    assert "The replay was deleted while it ran" in output
    assert "Traceback" not in output
