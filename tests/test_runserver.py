"""`runserver` as a user starts it: real processes, real ports, a real database."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.server import ROOT, Server

# Each test runs real server processes.
pytestmark = pytest.mark.slow

UNREACHABLE_DELIVERY = (
    "from tests.factories import make_delivery, make_subscription\n"
    "make_delivery(subscription=make_subscription(name='Unreachable',"
    " endpoint_url='http://127.0.0.1:9/hook', timeout_seconds=1))\n"
)


@pytest.fixture
def stored(tmp_path) -> Server:
    """A migrated data directory holding one due delivery to a closed port."""
    server = Server(tmp_path)
    server.prepare()
    server.shell(UNREACHABLE_DELIVERY)
    return server


def _runserver(server: Server, port: int, *options: str, **popen) -> subprocess.Popen:
    address = f"127.0.0.1:{port}"
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runserver", *options, address],
        env=server.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _ended(pid: int) -> bool:
    """Exited: gone, or a zombie its new parent has not reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def test_runserver_on_a_busy_port_exits_non_zero_and_delivers_nothing(stored):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _runserver(stored, port, "--noreload")
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 1
    assert f"could not listen on 127.0.0.1:{port}" in stderr
    assert stored.query("SELECT state, attempt_count FROM delivery_delivery") == [
        ("pending", 0)
    ]
    assert stored.query("SELECT count(*) FROM delivery_attempt") == [(0,)]


def test_runserver_delivers_due_rows_once_serving_without_a_request(stored):
    port = Server(stored.data_dir).port
    process = _runserver(stored, port, "--noreload")
    try:
        attempted = _wait_for(
            lambda: (
                stored.query("SELECT attempt_count FROM delivery_delivery") != [(0,)]
            ),
            timeout=20,
        )
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert attempted


def test_killing_the_reloader_ends_the_serving_child(stored):
    port = Server(stored.data_dir).port
    parent = _runserver(stored, port)
    try:
        assert _wait_for(lambda: _accepts(port), timeout=30)
        [child] = _children(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.communicate(timeout=10)
        assert _wait_for(lambda: _ended(child), timeout=3)
        assert not _accepts(port)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.communicate(timeout=10)


def _engine_child(pid: int) -> int | None:
    for child in _children(pid):
        command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"sandbox.delivery.engine_process" in command:
            return child
    return None


def _answers(port: int) -> bool:
    # An answer, not a connection: the kernel queues connections as soon as the
    # port listens, before the reactor runs (and has its signal handlers).
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
            return True
    except OSError:
        return False


def _engine_once_serving(process: subprocess.Popen, port: int) -> int:
    """The pid of the engine process beside a server, once the server serves."""
    assert _wait_for(lambda: _answers(port), timeout=30)
    assert _wait_for(lambda: _engine_child(process.pid) is not None, timeout=10)
    return _engine_child(process.pid)


def _attempted(server: Server) -> bool:
    return _wait_for(
        lambda: server.query("SELECT attempt_count FROM delivery_delivery") != [(0,)],
        timeout=20,
    )


def test_the_engine_runs_beside_the_server_and_ends_with_it(stored):
    """The engine is a process of its own (a core of its own); a server killed
    outright leaves no engine behind."""
    port = Server(stored.data_dir).port
    process = _runserver(stored, port, "--noreload")
    try:
        engine = _engine_once_serving(process, port)
        assert _attempted(stored)
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)
        assert _wait_for(lambda: _ended(engine), timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_the_engine_can_stay_in_the_server_process(stored):
    stored.env["SANDBOX_ENGINE_PROCESS"] = "off"
    port = Server(stored.data_dir).port
    process = _runserver(stored, port, "--noreload")
    try:
        assert _attempted(stored)
        assert _engine_child(process.pid) is None
    finally:
        process.terminate()
        process.communicate(timeout=10)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stopping_server_stops_its_engine_first(stored, stop):
    """Daphne can take a second or two to close (requests in flight); its
    engine must not go on sending meanwhile, to the demo's mock on a server that
    no longer answers, say. So the server stops it first, saying so."""
    port = Server(stored.data_dir).port
    process = _runserver(stored, port, "--noreload")
    try:
        engine = _engine_once_serving(process, port)
        process.send_signal(stop)
        _, log = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert _ended(engine)
    assert f"engine process {engine} stopped" in log
    assert "Traceback" not in log


@contextmanager
def _in_a_terminal(server: Server, port: int, *options: str):
    """runserver as a shell starts it in a terminal: a process group of its own,
    which Ctrl+C signals as a whole, SIGINT at its default. The group is killed
    on the way out if it still runs."""
    process = _runserver(
        server,
        port,
        *options,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=10)


def _ctrl_c(process: subprocess.Popen) -> tuple[str, str]:
    """Ctrl+C in the process's terminal; its output and log once it ended."""
    os.killpg(process.pid, signal.SIGINT)
    return process.communicate(timeout=20)


@pytest.mark.parametrize("after", [0.3, 0.8])
@pytest.mark.parametrize("options", [("--noreload",), ()])
def test_ctrl_c_while_the_server_starts_is_a_quiet_stop(stored, options, after):
    """While Django loads (about a second here) or Twisted starts: exit 130, or
    0 once runserver took over, and never a traceback."""
    port = Server(stored.data_dir).port
    with _in_a_terminal(stored, port, *options) as process:
        time.sleep(after)
        out, log = _ctrl_c(process)
    assert process.returncode in (0, 130, -signal.SIGINT), log
    assert "Traceback" not in log + out
    assert "KeyboardInterrupt" not in log + out


def test_ctrl_c_stops_the_server_and_its_engine_without_a_traceback(stored):
    port = Server(stored.data_dir).port
    with _in_a_terminal(stored, port, "--noreload") as process:
        engine = _engine_once_serving(process, port)
        # The engine has a group of its own: Ctrl+C reaches the server only,
        # which stops its engine first.
        assert os.getpgid(engine) != os.getpgid(process.pid)
        _, log = _ctrl_c(process)
    assert process.returncode == 0
    assert _wait_for(lambda: _ended(engine), timeout=5)
    assert f"engine process {engine} stopped" in log
    assert "Traceback" not in log
