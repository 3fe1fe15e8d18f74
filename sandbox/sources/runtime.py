"""The tracking API's work in the server process: the writer that stores
arrived requests in the spool (a group commit per turn of the server's loop)
and the expander that turns stored requests into ingested events and
deliveries.

Both start with the first request the server answers (see
sandbox.sources.api.TrackingAPI). The expander is a daemon thread with its own
database connection; it is woken after each commit and also looks every second,
for requests another process stored or that a restart left behind.
"""

import asyncio
import logging
import threading
import time

from django.db import close_old_connections, connections

from sandbox.sources import services, spool

logger = logging.getLogger("sandbox.sources")

# How often the expander looks without being woken (seconds).
EXPAND_POLL_SECONDS = 1.0
# The door counts as busy for this long after a request arrives; the expander
# waits for it to be quiet, unless a stored request has waited EXPAND_MAX_LAG.
DOOR_QUIET_SECONDS = 0.02
EXPAND_MAX_LAG_SECONDS = 2.0
# The door waits at most this long for the spool's lock (the expander holds it
# for milliseconds); then the request is answered 503, which SDKs retry.
DOOR_BUSY_SECONDS = 5.0

_lock = threading.Lock()
_writer: "Writer | None" = None
_expander: "Expander | None" = None


class Writer:
    """Stores arrived requests on the server's own loop, in one transaction for
    all that arrived in one turn of the loop; each request waits on a future.

    No thread: handing requests to one and their answers back costs more, under
    Python's one running thread, than the commit (about 50 µs for one request;
    the spool's only other writer, the expander, holds its lock as briefly).
    """

    def __init__(self, on_commit):
        self._pending: list[tuple[services.ArrivedRequest, asyncio.Future]] = []
        self._on_commit = on_commit

    def submit(self, request: services.ArrivedRequest) -> asyncio.Future:
        """The future is done once the request is committed (or holds the error
        that kept it from being)."""
        if _expander is not None:
            _expander.last_arrival = time.monotonic()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((request, future))
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        error: BaseException | None = None
        try:
            spool.append(
                spool.connection(busy_seconds=DOOR_BUSY_SECONDS),
                [request.row() for request, _ in batch],
            )
        except Exception as failure:
            logger.exception("storing %d tracking API requests failed", len(batch))
            error = failure
        for _, future in batch:
            _settle(future, error)
        if error is None:
            self._on_commit()


def _settle(future: asyncio.Future, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class Expander:
    """Expands stored requests whenever woken, and every second regardless.

    It yields to the door: while requests keep arriving it waits, because it
    shares the process (and Python's one running thread) with the door, and
    the answers are what a client waits for. It expands once the door is quiet,
    or once the oldest stored request has waited EXPAND_MAX_LAG_SECONDS, so a
    burst is answered at the door's own speed and a steady stream is expanded
    about two seconds behind.
    """

    def __init__(self):
        self.last_arrival = 0.0
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="sandbox-ingest-expander", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _door_busy(self) -> bool:
        return time.monotonic() - self.last_arrival < DOOR_QUIET_SECONDS

    def _yield_to_the_door(self) -> None:
        while self._door_busy():
            lag = services.ingest_requests_lag()
            if lag is None or lag >= EXPAND_MAX_LAG_SECONDS:
                return
            time.sleep(DOOR_QUIET_SECONDS)

    def _run(self) -> None:
        while True:
            self._wake.wait(EXPAND_POLL_SECONDS)
            self._wake.clear()
            try:
                close_old_connections()
                self._yield_to_the_door()
                # One group at a time, yielding again between groups.
                while services.ingest_requests_expand_pass():
                    self._yield_to_the_door()
            except Exception:
                # The database itself failed: the requests stay in the spool
                # and the next look tries them again.
                logger.exception("expanding stored tracking API requests failed")


def writer() -> Writer:
    """This process's writer (and expander), started once; raises when the
    spool cannot be prepared (the door then answers 503, and tries again)."""
    global _writer, _expander
    if _writer is not None:
        return _writer
    with _lock:
        if _writer is None:
            _prepare_spool()
            _expander = Expander()
            _writer = Writer(on_commit=_expander.wake)
        return _writer


def _prepare_spool() -> None:
    """The spool numbers its requests after those the database knows: read
    there, in a thread (the server's loop may not touch the database), before
    the first request is stored."""
    failures: list[BaseException] = []

    def prepare() -> None:
        try:
            services.ingest_spool_prepare()
        except BaseException as error:
            failures.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=prepare, name="sandbox-ingest-prepare")
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def start() -> None:
    """Start the writer and the expander (the expander resumes what is stored);
    a failure is logged, and the tracking API's next request tries again."""
    try:
        writer()
    except Exception:
        logger.exception("the tracking API's spool could not be prepared")
