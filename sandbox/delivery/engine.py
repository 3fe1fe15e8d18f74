"""The engine: the loop that makes attempts, the only code that talks to a target.

It claims due deliveries from the queue (each attempt written ahead), hands each
to the sender for its target's kind (sandbox.delivery.senders), schedules the
retry from the verdict, and records results in batches through one writer. Live
pages learn of each change at once in this process (runtime.changed, on commit)
and from the stored rows otherwise (sandbox.delivery.broadcast).
"""

import asyncio
import contextlib
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from itertools import count

from django.db import DatabaseError, close_old_connections, connection, reset_queries
from django.utils import timezone

from sandbox.delivery import queue, retry, senders, transport

logger = logging.getLogger("sandbox.engine")

# How long a claim protects a row beyond the longest request timeout.
LEASE_SECONDS = 60 + 30
# The engine sleeps until the next row falls due, and looks at least this often
# for rows another process enqueued.
IDLE_WAKE_SECONDS = 0.2
RECOVER_EVERY_SECONDS = 2.0
# Results are written together: at most this many per transaction, and a result
# waits at most this long for others to join it.
RECORD_BATCH = 200
RECORD_LINGER_SECONDS = 0.005
# Under load, a claim waits up to this long for half of the slots to free
# up: one claim of many rows costs far less than many claims of one.
CLAIM_LINGER_SECONDS = 0.003


def _close_connection() -> None:
    # Looked up here, in the database thread: connections are per thread.
    connection.close()


def _in_database_thread(function, **kwargs):
    try:
        return function(**kwargs)
    except DatabaseError:
        # A broken connection is replaced on the next call.
        close_old_connections()
        raise
    finally:
        # Django's DEBUG query log is reset per request; no request runs here.
        reset_queries()


class Recorder:
    """One writer: results wait a few milliseconds to share one transaction.

    A send's slot is free as soon as its answer is read; its result is written
    here, later. Durability is unchanged: each attempt was written ahead at its
    claim, and its delivery stays claimed until its result is written, so a crash
    in between leaves it interrupted, never sent twice.
    """

    def __init__(self, write, on_written):
        self._write = write
        self._on_written = on_written
        self._pending: list[tuple[queue.Claimed, queue.AttemptResult]] = []
        self._flushing: asyncio.Task | None = None

    @property
    def busy(self) -> bool:
        return bool(self._pending) or (
            self._flushing is not None and not self._flushing.done()
        )

    def submit(self, claimed: queue.Claimed, result: queue.AttemptResult) -> None:
        self._pending.append((claimed, result))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_soon())

    async def drain(self) -> None:
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)

    async def _flush_soon(self) -> None:
        while self._pending:
            if len(self._pending) < RECORD_BATCH:
                await asyncio.sleep(RECORD_LINGER_SECONDS)
            batch = self._pending[:RECORD_BATCH]
            del self._pending[:RECORD_BATCH]
            try:
                await self._write(batch)
            except Exception:
                # The rows stay claimed: recovery records them as interrupted.
                logger.exception("recording %d attempts failed", len(batch))
            self._on_written()


class Engine:
    """Delivers due rows; one aiohttp session, bounded concurrency."""

    def __init__(self, *, concurrency: int = 50, name: str | None = None):
        self.concurrency = concurrency
        self.name = name or queue.worker_name()
        self._claims = count(1)
        self._session = None
        self._wake: asyncio.Event | None = None
        self._in_flight: set[asyncio.Task] = set()
        # The engine's database work has a thread of its own: it never waits
        # behind page requests, and pages never wait behind it.
        self._database_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sandbox-engine-db"
        )
        self._recorder = Recorder(self._write_results, on_written=self.wake)

    async def _write_results(self, results) -> None:
        await self._database(queue.attempts_record, results=results)

    async def _database(self, function, **kwargs):
        loop = asyncio.get_running_loop()
        call = functools.partial(_in_database_thread, function, **kwargs)
        return await loop.run_in_executor(self._database_thread, call)

    async def _get_session(self):
        if self._session is None or self._session.closed:
            self._session = transport.new_session(concurrency=self.concurrency)
        return self._session

    async def close(self) -> None:
        await self._settle()
        if self._session is not None:
            await self._session.close()
        with contextlib.suppress(RuntimeError):
            await self._database(_close_connection)
        self._database_thread.shutdown(wait=False)

    def wake(self) -> None:
        """Called on the engine's own loop; runtime.wake() crosses threads."""
        if self._wake is not None:
            self._wake.set()

    async def deliver(self, claimed: queue.Claimed) -> None:
        """Send one claimed attempt (already written ahead) and record its result."""
        target = claimed.target
        answer = await senders.sender_for(target.kind).send(
            await self._get_session(), prepared=claimed.request, target=target
        )
        step = retry.next_step(
            verdict=answer.verdict,
            policy=retry.Policy(target.retry_policy, target.time_scale),
            attempts_made=claimed.attempt.number,
            started_at=timezone.now(),
            status=answer.exchange.status,
            retry_after=answer.retry_after,
        )
        result = queue.AttemptResult(
            exchange=answer.exchange,
            verdict=answer.verdict,
            step=step,
            more_exchanges=answer.more_exchanges,
        )
        self._recorder.submit(claimed, result)

    async def _claim(
        self, limit: int, only_ids: list[int] | None
    ) -> list[queue.Claimed]:
        return await self._database(
            queue.deliveries_claim,
            claimer=self.name,
            token=f"{self.name}#{next(self._claims)}",
            limit=limit,
            lease_seconds=LEASE_SECONDS,
            only_ids=only_ids,
        )

    async def _deliver_safely(self, claimed: queue.Claimed) -> None:
        try:
            await self.deliver(claimed)
        except Exception as error:
            # One attempt's fault ends that delivery alone, saying what happened.
            logger.exception("delivery %s failed in the engine", claimed.delivery.pk)
            await self._record_fault(claimed, error)

    async def run_due(self, *, only_ids: list[int] | None = None) -> int:
        """Claim everything due now and deliver it; returns how many were sent.

        A pipeline: the next rows are claimed while sends are in flight, and a
        slot is free as soon as its answer is read (the result is written in the
        background). Done when a claim finds nothing, nothing is in flight and
        every result is written (a written result can free a run's room or make
        a retry due)."""
        self._wake = asyncio.Event()
        sent = 0
        try:
            while True:
                self._wake.clear()
                await self._gather_slots()
                free = self.concurrency - len(self._in_flight)
                batch = await self._claim(free, only_ids) if free > 0 else []
                self._start(batch)
                sent += len(batch)
                if batch and len(self._in_flight) < self.concurrency:
                    continue
                if not batch and not self._in_flight:
                    if not self._recorder.busy:
                        return sent
                    await self._recorder.drain()
                    continue
                await self._wake.wait()
        finally:
            await self._settle()

    async def _gather_slots(self) -> None:
        """While most slots are busy, wait a moment for more to free up."""
        enough = max(1, self.concurrency // 2)
        if not self._in_flight or self.concurrency - len(self._in_flight) >= enough:
            return
        deadline = asyncio.get_running_loop().time() + CLAIM_LINGER_SECONDS
        while self._in_flight and self.concurrency - len(self._in_flight) < enough:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    def _start(self, batch: list[queue.Claimed]) -> None:
        for claimed in batch:
            task = asyncio.create_task(self._deliver_safely(claimed))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)

    async def _settle(self) -> None:
        """Let sends in flight finish and every result be written."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._recorder.drain()

    async def _record_fault(self, claimed: queue.Claimed, error: BaseException) -> None:
        try:
            await self._database(
                queue.attempt_record_fault, claimed=claimed, error=error
            )
        except Exception:
            # Even that failed (the database is gone): recovery frees the claim.
            logger.exception("recording the fault of %s failed", claimed.delivery.pk)

    async def recover(self) -> int:
        return await self._database(queue.deliveries_recover)

    async def _seconds_until_due(self, checked_at) -> float:
        """How long to sleep: until the next row falls due, polling at most
        IDLE_WAKE_SECONDS apart for rows other processes add. Rows already due at
        `checked_at` and not claimed are held back (a run at its concurrency):
        a finished send wakes the loop for them."""
        due = await self._database(queue.deliveries_next_due, after=checked_at)
        if due is None:
            return IDLE_WAKE_SECONDS
        wait = (due - timezone.now()).total_seconds()
        return min(max(wait, 0.0), IDLE_WAKE_SECONDS)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver as rows fall due, until `stop` is set."""
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        last_recovery = -RECOVER_EVERY_SECONDS
        while not stop.is_set():
            self._wake.clear()
            try:
                if loop.time() - last_recovery >= RECOVER_EVERY_SECONDS:
                    last_recovery = loop.time()
                    await self.recover()
                await self._gather_slots()
                free = self.concurrency - len(self._in_flight)
                checked_at = timezone.now()
                batch = await self._claim(free, None) if free > 0 else []
                wait = (
                    await self._seconds_until_due(checked_at)
                    if free > len(batch)
                    else None
                )
            except Exception:
                logger.exception("claiming due deliveries failed")
                batch, wait = [], IDLE_WAKE_SECONDS
            self._start(batch)
            if wait is None:
                # Every slot is busy: a finished send wakes the loop.
                wait = IDLE_WAKE_SECONDS
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        await self.close()

    def _finished(self, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        # A finished send may free a slot (or a run's) for a row already due.
        self.wake()
