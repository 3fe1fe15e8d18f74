"""Long-running commands set the garbage collector for a long life (sandbox.heap):
what Django loaded is frozen out of the collector's sight, and young objects are
collected less often. Short commands keep Python's defaults."""

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import heap

ROOT = Path(__file__).resolve().parents[1]
# manage.py's main() for a command's --help (which exits), then the collector's
# state as the command would have run with it.
PROBE = """
import gc, sys
sys.argv = ["manage.py", {command!r}, "--help"]
import manage
try:
    manage.main()
except SystemExit:
    pass
print("STATE", gc.get_threshold(), gc.get_freeze_count() > 0)
"""


def _state_under(command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(command=command)],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "sandbox.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    [state] = [row for row in done.stdout.splitlines() if row.startswith("STATE")]
    return state


SETTLED = (heap.YOUNG_THRESHOLD, heap.OLDER_THRESHOLD, heap.OLDER_THRESHOLD)


@pytest.mark.parametrize("command", ["runserver", "runengine", "replay", "runsuite"])
def test_a_long_running_command_freezes_what_it_loaded(command):
    assert _state_under(command) == f"STATE {SETTLED} True"


def test_a_short_command_keeps_python_s_collector():
    assert _state_under("sendevent") == f"STATE {gc.get_threshold()} False"
