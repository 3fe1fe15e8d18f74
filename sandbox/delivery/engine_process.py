"""The server's engine in a process of its own, on the machine's other core.

One Python process runs one thing at a time (the GIL): an engine in a thread of
the server takes turns with every page request and every tracking API call. So
`runserver` starts its engine as a child process on the same database, and the
two speak over a socket pair:

- server to engine: a wake (one byte) when a door enqueued, so nothing waits for
  the engine's next look;
- engine to server: each change it committed (runtime's pokes), so the live
  watcher in the server looks at once, as it would for a change made here.

The child ends as soon as the server goes (its end of the socket closes), as an
engine thread would: what it had in flight is recovered by the next engine. A
child that dies is started again.
"""

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.db import connections

logger = logging.getLogger("sandbox.runtime")

WAKE = b"w"
_LENGTH = struct.Struct("!I")
RESTART_AFTER_SECONDS = 1.0


def start_child(
    module: str, *args: str, also: socket.socket | None = None
) -> tuple[subprocess.Popen, socket.socket]:
    """`python -m module FD DATABASE ARGS…` on this process's database, and this
    side of the socket pair whose other end is FD. The child has its own process
    group, so Ctrl+C in the terminal reaches this process, never the child, not
    even while it is still importing (this side of the socket ends it). It runs
    in the project's directory, given this process's data directory, should
    that have been named relative to this one's. `also`: a further socket
    for the child, its descriptor passed as the last argument."""
    ours, theirs = socket.socketpair()
    passed = (theirs.fileno(),) if also is None else (theirs.fileno(), also.fileno())
    if also is not None:
        args = (*args, str(also.fileno()))
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                module,
                str(theirs.fileno()),
                str(connections["default"].settings_dict["NAME"]),
                *args,
            ],
            pass_fds=passed,
            process_group=0,
            cwd=settings.BASE_DIR,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": os.environ.get(
                    "DJANGO_SETTINGS_MODULE", "sandbox.settings"
                ),
                "SANDBOX_DATA_DIR": str(settings.DATA_DIR),
            },
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return process, ours


class EngineProcess:
    """The server's side: starts the child, wakes it, announces its changes."""

    def __init__(self, announce):
        self._announce = announce
        self._socket: socket.socket | None = None
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._process, self._socket = start_child("sandbox.delivery.engine_process")
        ours = self._socket
        threading.Thread(
            target=self._listen,
            args=(ours, self._process),
            name="sandbox-engine-changes",
            daemon=True,
        ).start()
        logger.info("engine process %s started", self._process.pid)

    def wake(self) -> None:
        """Safe from any thread; never blocks (a full socket holds wakes enough)."""
        sock = self._socket
        if sock is None:
            return
        with contextlib.suppress(OSError):  # BlockingIOError included
            sock.send(WAKE, socket.MSG_DONTWAIT)

    def _listen(self, sock: socket.socket, process: subprocess.Popen) -> None:
        stream = sock.makefile("rb")
        try:
            while True:
                header = stream.read(_LENGTH.size)
                if len(header) < _LENGTH.size:
                    break
                (size,) = _LENGTH.unpack(header)
                self._announce(pickle.loads(stream.read(size)))
        except Exception:
            logger.exception("reading the engine process's changes failed")
        finally:
            stream.close()
        code = process.wait()
        if self._socket is not sock:
            return  # stopped on purpose
        logger.error("the engine process ended (%s); starting it again", code)
        time.sleep(RESTART_AFTER_SECONDS)
        with self._lock:
            if self._socket is sock:
                sock.close()
                self.start()

    def stop(self) -> None:
        with self._lock:
            sock, process = self._socket, self._process
            self._socket = self._process = None
        if sock is not None:
            # shutdown, not only close: the listening thread's reader holds the
            # socket open, and the child must see its end now.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
            logger.info("engine process %s stopped", process.pid)


# The child ----------------------------------------------------------------------


class _Changes:
    """Sends each relayed change to the server; from any thread of the child."""

    def __init__(self, sock: socket.socket):
        self._socket = sock
        self._lock = threading.Lock()

    def __call__(self, change: dict) -> None:
        data = pickle.dumps(change)
        with self._lock:
            try:
                self._socket.sendall(_LENGTH.pack(len(data)) + data)
            except OSError:
                os._exit(0)  # the server is gone


def _read_wakes(sock: socket.socket, engine_ready: threading.Event, woken) -> None:
    """Wakes from the server, until it goes; started before anything else, so a
    server gone while this process still starts up ends it too."""
    while True:
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            # The server is gone: end now, as its engine thread would have.
            os._exit(0)
        if engine_ready.is_set():  # before, the engine's first look finds all
            woken()


def main() -> None:
    # The server's end of the socket closing is what ends this process; a
    # SIGINT sent to it alone (its group is its own) changes nothing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd, database_name = int(sys.argv[1]), sys.argv[2]
    sock = socket.socket(fileno=fd)
    engine_ready = threading.Event()
    wake = []
    threading.Thread(
        target=_read_wakes,
        args=(sock, engine_ready, lambda: wake[0]()),
        name="wakes",
        daemon=True,
    ).start()
    import django

    django.setup()
    connections["default"].settings_dict["NAME"] = database_name
    from sandbox import heap
    from sandbox.delivery import runtime
    from sandbox.delivery.engine import Engine

    runtime.relay_to(_Changes(sock))
    heap.settle()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    engine = Engine()
    wake.append(lambda: loop.call_soon_threadsafe(engine.wake))
    engine_ready.set()
    loop.run_until_complete(engine.run_forever(asyncio.Event()))


if __name__ == "__main__":
    main()
