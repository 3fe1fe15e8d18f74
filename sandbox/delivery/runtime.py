"""The server process's background work: the engine and the live watcher.

`runserver` starts the engine once its port is bound (a server that cannot bind
never delivers), as a process of its own (sandbox.delivery.engine_process), so
the engine and the pages each have a core; SANDBOX_ENGINE_PROCESS=off keeps it
in a daemon thread with its own asyncio loop, as under any other ASGI server,
where the first request starts it. Management commands and tests start an engine
only when they ask.

The watcher runs on the server's own loop, started by the first request, because
the in-memory channel layer's queues belong to that loop and must not be touched
from another thread.
"""

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Iterator

from django.conf import settings

logger = logging.getLogger("sandbox.runtime")

_lock = threading.Lock()
_engine_loop: asyncio.AbstractEventLoop | None = None
_engine_thread: threading.Thread | None = None
_engine_process = None
_engine_stop: asyncio.Event | None = None
_watcher_task: asyncio.Task | None = None
_watcher = None
_watcher_loop: asyncio.AbstractEventLoop | None = None
# In the server's engine process (sandbox.delivery.engine_process): where the
# changes it commits go, to be announced in the server.
_relay = None
# In a replay command's feeding process (sandbox.replay.feed_process): how its
# wakes reach the command's engine.
_wake_through = None


def start_engine(*, wait: bool = True, process: bool = False) -> None:
    """Start this process's engine once, unless SANDBOX_ENGINE=off: in a thread,
    or with `process` in a child process that reports its changes here."""
    global _engine_thread, _engine_process
    if not settings.ENGINE_ENABLED:
        return
    with _lock:
        if _engine_thread is not None or _engine_process is not None:
            return
        if process:
            from sandbox.delivery.engine_process import EngineProcess

            _engine_process = EngineProcess(announce=relayed)
            _engine_process.start()
            return
        ready = threading.Event()
        _engine_thread = threading.Thread(
            target=_run_engine, args=(ready,), name="sandbox-engine", daemon=True
        )
        _engine_thread.start()
    if wait:
        ready.wait(timeout=10)


def _run_engine(ready: threading.Event) -> None:
    global _engine_loop, _engine_stop
    from sandbox.delivery.engine import Engine

    _engine_loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_engine_loop)
    _engine_stop = asyncio.Event()
    engine = Engine()
    logger.info("engine %s started", engine.name)
    ready.set()
    _engine_loop.run_until_complete(engine.run_forever(_engine_stop))


def stop_engine() -> None:
    """The server is stopping: its engine claims nothing more. A child process
    ends at once (what it had in flight is recovered by the next start, as
    after any stop); a thread lets what is in flight finish. Safe from any
    thread."""
    if _engine_process is not None:
        _engine_process.stop()
        return
    loop, stop = _engine_loop, _engine_stop
    if loop is not None and stop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(stop.set)
        wake()


# Every engine looping in this process (the server's, or a command's: replay,
# runsuite, sendevent), with its loop: each is woken by what this process
# enqueues, instead of finding it at its next look.
_looping: dict[object, asyncio.AbstractEventLoop] = {}


@contextlib.contextmanager
def looping(engine) -> Iterator[None]:
    """While an engine loops on the running event loop, wake() reaches it."""
    _looping[engine] = asyncio.get_running_loop()
    try:
        yield
    finally:
        _looping.pop(engine, None)


def wake() -> None:
    """Tell this process's engines a delivery was enqueued; safe from any thread."""
    if _engine_process is not None:
        _engine_process.wake()
    if _wake_through is not None:
        _wake_through()
    for engine, loop in list(_looping.items()):
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(engine.wake)


def changed(delivery_ids=()) -> None:
    """Deliveries changed in this process and committed: the live watcher looks at
    once instead of at its next poll, and tells the other server processes. Without
    ids it looks at every row changed since its last look. Safe from any thread;
    call it on commit. Costs one callback scheduled on the watcher's loop."""
    ids = tuple(delivery_ids)
    _poke(deliveries=ids, scan=not ids)


def run_changed(*, run_id: int) -> None:
    """A run's progress changed though none of its deliveries did (a replay
    reading its source before it sends); committed. Safe from any thread."""
    _poke(runs=(run_id,))


def mock_recorded(*, endpoint_id: int, request_id: int) -> None:
    """A mock endpoint recorded a request and committed it. Safe from any thread."""
    _poke(mock_requests=((endpoint_id, request_id),))


def items_added(*, kind: str, key: object, ids) -> None:
    """Rows added to a live list (broadcast.LIST_RENDERERS) and committed. Safe
    from any thread."""
    _poke(items=tuple((kind, key, item_id) for item_id in ids))


def subscribed() -> None:
    """A page joined a live group here: the watcher sends it what it shows."""
    _poke()


def relay_to(callback) -> None:
    """Changes committed in this process are handed to `callback` (a dict each)
    instead of this process's watcher: the server's engine process has none."""
    global _relay
    _relay = callback


def wake_through(callback) -> None:
    """wake() also calls `callback`: a process that enqueues for an engine in
    another process (a replay command's feeding) tells it this way."""
    global _wake_through
    _wake_through = callback


def relayed(change: dict) -> None:
    """A change committed by the engine process, announced here."""
    _poke(**change)


def _poke(**change) -> None:
    if _relay is not None:
        _relay(change)
        return
    watcher, loop = _watcher, _watcher_loop
    if watcher is not None and loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(functools.partial(watcher.poke, **change))


def ensure_watcher() -> None:
    """Start the live watcher on the running (server) loop, once."""
    global _watcher_task, _watcher, _watcher_loop
    if _watcher_task is not None and not _watcher_task.done():
        return
    from sandbox.delivery.broadcast import Watcher

    _watcher, _watcher_loop = Watcher(), asyncio.get_running_loop()
    _watcher_task = _watcher_loop.create_task(_watcher.run_forever(asyncio.Event()))


async def stop_watcher() -> None:
    """Stop the live watcher (tests start and stop one on their own loop)."""
    global _watcher_task, _watcher, _watcher_loop
    task, watcher = _watcher_task, _watcher
    _watcher_task = _watcher = _watcher_loop = None
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if watcher is not None:
        await watcher.close()


class StartLive:
    """ASGI wrapper that starts the watcher, and the engine if the server did not,
    at the first request: by then the server is surely serving."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in {"http", "websocket"}:
            ensure_watcher()
            if _engine_thread is None and _engine_process is None:
                start_engine(wait=False)
        return await self.app(scope, receive, send)
