"""The engine: the only code that talks to a subscription.

It claims due deliveries, builds Segment's request, sends it with one aiohttp
session, classifies the outcome, schedules retries and stores each attempt. Live
pages learn of the change from the stored rows (see sandbox.delivery.live).
"""

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from sandbox.delivery import retry, services, transport, webhook
from sandbox.delivery.models import Delivery, State

logger = logging.getLogger("sandbox.engine")

# How long a claim protects a row beyond the request's own timeout.
LEASE_MARGIN_SECONDS = 30.0
# Rows that fall due (retries) are found by this cheap indexed poll at the latest.
IDLE_WAKE_SECONDS = 0.2


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def decide(
    *, delivery: Delivery, verdict: webhook.Verdict, exchange: transport.Exchange
) -> tuple[str, timezone.datetime | None]:
    """The delivery's next state, and when to try again if it will."""
    if verdict.outcome == webhook.GREEN:
        return State.DELIVERED, None
    if verdict.outcome == webhook.YELLOW:
        return State.UNSUPPORTED, None
    if not verdict.retryable:
        return State.DISCARDED, None
    policy = retry.Policy(name=delivery.retry_policy, time_scale=delivery.time_scale)
    now = timezone.now()
    retry_after = None
    for name, value in exchange.headers:
        if name.lower() == "retry-after":
            retry_after = retry.parse_retry_after(value, now=now)
    delay = retry.next_delay(
        policy=policy,
        attempts_made=delivery.attempt_count + 1,
        status=exchange.status,
        retry_after=retry_after,
    )
    if delay is None:
        return State.FAILED, None
    return State.RETRYING, now + timedelta(seconds=delay)


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


class Engine:
    """Delivers due rows; one aiohttp session, bounded concurrency."""

    def __init__(self, *, concurrency: int = 50, name: str | None = None):
        self.concurrency = concurrency
        self.name = name or worker_name()
        self._session = None
        self._wake = None
        self._in_flight: set[asyncio.Task] = set()

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
        """Called from the engine's own loop; runtime.wake() crosses threads."""
        if self._wake is not None:
            self._wake.set()

    async def deliver(self, delivery: Delivery) -> None:
        """One attempt for a claimed delivery, stored."""
        request = webhook.build_request(
            url=delivery.endpoint_url,
            api_key=delivery.api_key,
            custom_settings=delivery.custom_settings or {},
            event=delivery.payload,
        )
        started_at = timezone.now()
        exchange = await transport.send(
            await self._get_session(),
            request,
            timeout=delivery.timeout_seconds,
            body_limit=settings.RESPONSE_BODY_LIMIT,
        )
        verdict = verdict_for(exchange)
        state, next_attempt_at = decide(
            delivery=delivery, verdict=verdict, exchange=exchange
        )
        record = services.AttemptRecord(
            started_at=started_at,
            request=request,
            exchange=exchange,
            outcome=verdict.outcome,
            reason=verdict.reason,
            state=state,
            next_attempt_at=next_attempt_at,
        )
        await database_sync_to_async(services.attempt_record)(
            delivery=delivery, record=record
        )

    async def _claim(self, limit: int, only_ids: list[int] | None) -> list[Delivery]:
        return await database_sync_to_async(services.deliveries_claim)(
            claimer=self.name,
            limit=limit,
            lease_seconds=60 + LEASE_MARGIN_SECONDS,
            only_ids=only_ids,
        )

    async def _deliver_safely(self, delivery: Delivery) -> None:
        try:
            await self.deliver(delivery)
        except Exception:
            # A bug must not kill the loop; the claim lapses and the row is retried.
            logger.exception("delivery %s failed inside the engine", delivery.pk)

    async def run_due(self, *, only_ids: list[int] | None = None) -> int:
        """Claim everything due now and deliver it; returns how many were sent."""
        sent = 0
        while True:
            batch = await self._claim(self.concurrency, only_ids)
            if not batch:
                return sent
            await asyncio.gather(*(self._deliver_safely(d) for d in batch))
            sent += len(batch)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver as rows fall due, until `stop` is set."""
        self._wake = asyncio.Event()
        while not stop.is_set():
            self._wake.clear()
            free = self.concurrency - len(self._in_flight)
            if free > 0:
                try:
                    batch = await self._claim(free, None)
                except Exception:
                    logger.exception("claiming due deliveries failed")
                    batch = []
                for delivery in batch:
                    task = asyncio.create_task(self._deliver_safely(delivery))
                    self._in_flight.add(task)
                    task.add_done_callback(self._finished)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_WAKE_SECONDS)
        await self.close()

    def _finished(self, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        # A finished send may free a slot for a row that is already due.
        self.wake()
