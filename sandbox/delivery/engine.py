"""The engine: the only code that talks to a subscription.

It claims due deliveries (writing each attempt ahead), builds Segment's request,
sends it with one aiohttp session, classifies the outcome, schedules retries and
stores the attempt. Live pages learn of changes from the stored rows (see
sandbox.delivery.broadcast), whichever process did the work.
"""

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import count

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, reset_queries
from django.utils import timezone

from sandbox.delivery import retry, services, transport, webhook

logger = logging.getLogger("sandbox.engine")

# How long a claim protects a row beyond the longest request timeout.
LEASE_SECONDS = 60 + 30
# The engine sleeps until the next row falls due, and looks at least this often
# for rows another process enqueued.
IDLE_WAKE_SECONDS = 0.2
RECOVER_EVERY_SECONDS = 2.0


def verdict_for(exchange: transport.Exchange) -> webhook.Verdict:
    if exchange.error_kind:
        return webhook.classify_error(
            exchange.error_message, retryable=exchange.error_kind != "invalid_url"
        )
    message = webhook.error_message(exchange.body, exchange.content_type)
    verdict = webhook.classify_status(exchange.status, message=message)
    if 300 <= exchange.status < 400:
        location = next((v for k, v in exchange.headers if k.lower() == "location"), "")
        if location:
            verdict = webhook.Verdict(
                verdict.outcome, f"{verdict.reason} to {location}", verdict.retryable
            )
    return verdict


def step_for(
    claimed: services.Claimed,
    verdict: webhook.Verdict,
    exchange: transport.Exchange,
) -> retry.Step:
    delivery = claimed.delivery
    retry_after = None
    for name, value in exchange.headers:
        if name.lower() == "retry-after":
            retry_after = retry.parse_retry_after(value, now=timezone.now())
    return retry.next_step(
        verdict=verdict,
        policy=retry.Policy(delivery.retry_policy, delivery.time_scale),
        attempts_made=claimed.attempt.number,
        started_at=timezone.now(),
        status=exchange.status,
        retry_after=retry_after,
    )


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


class Engine:
    """Delivers due rows; one aiohttp session, bounded concurrency."""

    def __init__(self, *, concurrency: int = 50, name: str | None = None):
        self.concurrency = concurrency
        self.name = name or services.worker_name()
        self._claims = count(1)
        self._session = None
        self._wake: asyncio.Event | None = None
        self._in_flight: set[asyncio.Task] = set()
        self._in_flight_by_run: Counter[int] = Counter()
        # The engine's database work has a thread of its own: it never waits
        # behind page requests, and pages never wait behind it.
        self._database_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sandbox-engine-db"
        )

    async def _database(self, function, **kwargs):
        loop = asyncio.get_running_loop()
        call = functools.partial(_in_database_thread, function, **kwargs)
        return await loop.run_in_executor(self._database_thread, call)

    async def _get_session(self):
        if self._session is None or self._session.closed:
            self._session = transport.new_session(concurrency=self.concurrency)
        return self._session

    async def close(self) -> None:
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        with contextlib.suppress(RuntimeError):
            await self._database(_close_connection)
        self._database_thread.shutdown(wait=False)

    def wake(self) -> None:
        """Called on the engine's own loop; runtime.wake() crosses threads."""
        if self._wake is not None:
            self._wake.set()

    async def deliver(self, claimed: services.Claimed) -> None:
        """Send one claimed attempt (already written ahead) and record its result."""
        delivery, attempt = claimed.delivery, claimed.attempt
        request = webhook.WebhookRequest(
            method=attempt.request_method,
            url=attempt.request_url,
            headers=[tuple(pair) for pair in attempt.request_headers],
            body=attempt.request_body.encode(),
        )
        exchange = await transport.send(
            await self._get_session(),
            request,
            timeout=delivery.timeout_seconds,
            body_limit=settings.RESPONSE_BODY_LIMIT,
        )
        verdict = verdict_for(exchange)
        result = services.AttemptResult(
            exchange=exchange,
            verdict=verdict,
            step=step_for(claimed, verdict, exchange),
        )
        await self._database(services.attempt_record, claimed=claimed, result=result)

    async def _claim(
        self, limit: int, only_ids: list[int] | None
    ) -> list[services.Claimed]:
        return await self._database(
            services.deliveries_claim,
            claimer=self.name,
            token=f"{self.name}#{next(self._claims)}",
            limit=limit,
            lease_seconds=LEASE_SECONDS,
            only_ids=only_ids,
            in_flight_by_run=dict(self._in_flight_by_run),
        )

    async def _deliver_safely(self, claimed: services.Claimed) -> None:
        run_id = claimed.delivery.run_id
        if run_id is not None:
            self._in_flight_by_run[run_id] += 1
        try:
            await self.deliver(claimed)
        except Exception as error:
            # One attempt's fault ends that delivery alone, saying what happened.
            logger.exception("delivery %s failed in the engine", claimed.delivery.pk)
            await self._record_fault(claimed, error)
        finally:
            if run_id is not None:
                self._in_flight_by_run[run_id] -= 1
                if self._in_flight_by_run[run_id] <= 0:
                    del self._in_flight_by_run[run_id]

    async def run_due(self, *, only_ids: list[int] | None = None) -> int:
        """Claim everything due now and deliver it; returns how many were sent."""
        sent = 0
        while True:
            batch = await self._claim(self.concurrency, only_ids)
            if not batch:
                return sent
            await asyncio.gather(*(self._deliver_safely(c) for c in batch))
            sent += len(batch)

    async def _record_fault(
        self, claimed: services.Claimed, error: BaseException
    ) -> None:
        try:
            await self._database(
                services.attempt_record_fault, claimed=claimed, error=error
            )
        except Exception:
            # Even that failed (the database is gone): recovery frees the claim.
            logger.exception("recording the fault of %s failed", claimed.delivery.pk)

    async def recover(self) -> int:
        return await self._database(services.deliveries_recover)

    async def _seconds_until_due(self, checked_at) -> float:
        """How long to sleep: until the next row falls due, polling at most
        IDLE_WAKE_SECONDS apart for rows other processes add. Rows already due at
        `checked_at` and not claimed are held back (a run at its concurrency):
        a finished send wakes the loop for them."""
        due = await self._database(services.deliveries_next_due, after=checked_at)
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
            for claimed in batch:
                task = asyncio.create_task(self._deliver_safely(claimed))
                self._in_flight.add(task)
                task.add_done_callback(self._finished)
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
