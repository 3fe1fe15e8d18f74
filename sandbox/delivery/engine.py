"""The engine: the only code that talks to a subscription.

It claims due deliveries (writing each attempt ahead), builds Segment's request,
sends it with one aiohttp session, classifies the outcome, schedules retries and
stores the attempt. Live pages learn of changes from the stored rows (see
sandbox.delivery.broadcast), whichever process did the work.
"""

import asyncio
import contextlib
import logging
from collections import Counter
from itertools import count

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import reset_queries
from django.utils import timezone

from sandbox.delivery import retry, services, transport, webhook

logger = logging.getLogger("sandbox.engine")

# How long a claim protects a row beyond the longest request timeout.
LEASE_SECONDS = 60 + 30
# Rows that fall due (retries) are found by this cheap indexed poll at the latest.
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


def _database(function):
    """Run ORM work off the loop; drop Django's DEBUG query log as we go, since
    no request ever resets it in this thread."""

    def call(**kwargs):
        try:
            return function(**kwargs)
        finally:
            reset_queries()

    return database_sync_to_async(call)


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

    async def _get_session(self):
        if self._session is None or self._session.closed:
            self._session = transport.new_session(concurrency=self.concurrency)
        return self._session

    async def close(self) -> None:
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

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
        await _database(services.attempt_record)(claimed=claimed, result=result)

    async def _claim(
        self, limit: int, only_ids: list[int] | None
    ) -> list[services.Claimed]:
        return await _database(services.deliveries_claim)(
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
        except Exception:
            # A bug must not kill the loop; recovery frees the claim later.
            logger.exception("delivery %s failed in the engine", claimed.delivery.pk)
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

    async def recover(self) -> int:
        return await _database(services.deliveries_recover)()

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
                batch = await self._claim(free, None) if free > 0 else []
            except Exception:
                logger.exception("claiming due deliveries failed")
                batch = []
            for claimed in batch:
                task = asyncio.create_task(self._deliver_safely(claimed))
                self._in_flight.add(task)
                task.add_done_callback(self._finished)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_WAKE_SECONDS)
        await self.close()

    def _finished(self, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        # A finished send may free a slot (or a run's) for a row already due.
        self.wake()
