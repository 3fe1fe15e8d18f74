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
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import count

from django.db import DatabaseError, close_old_connections, connection, reset_queries
from django.utils import timezone

from sandbox.delivery import queue, retry, runs, runtime, senders, transport

logger = logging.getLogger("sandbox.engine")

# How long a claim protects a row beyond the longest request timeout.
LEASE_SECONDS = 60 + 30
# A claimed row starts only while its lease outlasts its request by this much;
# one that waited longer for a slot goes back to the queue unsent
# (queue.claims_release), so a lease never ends while its attempt is in flight.
LEASE_MARGIN_SECONDS = 5.0
# The engine sleeps until the next row falls due, and looks at least this often
# for rows another process enqueued.
IDLE_WAKE_SECONDS = 0.2
RECOVER_EVERY_SECONDS = 2.0
# Results are written together: at most this many per transaction, and a result
# waits at most this long for others to join it.
RECORD_BATCH = 200
RECORD_LINGER_SECONDS = 0.005
# Rows are claimed ahead of the slots, up to CLAIMED_AHEAD times the
# concurrency beyond those in flight: a slot that frees starts the next claimed
# row at once, while the next claim is made, and what is claimed ahead covers a
# claim that waits for the write lock (a replay enqueuing a chunk). One claim of
# many rows costs far less than many claims of one (its transaction, its
# queries and the hand-over to the database thread are paid once), so a claim
# waits until CLAIM_AT times the concurrency is free. Against a receiver that
# answers at once with 10 in flight, claims of at least 20 (room for 60)
# delivered 5,450-5,490/s where claims of at least 5 (room for 20) delivered
# 4,760-4,880/s.
CLAIMED_AHEAD = 5
CLAIM_AT = 2


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

    def take(self) -> list[tuple[queue.Claimed, queue.AttemptResult]]:
        """The results waiting to be written, for a caller that writes them now."""
        taken, self._pending = self._pending, []
        return taken

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
        # Claimed, each attempt written ahead, waiting for a slot, with the
        # loop time its lease ends.
        self._ready: deque[tuple[float, queue.Claimed]] = deque()
        # Rows of runs at their concurrency (queue.run_caps), by run, and how
        # many of each run are in flight here.
        self._held: dict[int, deque[tuple[float, queue.Claimed]]] = {}
        self._run_in_flight: dict[int, int] = {}
        self._claim_at = CLAIM_AT * concurrency
        # Whether the last claim found less than it had room for (all due rows
        # taken, or the rest held back by their run's room), what has happened
        # since: sends finished, or a wake from outside the loop (a row
        # enqueued, results written, a poll's wait over).
        self._claim_was_short = False
        self._finished_since_claim = 0
        self._poked = False
        # Claimed rows that waited past their lease's margin, to give back.
        self._stale: list[queue.Claimed] = []
        self._releasing: asyncio.Task | None = None
        # The engine's database work has a thread of its own: it never waits
        # behind page requests, and pages never wait behind it.
        self._database_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sandbox-engine-db"
        )
        self._recorder = Recorder(self._write_results, on_written=self.wake)
        # A run's attempts in flight beside this engine's, in this process (a
        # replay command's lane, sandbox.delivery.lane): they share its room.
        self.others_in_flight: Callable[[int], int] = lambda run_id: 0

    async def _write_results(self, results) -> None:
        await self._database(queue.attempts_record, results=results)

    async def _database(self, function, **kwargs):
        loop = asyncio.get_running_loop()
        call = functools.partial(_in_database_thread, function, **kwargs)
        return await loop.run_in_executor(self._database_thread, call)

    async def _get_session(self):
        if self._session is None or self._session.closed:
            self._session = transport.new_session(
                concurrency=max(self.concurrency, runs.CONCURRENCY_MOST)
            )
        return self._session

    async def close(self) -> None:
        await self._settle()
        if self._session is not None:
            await self._session.close()
        with contextlib.suppress(RuntimeError):
            await self._database(_close_connection)
        self._database_thread.shutdown(wait=False)

    def in_flight_of(self, run_id: int) -> int:
        """How many of the run's attempts this engine has in flight."""
        return self._run_in_flight.get(run_id, 0)

    def wake(self) -> None:
        """Called on the engine's own loop; runtime.wake() crosses threads."""
        self._poked = True
        if self._wake is not None:
            self._wake.set()

    def _should_claim(self, room: int) -> bool:
        """Claim when idle, or when there is room for a claim worth its cost.
        After a claim that found less than its room, only once something may
        have changed: a wake from outside, or as many sends finished as a claim
        is worth. Otherwise a replay held to its run's room would claim again
        at every finished send, a row or two each time."""
        if not self._busy:
            return True
        if room < self._claim_at:
            return False
        if not self._claim_was_short:
            return True
        return self._poked or self._finished_since_claim >= self._claim_at

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
            invocation=answer.invocation,
        )
        self._recorder.submit(claimed, result)

    async def _claim(self, limit: int, only_ids: list[int] | None) -> int:
        """Claim up to `limit` rows and start what slots allow; how many were
        claimed. Results waiting to be written go in the same transaction,
        first (they may free a run's room or make a retry due)."""
        # Measured from before the claim: the lease ends no sooner than this.
        lease_ends = asyncio.get_running_loop().time() + LEASE_SECONDS
        self._poked, self._finished_since_claim = False, 0
        batch = await self._claim_rows(limit, only_ids)
        self._claim_was_short = len(batch) < limit
        self._ready.extend((lease_ends, claimed) for claimed in batch)
        self._fill_slots()
        return len(batch)

    async def _claim_rows(
        self, limit: int, only_ids: list[int] | None
    ) -> list[queue.Claimed]:
        claim = {
            "claimer": self.name,
            "token": f"{self.name}#{next(self._claims)}",
            "limit": limit,
            "lease_seconds": LEASE_SECONDS,
            "only_ids": only_ids,
        }
        results = self._recorder.take()
        if not results:
            return await self._database(queue.deliveries_claim, **claim)
        try:
            return await self._database(
                queue.attempts_record_and_claim, results=results, **claim
            )
        except Exception:
            # The results are written on their own, and the claim comes again.
            for claimed, result in results:
                self._recorder.submit(claimed, result)
            raise

    async def _deliver_safely(self, claimed: queue.Claimed) -> None:
        try:
            await self.deliver(claimed)
        except Exception as error:
            # One attempt's fault ends that delivery alone, saying what happened.
            logger.exception("delivery %s failed in the engine", claimed.delivery.pk)
            await self._record_fault(claimed, error)

    async def run_due(self, *, only_ids: list[int] | None = None) -> int:
        """Claim everything due now and deliver it; returns how many were sent.

        A pipeline: rows are claimed ahead while sends are in flight, and a slot
        is free as soon as its answer is read (the result is written with the
        next claim, or in the background). Done when a claim finds nothing,
        nothing is in flight or waiting, and every result is written (a written
        result can free a run's room or make a retry due)."""
        self._wake = asyncio.Event()
        with runtime.looping(self):
            try:
                return await self._claim_until_idle(only_ids)
            finally:
                await self._settle()

    async def _claim_until_idle(self, only_ids: list[int] | None) -> int:
        sent = 0
        while True:
            self._wake.clear()
            room = self._room()
            if self._should_claim(room):
                claimed = await self._claim(room, only_ids) if room > 0 else 0
                sent += claimed
                if claimed:
                    continue
                if not self._busy:
                    if not self._recorder.busy:
                        return sent
                    await self._recorder.drain()
                    continue
            await self._wake.wait()

    @property
    def _busy(self) -> bool:
        """Rows in flight, claimed, or being given back (to be claimed again)."""
        return self._holding or (
            self._releasing is not None and not self._releasing.done()
        )

    @property
    def _holding(self) -> bool:
        return bool(self._in_flight or self._ready or self._held)

    def _room(self) -> int:
        """How many more rows to claim: free slots, and CLAIMED_AHEAD times the
        concurrency ahead. Rows held for their run's room do not count: the
        queue bounds them, and they must not keep other rows from being
        claimed."""
        most = (1 + CLAIMED_AHEAD) * self._slots()
        return most - len(self._in_flight) - len(self._ready)

    def _slots(self) -> int:
        """Requests at once: the engine's concurrency, or more while an open run
        asks for more (a replay of 200 from its page, say), each run held to its
        own (queue.run_caps). Without it the server's engine, at 50, sent such a
        replay at a quarter of the concurrency it asked for."""
        return max(self.concurrency, max(queue.run_caps.values(), default=0))

    def _has_room(self, run_id: int | None) -> bool:
        if run_id is None:
            return True
        cap = queue.run_caps.get(run_id, self.concurrency)
        in_flight = self._run_in_flight.get(run_id, 0) + self.others_in_flight(run_id)
        return in_flight < cap

    def _next_ready(self) -> tuple[float, queue.Claimed] | None:
        """The next claimed row whose run has room: held rows first."""
        for run_id, held in self._held.items():
            if self._has_room(run_id):
                entry = held.popleft()
                if not held:
                    del self._held[run_id]
                return entry
        while self._ready:
            entry = self._ready.popleft()
            run_id = entry[1].delivery.run_id
            if self._has_room(run_id):
                return entry
            self._held.setdefault(run_id, deque()).append(entry)
        return None

    def _next_startable(self) -> queue.Claimed | None:
        """The next row to send; rows whose lease would end before their request
        could are given back unsent."""
        now = asyncio.get_running_loop().time()
        while (entry := self._next_ready()) is not None:
            lease_ends, claimed = entry
            timeout = claimed.target.timeout_seconds
            if now + timeout + LEASE_MARGIN_SECONDS <= lease_ends:
                return claimed
            self._stale.append(claimed)
        if self._stale and (self._releasing is None or self._releasing.done()):
            self._releasing = asyncio.create_task(self._release_stale())
        return None

    async def _release_stale(self) -> None:
        while self._stale:
            stale, self._stale = self._stale, []
            try:
                await self._database(queue.claims_release, claimed=stale)
            except Exception:
                # They stay claimed: recovery frees them once their lease ends.
                logger.exception("giving back %d claimed rows failed", len(stale))
        self.wake()

    def _fill_slots(self) -> None:
        slots = self._slots()
        while len(self._in_flight) < slots:
            claimed = self._next_startable()
            if claimed is None:
                return
            run_id = claimed.delivery.run_id
            if run_id is not None:
                self._run_in_flight[run_id] = self._run_in_flight.get(run_id, 0) + 1
            task = asyncio.create_task(self._deliver_safely(claimed))
            self._in_flight.add(task)
            task.add_done_callback(functools.partial(self._finished, run_id))

    async def _settle(self) -> None:
        """Send what is claimed, let sends in flight finish, write every result,
        give back what waited too long."""
        while self._holding:
            self._fill_slots()
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._recorder.drain()
        if self._releasing is not None:
            await self._releasing

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
        due = await self._database(
            queue.deliveries_next_due, after=checked_at, claimer=self.name
        )
        if due is None:
            return IDLE_WAKE_SECONDS
        wait = (due - timezone.now()).total_seconds()
        return min(max(wait, 0.0), IDLE_WAKE_SECONDS)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver as rows fall due, until `stop` is set."""
        self._wake = asyncio.Event()
        with runtime.looping(self):
            if await self._loop_until(stop):
                await self.close()

    async def _loop_until(self, stop: asyncio.Event) -> bool:
        """Claim and deliver until `stop`; False when the process is exiting."""
        loop = asyncio.get_running_loop()
        last_recovery = -RECOVER_EVERY_SECONDS
        while not stop.is_set():
            self._wake.clear()
            # Every slot busy (or enough claimed ahead): a finished send wakes us.
            wait = IDLE_WAKE_SECONDS
            try:
                if loop.time() - last_recovery >= RECOVER_EVERY_SECONDS:
                    last_recovery = loop.time()
                    await self.recover()
                room = self._room()
                if self._should_claim(room):
                    checked_at = timezone.now()
                    if await self._claim(room, None) < room:
                        wait = await self._seconds_until_due(checked_at)
            except RuntimeError as error:
                if "after shutdown" in str(error):
                    # The process is exiting (its thread pools are shut): what
                    # is claimed is recovered by the next engine, as after a
                    # crash; nothing to say.
                    return False
                logger.exception("claiming due deliveries failed")
            except Exception:
                logger.exception("claiming due deliveries failed")
            if wait > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except TimeoutError:
                    # Rows another process added, or a retry now due.
                    self._poked = True
            else:
                self._poked = True
        return True

    def _finished(self, run_id: int | None, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        if run_id is not None:
            left = self._run_in_flight[run_id] - 1
            if left:
                self._run_in_flight[run_id] = left
            else:
                del self._run_in_flight[run_id]
        # The freed slot takes the next claimed row; the loop may claim more (a
        # finished send may also free a run's room for a row already due).
        self._finished_since_claim += 1
        self._fill_slots()
        if self._wake is not None:
            self._wake.set()
