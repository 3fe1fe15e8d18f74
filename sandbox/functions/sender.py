"""The function kind's sender: run the subscription's JavaScript handler for the
event, as Segment's functions runtime does, and read its outcome.

The engine's loop does not change (sandbox.delivery.senders): the attempt is
written ahead, `send` runs the handler in the Node worker pool
(sandbox.functions.runtime), every `fetch` the function makes goes out through the
engine's own HTTP client and is recorded as one of the attempt's exchanges, and
the outcome follows segment-reference.md sections 7.3 and 9.
"""

import asyncio
import json
import time
from urllib.parse import urlsplit

import aiohttp
from django.conf import settings

from sandbox.delivery import senders, transport, webhook
from sandbox.delivery.models import DeliveryTarget, TargetKind
from sandbox.display import mask_secret_in, safe_text
from sandbox.functions import runtime

HANDLER_FOR_TYPE = {
    "identify": "onIdentify",
    "track": "onTrack",
    "page": "onPage",
    "screen": "onScreen",
    "group": "onGroup",
    "alias": "onAlias",
    "delete": "onDelete",
}
METHOD = "INVOKE"
NO_VERSION = "The function subscription has no saved source to run."
# What a function's fetch may read of an answer; more is cut, and the record
# keeps RESPONSE_BODY_LIMIT of it, as for a webhook.
FETCH_BODY_LIMIT = 10 * 1024 * 1024
# Segment's test console keeps 4 KB of log output (segment-reference.md 7.4); the
# sandbox keeps more, and says when it cut.
MAX_LOG_CHARS = 64 * 1024
MAX_RECORDED_FETCHES = 50

# The categories Segment's Event Delivery shows (segment-reference.md 7.3).
RETURNED = "Returned"
UNSUPPORTED = "Unsupported Event Type"
REJECTED = "Message Rejected"
RETRY = "Retry"
TIMEOUT = "Timeout"
BAD_REQUEST = "Bad Request"
OUT_OF_MEMORY = "Out of memory"
CRASHED = "The function's process ended"
# A function that returned or threw answered, as an endpoint's status does.
ANSWERED = (RETURNED, UNSUPPORTED, REJECTED, RETRY, BAD_REQUEST)


def handler_for(event: object) -> str:
    """The handler Segment calls for this event ("" for a type it has none for)."""
    kind = event.get("type") if isinstance(event, dict) else None
    return HANDLER_FOR_TYPE.get(kind, "") if isinstance(kind, str) else ""


def verdict_of(invocation: runtime.Invocation, *, time_limit: float) -> webhook.Verdict:
    """Segment's outcome for what the function did."""
    status = invocation.status
    error = invocation.error or {}
    said = _error_line(error)
    if status == "returned":
        return webhook.Verdict(webhook.GREEN, RETURNED, retryable=False)
    if status == "missing_handler":
        return webhook.Verdict(
            webhook.YELLOW,
            f"{UNSUPPORTED}: no {invocation.handler or 'handler'} is defined "
            "(an implicit EventNotSupported)",
            retryable=False,
        )
    if status == "timeout":
        return webhook.Verdict(
            webhook.RED,
            f"{TIMEOUT}: the function ran longer than {time_limit:g} s",
            retryable=True,
        )
    if status == "memory":
        return webhook.Verdict(webhook.RED, f"{OUT_OF_MEMORY}: {said}", False)
    if status == "crashed":
        return webhook.Verdict(webhook.RED, f"{CRASHED}: {said}", False)
    kind = error.get("kind", "Error")
    if kind == "EventNotSupported":
        return webhook.Verdict(webhook.YELLOW, f"{UNSUPPORTED}: {said}", False)
    if kind in ("InvalidEventPayload", "ValidationError"):
        return webhook.Verdict(webhook.RED, f"{REJECTED}: {said}", False)
    if kind == "RetryError":
        return webhook.Verdict(webhook.RED, f"{RETRY}: {said}", True)
    return webhook.Verdict(webhook.RED, f"{BAD_REQUEST}: {said}", False)


def _error_line(error: dict) -> str:
    name = str(error.get("name") or "Error")
    message = str(error.get("message") or "")
    return f"{name}: {message}" if message else name


def _fetch_reason(exchange: transport.Exchange, url: str) -> tuple[str, str]:
    """node-fetch's reason and code for a request that got no answer."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    address = "127.0.0.1" if host == "localhost" else host
    kind = exchange.error_kind
    if kind == "refused":
        return f"connect ECONNREFUSED {address}:{port}", "ECONNREFUSED"
    if kind == "dns":
        return f"getaddrinfo ENOTFOUND {host}", "ENOTFOUND"
    if kind == "reset":
        return "socket hang up", "ECONNRESET"
    if kind == "timeout":
        return f"connect ETIMEDOUT {address}:{port}", "ETIMEDOUT"
    return exchange.error_message, ""


class FunctionSender:
    """Runs the function; its outcome is the attempt's."""

    def prepare(self, *, target: DeliveryTarget, event_text: str) -> senders.Prepared:
        # Read here, on the engine's database thread: send() runs on its loop.
        version = target.function_version
        if version is None:
            raise LookupError(NO_VERSION)
        event = json.loads(event_text)
        handler = handler_for(event) or "(none)"
        return senders.Prepared(
            METHOD,
            f"function:{target.name}@v{version.number}#{handler}",
            [],
            event_text.encode(),
            headers_json="[]",
        )

    def body_text(self, event: object) -> str:
        return webhook.encode_body(event).decode()

    def __init__(self):
        # Which handlers each source defines, by its hash: onBatch means batches.
        self._handlers: dict[str, list[str]] = {}
        # Per target row and event loop: the batch being filled.
        self._batches: dict[tuple[int, int], _Batch] = {}

    async def send(
        self,
        session: aiohttp.ClientSession,
        *,
        prepared: senders.Prepared,
        target: DeliveryTarget,
    ) -> senders.Answer:
        event = json.loads(prepared.body)
        if await self._batches_events(target):
            return await self._in_batch(session, target, event)
        return await run_single(session, target, event)

    async def _batches_events(self, target: DeliveryTarget) -> bool:
        version = target.function_version
        found = self._handlers.get(version.source_sha256)
        if found is None:
            found = await asyncio.to_thread(runtime.defined_handlers, version.source)
            self._handlers[version.source_sha256] = found
        return "onBatch" in found

    async def _in_batch(
        self, session: aiohttp.ClientSession, target: DeliveryTarget, event: dict
    ) -> senders.Answer:
        key = (target.pk, id(asyncio.get_running_loop()))
        batch = self._batches.get(key)
        if batch is None or batch.closed:
            batch = self._batches[key] = _Batch(session, target)
        answer = batch.add(event)
        if batch.full:
            batch.closed = True
            self._batches.pop(key, None)
            batch.go()
        return await answer


class _Batch:
    """Events for one target's onBatch: sent when full, or when the window
    since the first event has passed. A lone event that nothing joins within
    LONE_EVENT_SECONDS goes to its single-event handler instead, as Segment
    skips batching at under about one event a second (segment-reference.md 7.1).
    """

    def __init__(self, session: aiohttp.ClientSession, target: DeliveryTarget):
        self.session = session
        self.target = target
        self.events: list[dict] = []
        self.answers: list[asyncio.Future] = []
        self.closed = False
        self._timer = asyncio.create_task(self._wait())
        self._started = False

    @property
    def full(self) -> bool:
        return len(self.events) >= self.target.batch_size

    def add(self, event: dict) -> asyncio.Future:
        answer = asyncio.get_running_loop().create_future()
        self.events.append(event)
        self.answers.append(answer)
        return answer

    def go(self) -> None:
        if not self._started:
            self._started = True
            self._timer.cancel()
            task = asyncio.create_task(self._run())
            _running.add(task)
            task.add_done_callback(_running.discard)

    async def _wait(self) -> None:
        window = self.target.batch_window_seconds
        await asyncio.sleep(min(LONE_EVENT_SECONDS, window))
        if len(self.events) > 1 and window > LONE_EVENT_SECONDS:
            await asyncio.sleep(window - LONE_EVENT_SECONDS)
        self.closed = True
        self._started = True
        await self._run()

    async def _run(self) -> None:
        self.closed = True
        try:
            if len(self.events) == 1:
                answers = [await run_single(self.session, self.target, self.events[0])]
            else:
                answers = await run_batch(self.session, self.target, self.events)
        except Exception as error:  # an engine fault ends each delivery alone
            for future in self.answers:
                if not future.done():
                    future.set_exception(error)
            return
        for future, answer in zip(self.answers, answers, strict=True):
            if not future.done():
                future.set_result(answer)


# Batches running after their timer fired or when they filled up.
_running: set[asyncio.Task] = set()
LONE_EVENT_SECONDS = 1.0


async def _invoke(session, target, *, handler, args) -> tuple:
    time_limit = target.timeout_seconds
    deadline = time.monotonic() + time_limit
    exchanges = _Fetches()

    async def fetch(request: runtime.FetchRequest) -> runtime.FetchResponse:
        return await _fetch(session, request, deadline, exchanges)

    invocation = await runtime.invoke(
        source=target.function_version.source,
        handler=handler,
        args=args,
        settings={"apiKey": target.api_key, **(target.custom_settings or {})},
        fetch=fetch,
        time_limit=time_limit,
        memory_mb=target.memory_mb,
        isolation_key=_isolation_key(target),
    )
    return invocation, exchanges


class _Fetches(list):
    """The recorded fetches of one run, and how many more were not recorded."""

    unrecorded = 0

    def keep(self, record: dict) -> None:
        # Every fetch goes out; the first MAX_RECORDED_FETCHES are kept, so a
        # function that loops over fetch cannot make one attempt row enormous.
        if len(self) < MAX_RECORDED_FETCHES:
            self.append(record)
        else:
            self.unrecorded += 1


def _answer(invocation, exchanges, target, verdict, **extra) -> senders.Answer:
    record = invocation_record(invocation, version=target.function_version.number)
    record.update(extra)
    if exchanges.unrecorded:
        record["fetches_unrecorded"] = exchanges.unrecorded
    # The reason shows in every list: the key the function was given is masked
    # there, as a webhook endpoint's echo of it is.
    verdict = webhook.Verdict(
        verdict.outcome,
        mask_secret_in(verdict.reason, target.api_key),
        verdict.retryable,
    )
    return senders.Answer(
        exchange=transport.Exchange(
            latency_ms=round(invocation.duration_ms),
            body=_returned(invocation.value_json) or "",
            content_type="application/json",
        ),
        verdict=verdict,
        more_exchanges=list(exchanges),
        invocation=record,
    )


async def run_single(
    session: aiohttp.ClientSession, target: DeliveryTarget, event: object
) -> senders.Answer:
    """One event through its type's handler."""
    handler = handler_for(event)
    if not handler:
        # A type Segment has no handler for (sent anyway from the composer):
        # unsupported, as a handler the function does not define.
        missing = runtime.Invocation(
            status="missing_handler",
            handler="",
            value_json=None,
            error=None,
            logs=[],
            duration_ms=0.0,
        )
        verdict = verdict_of(missing, time_limit=target.timeout_seconds)
        return _answer(missing, _Fetches(), target, verdict)
    invocation, exchanges = await _invoke(
        session, target, handler=handler, args=[event]
    )
    verdict = verdict_of(invocation, time_limit=target.timeout_seconds)
    return _answer(invocation, exchanges, target, verdict)


async def run_batch(
    session: aiohttp.ClientSession, target: DeliveryTarget, events: list
) -> list[senders.Answer]:
    """Many events through onBatch; its per-event results, when it returns
    them, decide each event's outcome (only failed ones are retried)."""
    invocation, exchanges = await _invoke(
        session, target, handler="onBatch", args=[events]
    )
    verdict = verdict_of(invocation, time_limit=target.timeout_seconds)
    results = _per_event_results(invocation, len(events))
    answers = []
    for index in range(len(events)):
        own = verdict if results is None else _event_verdict(results[index])
        answers.append(
            _answer(
                invocation,
                exchanges,
                target,
                own,
                batch={"size": len(events), "index": index},
            )
        )
    return answers


def _per_event_results(invocation: runtime.Invocation, size: int) -> list | None:
    """onBatch's returned [{status, errormessage}], one per event, or None."""
    if invocation.status != "returned" or not invocation.value_json:
        return None
    try:
        value = json.loads(invocation.value_json)
    except ValueError:
        return None
    if not isinstance(value, list) or len(value) != size:
        return None
    if not all(isinstance(item, dict) for item in value):
        return None
    return value


def _event_verdict(result: dict) -> webhook.Verdict:
    status = result.get("status")
    message = result.get("errormessage") or result.get("errorMessage") or ""
    if not isinstance(status, int) or isinstance(status, bool):
        return webhook.Verdict(webhook.GREEN, RETURNED, retryable=False)
    return webhook.classify_status(status, message=safe_text(str(message))[:300])


def _isolation_key(target: DeliveryTarget) -> str:
    # State persists between invocations of one subscription, never across two.
    if target.subscription_id is not None:
        return f"subscription:{target.subscription_id}"
    return f"target:{target.pk}"


async def _fetch(
    session: aiohttp.ClientSession,
    request: runtime.FetchRequest,
    deadline: float,
    exchanges: "_Fetches",
) -> runtime.FetchResponse:
    # The worker's fetch has already added what node-fetch adds by itself
    # (User-Agent, Accept, Content-Length…): the headers go out as they are.
    # One exchange, redirects not followed: the worker's fetch follows them as
    # node-fetch does, so each hop is a fetch of its own, recorded as one.
    headers = request.headers
    limit = settings.RESPONSE_BODY_LIMIT
    record = {
        "request": {
            "method": request.method,
            "url": safe_text(request.url),
            "headers": [[safe_text(n), safe_text(v)] for n, v in headers],
            "body": safe_text(request.body[:limit].decode("utf-8", "replace")),
        },
    }
    if _is_own_page(request.url):
        # The sandbox's pages reveal keys and hand out CSRF cookies: a function
        # reaches Segment's outside world, never Segment's own app.
        record["latency_ms"] = 0
        record["error"] = safe_text(
            f"request to {request.url} failed, reason: {OWN_PAGES}"
        )
        exchanges.keep(record)
        raise runtime.FetchFailure(OWN_PAGES, code="EACCES")
    # Past the function's time limit nothing is read: the invocation ends anyway.
    remaining = max(0.05, deadline - time.monotonic())
    exchange = await transport.send(
        session,
        webhook.WebhookRequest(request.method, request.url, headers, request.body),
        timeout=remaining,
        body_limit=FETCH_BODY_LIMIT,
        keep_raw=True,
    )
    record["latency_ms"] = exchange.latency_ms
    exchanges.keep(record)
    if exchange.error_kind:
        reason, code = _fetch_reason(exchange, request.url)
        record["error"] = safe_text(
            f"request to {request.url} failed, reason: {reason}"
        )
        raise runtime.FetchFailure(reason, code=code, errno=code)
    record["response"] = {
        "status": exchange.status,
        "headers": [[safe_text(n), safe_text(v)] for n, v in exchange.headers],
        "body": safe_text(exchange.body[:limit]),
        "truncated": exchange.truncated or len(exchange.body) > limit,
    }
    return runtime.FetchResponse(
        status=exchange.status or 0,
        status_text=webhook.status_reading(exchange.status or 0),
        headers=exchange.headers,
        body=exchange.raw,
    )


OWN_PAGES = (
    "the sandbox's own pages are not reachable from a function (its mock "
    "endpoints, /mock/<name>/, are)"
)
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "[::1]"})


def _is_own_page(url: str) -> bool:
    """The URL is one of the sandbox server's own pages (by its address, or a
    loopback name for it), other than a mock endpoint."""
    try:
        target, own = urlsplit(url), urlsplit(settings.BASE_URL)
        port = target.port or (443 if target.scheme == "https" else 80)
        own_port = own.port or (443 if own.scheme == "https" else 80)
    except ValueError:
        return False
    host = (target.hostname or "").lower()
    same_host = host == (own.hostname or "").lower() or host in _LOOPBACK
    return same_host and port == own_port and not target.path.startswith("/mock/")


def invocation_record(invocation: runtime.Invocation, *, version: int) -> dict:
    """What the attempt keeps of the run: the two outputs Segment's test pane
    shows (Callback Return and Log Output), the error, and the timing."""
    logs, total, cut = [], 0, False
    for line in invocation.logs:
        message = safe_text(str(line.get("message", "")))
        room = MAX_LOG_CHARS - total
        if len(message) > room:
            # The start of the line that overflows is kept, then nothing more.
            cut = True
            if room > 0:
                logs.append(
                    {"level": str(line.get("level", "log")), "message": message[:room]}
                )
            break
        total += len(message)
        logs.append({"level": str(line.get("level", "log")), "message": message})
    error = invocation.error
    return {
        "handler": invocation.handler,
        "version": version,
        "status": invocation.status,
        "return": _returned(invocation.value_json),
        "return_cut": len(invocation.value_json or "") > settings.RESPONSE_BODY_LIMIT,
        "logs": logs,
        "logs_cut": cut,
        "error": (
            {
                key: safe_text(str(error.get(key, "")))
                for key in ("name", "message", "stack", "kind")
            }
            if error
            else None
        ),
        "duration_ms": round(invocation.duration_ms, 1),
    }


def _returned(value_json: str | None) -> str | None:
    if value_json is None:
        return None
    return safe_text(value_json[: settings.RESPONSE_BODY_LIMIT])


def register() -> None:
    senders.register(TargetKind.FUNCTION, FunctionSender())
