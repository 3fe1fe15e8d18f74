"""The replay lane's sending half: a replay's first attempts sent from the
`replay` command, with one write per event made by its feeding process.

The queue writes each attempt ahead and records it on its delivery row; for a
replay of thousands of events a second that cost more than the sending
(sandbox/replay/lane.py says why, and writes the lane's rows). Here only the
sending: the webhook sender's request as prepared (senders.WebhookSender),
sent with the transport and read into a verdict as the engine does, under the
run's concurrency, rate, 429 slowdown (queue.Throttle), pause and cancel.
The feeding process and the command speak over a socket pair of their own:
length-prefixed pickles, (kind, payload).
"""

import asyncio
import contextlib
import logging
import pickle
import struct
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from django.conf import settings
from django.utils import timezone

from sandbox.delivery import queue, senders, transport, webhook
from sandbox.delivery.models import Run, TargetKind
from sandbox.delivery.targets import Target

logger = logging.getLogger("sandbox.engine")

ITEMS = "items"  # feeding to command: events to send
RESULTS = "results"  # command to feeding: what the endpoint answered
UNSENT = "unsent"  # command to feeding: events handed back unsent
STARTING = "starting"  # command to feeding: events about to be sent
END = "end"  # command to feeding: nothing more comes
GONE = "gone"  # the command's side closed without END: it died
LENGTH = struct.Struct("!I")

# Items the feeding is told are going out next, per slot of the concurrency:
# what a death of the command reports as interrupted, beyond those in flight.
ANNOUNCED_PER_SLOT = 2
# The sender announces more once those announced and not sent are down to the
# concurrency divided by this (at 10 at once and 8,000 events/s, 530
# announcements a second instead of 800).
ANNOUNCE_AT = 2
# The most events the feeding hands over and has not stored (its window,
# sandbox.replay.lane.window_for, is at most this).
WINDOW_MOST = 2000
# Answers the command keeps, should the feeding die before storing them: more
# than the window, which bounds what it has not stored.
RECENT_KEPT = 2 * WINDOW_MOST
# Answers go back at most this long after they came, or once this many wait.
FLUSH_SECONDS = 0.005
FLUSH_AT = 200
# How often a waiting sender looks again at its pace (a slowdown wears off).
RELOOK_SECONDS = 0.1
RECENT_SECONDS = queue.RECENT_RATE_SECONDS


def uses_lane(target: Target) -> bool:
    """Webhooks go through the lane; a function's batching is the engine's."""
    return target.kind == TargetKind.WEBHOOK


class Item(NamedTuple):
    """One event's request, as it will go out (a tuple: it pickles faster)."""

    key: int
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    timeout: float
    secret: str


# An answer crosses as a plain tuple (pickled many times a second; a
# dataclass pickles several times slower): (key, started at, latency in ms,
# the answer, the verdict, Retry-After). The answer is the exchange's other
# fields in order (transport.Exchange), the verdict its fields in order.
Result = tuple

# An endpoint answers most events alike: alike answers and verdicts are one
# object each, which pickle writes once per frame and refers to after (a
# frame of 200 answers shrank about fivefold, and so did its reading).
SHARED_MOST = 256
SHARED_BODY_MOST = 1024


class _Shared(dict):
    """Equal values as one object; forgets all once it holds SHARED_MOST."""

    def one(self, value):
        found = self.get(value)
        if found is None:
            if len(self) >= SHARED_MOST:
                self.clear()
            self[value] = found = value
        return found


def _result(key, started_at, exchange, verdict, retry_after, shared) -> Result:
    answer = (
        exchange.status,
        tuple(exchange.headers),
        exchange.body,
        exchange.truncated,
        exchange.content_type,
        exchange.error_kind,
        exchange.error_message,
    )
    if len(exchange.body) <= SHARED_BODY_MOST:
        answer = shared.one(answer)
    return (
        key,
        started_at,
        exchange.latency_ms,
        answer,
        shared.one((verdict.outcome, verdict.reason, verdict.retryable)),
        retry_after,
    )


def frame(kind: str, payload) -> bytes:
    data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(data)) + data


# The command's side: the sender -------------------------------------------------


class Sender:
    """Sends the items handed to it, as the run's controls allow; answers are
    passed to `answer(kind, payload)` in batches. On the command's loop.

    Before any item goes out, it is among a few (ANNOUNCED_PER_SLOT times the
    concurrency) the feeding was told of by `starting(keys, results)` (with
    the answers gathered meanwhile, in one write), which returns once that is
    in the socket: should this process die, the feeding records
    those as interrupted, and stores the rest to be sent by a resume."""

    def __init__(
        self,
        *,
        run: Run,
        answer: Callable[[str, object], None],
        starting: Callable[[list[int], list[Result]], Awaitable[None]],
        also_in_flight: Callable[[], int] = lambda: 0,
    ):
        self.concurrency = max(run.concurrency, 1)
        self.rate = run.rate
        self.pace = queue.Throttle(
            run.throttle_factor,
            run.throttled_at,
            run.held_until,
            run.throttle_ceiling,
            run.throttle_rate,
            run.throttled_count,
        )
        self._answer = answer
        self._starting = starting
        self._also_in_flight = also_in_flight
        self._waiting: deque[Item] = deque()
        self._announced: deque[Item] = deque()
        self._announcing = False
        self._ahead: asyncio.Task | None = None
        self._cancelled = False
        # Announced and not answered; and the latest answers, kept should the
        # feeding die before storing them (salvage).
        self.sending: set[int] = set()
        self.recent: OrderedDict[int, Result] = OrderedDict()
        self._results: list[Result] = []
        self._shared = _Shared()
        self._stir = asyncio.Event()
        self._paused = run.paused
        self._closing = False
        self._next_at = 0.0
        self.in_flight = 0
        self.started = 0
        # (monotonic time, started) every flush: the rate it went at lately.
        self._marks: deque[tuple[float, int]] = deque()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def add(self, items: list[Item]) -> None:
        self._waiting.extend(items)
        self._stir.set()

    def control(self, *, paused: bool, cancelled: bool) -> None:
        """Follow the replay's status: paused holds what waits; cancelled hands
        it back."""
        self._paused = paused or cancelled
        self._cancelled = cancelled
        if cancelled:
            self._give_back()
        self._stir.set()

    def halt(self) -> None:
        """Send nothing more (the feeding is gone: no answer could be stored)."""
        self._closing = True
        self._stir.set()

    async def close(self) -> None:
        """Hand back what was not sent, let what is in flight land, pass on
        every answer."""
        self._closing = True
        self._give_back()
        self._stir.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def _give_back(self) -> None:
        keys = [item.key for item in self._announced]
        keys += [item.key for item in self._waiting]
        self._announced.clear()
        self._waiting.clear()
        self.sending.difference_update(keys)
        if keys:
            self._answer(UNSENT, keys)

    async def _announce(self) -> None:
        """Tell the feeding which items go out next, or wait while another
        worker does."""
        if self._announcing:
            self._stir.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stir.wait(), RELOOK_SECONDS)
            return
        self._announcing = True
        await self._tell()

    def _announce_ahead(self) -> None:
        """Tell the feeding of the next items while those told of last still go
        out, so that no worker waits for the telling."""
        if self._announcing or not self._waiting or self._closing or self._paused:
            return
        self._announcing = True
        self._ahead = asyncio.create_task(self._tell())

    def _announce_due(self) -> bool:
        """Whether to announce ahead now: once the announced items left are
        down to a few, so each announcement is of a concurrency's worth or
        more (a frame, a write and a wake of the feeding's reader each)."""
        return len(self._announced) <= max(self.concurrency // ANNOUNCE_AT, 1)

    async def _tell(self) -> None:
        """Announce (one at a time) up to ANNOUNCED_PER_SLOT times the
        concurrency, those announced and not yet sent included."""
        try:
            most = ANNOUNCED_PER_SLOT * self.concurrency - len(self._announced)
            batch = [
                self._waiting.popleft()
                for _ in range(max(0, min(most, len(self._waiting))))
            ]
            keys = [item.key for item in batch]
            self.sending.update(keys)
            # The answers gathered so far go in the same write.
            results, self._results = self._results, []
            await self._starting(keys, results)
            if self._closing or self._cancelled:
                self.sending.difference_update(keys)
                self._answer(UNSENT, keys)
            else:
                self._announced.extend(batch)
        finally:
            self._announcing = False
            self._stir.set()

    async def _run(self) -> None:
        session = transport.new_session(concurrency=self.concurrency)
        flushing = asyncio.create_task(self._flush_often())
        try:
            await asyncio.gather(
                *(self._work(session, slot) for slot in range(self.concurrency))
            )
        finally:
            flushing.cancel()
            if self._ahead is not None:
                await asyncio.gather(self._ahead, return_exceptions=True)
            self._flush()
            await session.close()

    async def _work(self, session, slot: int) -> None:
        while (item := await self._take(slot)) is not None:
            started = time.time()
            try:
                exchange = await transport.send(
                    session,
                    webhook.WebhookRequest("POST", item.url, item.headers, item.body),
                    timeout=item.timeout,
                    body_limit=settings.RESPONSE_BODY_LIMIT,
                )
                verdict = senders.verdict_for(exchange, secret=item.secret)
            except Exception as error:
                # One event's fault ends it alone, saying what happened.
                logger.exception("sending lane item %s failed", item.key)
                sentence = queue.ENGINE_FAULT.format(detail=queue.describe_fault(error))
                exchange = transport.Exchange(
                    error_kind="other", error_message=sentence
                )
                verdict = webhook.classify_error(sentence, retryable=False)
            self.in_flight -= 1
            if exchange.status == 429:
                self._slow_down(exchange)
            result = _result(
                item.key,
                started,
                exchange,
                verdict,
                senders.retry_after(exchange),
                self._shared,
            )
            self._results.append(result)
            self.sending.discard(item.key)
            self.recent[item.key] = result
            if len(self.recent) > RECENT_KEPT:
                self.recent.popitem(last=False)
            if len(self._results) >= FLUSH_AT:
                self._flush()
            self._stir.set()

    async def _take(self, slot: int) -> Item | None:
        while True:
            if self._closing:
                return None
            wait = RELOOK_SECONDS
            if (self._announced or self._waiting) and not self._paused:
                now = time.time()
                if self.pace.held_until > now:
                    wait = min(self.pace.held_until - now, RELOOK_SECONDS)
                else:
                    share = self.pace.share(now)
                    cap = self.concurrency
                    if share < 1:
                        cap = max(1, int(cap * share))
                    if slot < cap - self._also_in_flight():
                        if not self._announced:
                            await self._announce()
                            continue
                        rate = self._rate(share)
                        at = now
                        if rate:
                            burst = max(queue.RATE_BURST_SECONDS, 1 / rate)
                            at = max(self._next_at, now - burst)
                        if at <= now:
                            if rate:
                                self._next_at = at + 1 / rate
                            self.in_flight += 1
                            self.started += 1
                            item = self._announced.popleft()
                            if self._announce_due():
                                self._announce_ahead()
                            return item
                        wait = min(at - now, RELOOK_SECONDS)
            self._stir.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stir.wait(), wait)

    def _rate(self, share: float) -> float | None:
        if self.rate:
            return self.rate * share
        if share < 1 and self.pace.throttle_rate:
            return self.pace.throttle_rate * share
        return None

    def _slow_down(self, exchange: transport.Exchange) -> None:
        now = timezone.now()
        self.pace.answered_429(
            [queue.retry_after_seconds(exchange.headers, now)],
            clock=now.timestamp(),
            rate=self.rate,
            recent_rate=self._recent_rate,
        )

    def _recent_rate(self) -> float | None:
        if not self._marks:
            return None
        at, started = self._marks[0]
        span = time.monotonic() - at
        if span <= 0:
            return None
        return (self.started - started) / max(span, queue.RATE_BURST_SECONDS)

    async def _flush_often(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            now = time.monotonic()
            self._marks.append((now, self.started))
            while self._marks and now - self._marks[0][0] > RECENT_SECONDS:
                self._marks.popleft()
            self._flush()

    def _flush(self) -> None:
        if self._results:
            results, self._results = self._results, []
            self._answer(RESULTS, results)
