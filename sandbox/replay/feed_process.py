"""A replay command's feeding in a process of its own, on the machine's other core.

The `replay` command sends with an engine in its own process. Reading the file
and enqueueing it (JSON parsing, the bulk door, a transaction per chunk) costs
about as much CPU again, and one Python process runs one thing at a time (the
GIL), so a thread doing it took turns with every send. So the feeding moves to
a child process on the same database, as the server's engine does
(sandbox.delivery.engine_process). A child started afresh needs about
two thirds of a second (Django's setup); meanwhile a thread of the command
feeds, so the first events go out at once, and a small file is all read before
the child is needed (it is then ended, having touched nothing). Where it can,
the command forks the child instead before its own threads start (fork_early):
it is ready in milliseconds, and the whole replay goes through the lane.

The command takes the feeding (the replay's `feeder`) under its own name, and
its thread and then the child feed under that name. So a command that died is
seen as gone at once (its pid), a `--resume` may take over, and a chunk the old
child still had in hand is refused by `_enqueue_chunk` (no longer the feeder).

They speak over a socket pair:
- child to command: READY once it can feed; a WAKE for every chunk committed, so
  the engine claims at once; FAULT and its text if the feeding failed.
- command to child: GO, once the command's thread has stopped between chunks;
  STOP when the command stops, on which the child stops after the chunk in hand.
  The command's side closing without STOP means the command died: the child
  ends at once, as a thread of it would have (a chunk in hand is one
  transaction, so it is enqueued whole or not at all).
"""

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import connection, connections

from sandbox.delivery.engine_process import start_child

logger = logging.getLogger("sandbox.replay")

READY = b"r"
WAKE = b"w"
GO = b"g"
STOP = b"s"
# Followed by the failure's text, until the child closes its side.
FAULT = b"f"
ENDED = "the feeding process ended unexpectedly ({code})"
STOP_WAIT_SECONDS = 30
# How often the command looks whether a forked child died before it was ready.
FORKED_LOOK_SECONDS = 0.05


class Forked:
    """A child forked by fork_early, as FeedProcess uses a subprocess.Popen."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def wait(self) -> int:
        with self._lock:
            if self.returncode is None:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


@dataclasses.dataclass
class Early:
    """A feeding child forked ahead, and this side of its sockets."""

    process: Forked
    socket: socket.socket
    lane_socket: socket.socket | None


def fork_early(*, replay_id: int, feeder: str, lane: bool) -> Early | None:
    """The feeding child forked from this process, where that is safe: on
    Linux, with no thread but this one (a thread holding a lock at the fork
    would leave it held in the child for good) and no transaction open. It
    shares what this process has imported, so it is ready at once, instead of
    after Django's setup; its database connections are its own (this
    process's are closed first, and open again when next used). None where
    it cannot: FeedProcess then starts one afresh."""
    if (
        not sys.platform.startswith("linux")
        or threading.active_count() != 1
        or any(c.in_atomic_block for c in connections.all(initialized_only=True))
    ):
        return None
    connections.close_all()
    ours, theirs = socket.socketpair()
    lane_ours, lane_theirs = socket.socketpair() if lane else (None, None)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        pid = os.fork()
    except OSError:
        # No memory or no process to spare: one started afresh may yet be.
        for end in (ours, theirs, lane_ours, lane_theirs):
            if end is not None:
                end.close()
        return None
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            # Its own process group, as a child started afresh: Ctrl+C in the
            # terminal reaches the command alone.
            os.setpgid(0, 0)
            ours.close()
            if lane_ours is not None:
                lane_ours.close()
            code = _serve(theirs, lane_theirs, str(replay_id), feeder)
        except BaseException:
            logger.exception("feeding replay %s failed", replay_id)
        finally:
            # Never the command's own exit: its buffers and exit handlers are
            # the command's.
            os._exit(code)
    theirs.close()
    if lane_theirs is not None:
        lane_theirs.close()
    return Early(Forked(pid), ours, lane_ours)


class FeedProcess:
    """The command's side of the child: starts it, relays what it says."""

    def __init__(
        self,
        *,
        replay_id: int,
        feeder: str,
        woken: Callable[[], None],
        ready: Callable[[], None],
        lane: bool = False,
        early: Early | None = None,
    ):
        self._replay_id = replay_id
        self._early = early
        self._feeder = feeder
        self._lane = lane
        # The lane's own socket pair (sandbox.replay.lane): ours, and the
        # child's until it is started.
        self.lane_socket: socket.socket | None = None
        self._woken = woken
        self._ready = ready
        self._socket: socket.socket | None = None
        self._process: subprocess.Popen | None = None
        self._ended = threading.Event()
        self.went = False
        self.fault: str | None = None

    @property
    def forked(self) -> bool:
        return self._early is not None

    def start(self) -> None:
        if self._early is not None:
            self._process = self._early.process
            self._socket, self.lane_socket = self._early.socket, self._early.lane_socket
            threading.Thread(
                target=self._listen,
                args=(self._socket,),
                name="replay-feeding",
                daemon=True,
            ).start()
            return
        # Ctrl+C reaches the command alone, which tells the child to stop.
        theirs = None
        if self._lane:
            self.lane_socket, theirs = socket.socketpair()
        try:
            self._process, ours = start_child(
                "sandbox.replay.feed_process",
                str(self._replay_id),
                self._feeder,
                also=theirs,
            )
        finally:
            if theirs is not None:
                theirs.close()
        self._socket = ours
        threading.Thread(
            target=self._listen, args=(ours,), name="replay-feeding", daemon=True
        ).start()

    def done(self) -> bool:
        return self._ended.is_set()

    def go(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.sendall(GO)
            self.went = True

    def _listen(self, sock: socket.socket) -> None:
        fault = b""
        faulted = False
        try:
            while data := sock.recv(65536):
                if faulted:
                    fault += data
                    continue
                said, fault_follows, rest = data.partition(FAULT)
                if READY in said:
                    self._ready()
                if WAKE in said:
                    self._woken()
                if fault_follows:
                    faulted, fault = True, rest
        except OSError:
            pass
        code = self._process.wait()
        if faulted:
            self.fault = fault.decode("utf-8", "replace") or ENDED.format(code=code)
        elif code and self.went:
            self.fault = ENDED.format(code=code)
        self._ended.set()

    def stop(self) -> None:
        """Tell the child to stop after its chunk and wait until it has; one
        never told to go is ended at once (it has touched nothing). Blocking."""
        sock = self._socket
        if sock is None:
            return
        if not self.went:
            with contextlib.suppress(OSError):
                self._process.kill()
        with contextlib.suppress(OSError):
            sock.sendall(STOP)
            sock.shutdown(socket.SHUT_WR)
        if not self._ended.wait(STOP_WAIT_SECONDS):
            self._process.kill()
            self._ended.wait(STOP_WAIT_SECONDS)
        sock.close()


def _feed_here(replay_id: int, feeder: str, stop: threading.Event) -> None:
    from sandbox.replay import services

    try:
        services.replay_feed(
            replay_id=replay_id, feeder=feeder, stop=stop, hand_over=True
        )
    finally:
        connection.close()


def _still_to_feed(replay_id: int, feeder: str) -> bool:
    """Whether the feeding stopped for the hand-over, with the source unread."""
    from sandbox.replay.models import Replay

    return (
        Replay.objects.filter(pk=replay_id, feeder=feeder, fed_at=None, problem="")
        .exclude(status=Replay.Status.CANCELLED)
        .exists()
    )


class Feeding:
    """A command's feeding of its replay: its own thread until the child process
    is ready, the child from then on. On the command's event loop."""

    def __init__(
        self,
        *,
        replay_id: int,
        feeder: str,
        wake: Callable[[], None],
        lane: bool = False,
        early: Early | None = None,
    ):
        self._replay_id = replay_id
        self._feeder = feeder
        self._stop_here = threading.Event()
        loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()

        def on_loop(callback) -> Callable[[], None]:
            def call() -> None:
                with contextlib.suppress(RuntimeError):  # the loop closed
                    loop.call_soon_threadsafe(callback)

            return call

        self._child = FeedProcess(
            replay_id=replay_id,
            feeder=feeder,
            woken=on_loop(wake),
            ready=on_loop(self._ready.set),
            lane=lane,
            early=early,
        )
        self._task: asyncio.Task | None = None
        self.fault: str | None = None
        self._lane_writer: asyncio.StreamWriter | None = None
        self._lane_reading: asyncio.Task | None = None

    @property
    def lane(self) -> bool:
        return self._child.lane_socket is not None

    async def attach(self, sender) -> None:
        """The lane's sender takes the events the child hands over, and its
        answers go back to the child."""
        reader, self._lane_writer = await asyncio.open_connection(
            sock=self._child.lane_socket
        )
        # drain() waits until all that was written is in the socket: what
        # `starting` says reaches the child even should this process die.
        self._lane_writer.transport.set_write_buffer_limits(high=0)
        self._lane_reading = asyncio.create_task(self._read_lane(reader, sender))

    def answer(self, kind: str, payload) -> None:
        from sandbox.delivery import lane

        writer = self._lane_writer
        if writer is not None and not writer.is_closing():
            writer.write(lane.frame(kind, payload))

    async def starting(self, keys: list[int], results: list | None = None) -> None:
        """Tell the child these go out next, with the answers gathered since
        the last (one write), and wait until that is in the socket."""
        from sandbox.delivery import lane

        writer = self._lane_writer
        if writer is None or writer.is_closing():
            return
        said = lane.frame(lane.STARTING, keys)
        if results:
            said = lane.frame(lane.RESULTS, results) + said
        writer.write(said)
        with contextlib.suppress(OSError, ConnectionError):
            await writer.drain()

    async def end_lane(self) -> None:
        """Nothing more comes from the sender: the child records what came."""
        from sandbox.delivery import lane

        writer = self._lane_writer
        if writer is None:
            return
        self.answer(lane.END, None)
        with contextlib.suppress(OSError, ConnectionError):
            await writer.drain()
        if self._lane_reading is not None:
            self._lane_reading.cancel()

    async def _read_lane(self, reader: asyncio.StreamReader, sender) -> None:
        from sandbox.delivery import lane

        try:
            while True:
                header = await reader.readexactly(lane.LENGTH.size)
                (size,) = lane.LENGTH.unpack(header)
                kind, payload = pickle.loads(await reader.readexactly(size))
                if kind == lane.ITEMS:
                    sender.add(payload)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            # The child is gone: nothing sent now could be recorded.
            sender.halt()

    def start(self) -> None:
        self._child.start()
        self._task = asyncio.create_task(self._run())

    def done(self) -> bool:
        return self._task.done() and (not self._child.went or self._child.done())

    @property
    def in_child(self) -> bool:
        """Whether the child process took the feeding over."""
        return self._child.went

    async def _run(self) -> None:
        if self._child.forked:
            # Ready in a moment: it feeds it all, unless it died first.
            while not (self._ready.is_set() or self._child.done()):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ready.wait(), FORKED_LOOK_SECONDS)
            if self._ready.is_set():
                await self._hand_over()
                return
        here = asyncio.create_task(
            asyncio.to_thread(
                _feed_here, self._replay_id, self._feeder, self._stop_here
            )
        )
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait({here, ready}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        self._stop_here.set()
        try:
            await here
        except Exception as error:
            logger.exception("feeding replay %s failed", self._replay_id)
            self.fault = str(error)
            # The child, never told to go, has touched nothing.
            await asyncio.to_thread(self._child.stop)
            return
        await self._hand_over()

    async def _hand_over(self) -> None:
        if await sync_to_async(_still_to_feed)(self._replay_id, self._feeder):
            self._child.go()
        else:
            # All read here (a small file), or it will not be read: the child,
            # still waiting for GO, has touched nothing.
            await asyncio.to_thread(self._child.stop)

    async def stop(self) -> str | None:
        """Stop feeding (after the chunk in hand) and end the child; what went
        wrong, if anything did."""
        self._stop_here.set()
        await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.to_thread(self._child.stop)
        self._close_lane()
        return self.fault or self._child.fault

    def _close_lane(self) -> None:
        if self._lane_reading is not None:
            self._lane_reading.cancel()
        if self._lane_writer is not None:
            # The transport owns the socket now: closing it closes the socket.
            self._lane_writer.close()
        elif self._child.lane_socket is not None:
            self._child.lane_socket.close()


# The child ----------------------------------------------------------------------


def _listen_to_command(
    sock: socket.socket, go: threading.Event, stop: threading.Event, lane: bool
) -> None:
    """GO starts the feeding, STOP stops it between chunks; the command gone
    ends this process now, unless it feeds a lane: then it stores first what
    the command had in hand (lane.lane_feed), in a moment."""
    with contextlib.suppress(OSError):
        while data := sock.recv(4096):
            if GO in data:
                go.set()
            if STOP in data:
                stop.set()
                go.set()
    if stop.is_set():
        return
    if lane and go.is_set():
        stop.set()
        return
    os._exit(0)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd, database_name, replay_id, feeder = sys.argv[1:5]
    lane_fd = int(sys.argv[5]) if len(sys.argv) > 5 else None
    sock = socket.socket(fileno=int(fd))
    lane_socket = None if lane_fd is None else socket.socket(fileno=lane_fd)

    def setup() -> None:
        import django

        django.setup()
        connections["default"].settings_dict["NAME"] = database_name

    sys.exit(_serve(sock, lane_socket, replay_id, feeder, setup=setup))


def _serve(
    sock: socket.socket,
    lane_socket: socket.socket | None,
    replay_id: str,
    feeder: str,
    *,
    setup: Callable[[], None] = lambda: None,
) -> int:
    """The child's life: listen to the command, set up, say READY, and feed
    once told GO. Its exit code."""
    go, stop = threading.Event(), threading.Event()
    threading.Thread(
        target=_listen_to_command,
        args=(sock, go, stop, lane_socket is not None),
        name="told",
        daemon=True,
    ).start()
    lock = threading.Lock()

    def tell(data: bytes) -> None:
        with lock, contextlib.suppress(OSError):
            sock.sendall(data)

    setup()
    from sandbox import heap
    from sandbox.delivery import runtime
    from sandbox.replay import services

    runtime.wake_through(lambda: tell(WAKE))
    heap.settle()
    tell(READY)
    go.wait()
    if stop.is_set():
        return 0
    try:
        if lane_socket is None:
            services.replay_feed(replay_id=int(replay_id), feeder=feeder, stop=stop)
        else:
            from sandbox.replay import lane

            lane.lane_feed(
                replay_id=int(replay_id),
                feeder=feeder,
                stop=stop,
                link=lane.Link(lane_socket),
            )
    except Exception as error:
        logger.exception("feeding replay %s failed", replay_id)
        tell(FAULT + str(error).encode("utf-8", "replace"))
        return 1
    finally:
        connections.close_all()
    return 0


if __name__ == "__main__":
    main()
