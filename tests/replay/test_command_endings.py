"""How `manage.py replay` ends when not every event was delivered: the reason
said before the summary, which stays the last line, and the exit code; and
options a subscription takes from itself, refused with --to."""

import subprocess
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sandbox.replay.models import Replay
from tests.factories import make_subscription
from tests.replay.helpers import replay_argv, write_lines
from tests.server import ROOT, Server


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("option", "value"), [("--api-key", "other"), ("--custom-settings", "{}")]
)
def test_to_refuses_what_the_subscription_sets_itself(tmp_path, option, value):
    make_subscription(name="Hook")
    path = write_lines(tmp_path / "e.jsonl", 1)
    with pytest.raises(CommandError) as refused:
        call_command(
            "replay", str(path), "--to", "Hook", option, value, stdout=StringIO()
        )
    assert refused.value.returncode == 2
    assert str(refused.value).startswith(f"{option} applies to --endpoint")
    assert not Replay.objects.exists()


def _run(server: Server, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, env=server.env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_a_file_of_nothing_readable_exits_2_with_the_summary_last(tmp_path, receiver):
    server = Server(tmp_path)
    server.manage("migrate", "-v0")
    path = tmp_path / "junk.jsonl"
    path.write_bytes(b"\x00\xff not json\n{broken\n[1, 2]\n")
    ended = _run(server, replay_argv(path, receiver.url("/ok")))
    assert ended.returncode == 2, ended.stderr
    assert ended.stdout.strip().splitlines()[-1].startswith("Summary: 0 events read")
    assert f"No event could be read from {path}: 3 bad lines." in ended.stderr
    assert "CommandError" not in ended.stderr and "Traceback" not in ended.stderr
    assert not receiver.received


@pytest.mark.slow
def test_red_events_exit_1_with_the_reason_before_the_summary(tmp_path, receiver):
    server = Server(tmp_path)
    server.manage("migrate", "-v0")
    path = write_lines(tmp_path / "e.jsonl", 3)
    argv = replay_argv(path, receiver.url("/status/400"))
    ended = subprocess.run(
        [*argv, "--retry-policy", "none"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        # Unbuffered: the two streams reach the pipe in the order written.
        **{"env": {**server.env, "PYTHONUNBUFFERED": "1"}},
    )
    assert ended.returncode == 1, ended.stdout
    lines = ended.stdout.strip().splitlines()
    assert lines[-1].startswith(
        "Summary: 3 events read, 0 bad lines, 0 delivered, 3 failed"
    )
    assert lines[-2] == "3 of 3 events ended red (see the replay's deliveries)."
    assert "CommandError" not in ended.stdout
