"""What the request and response panes show of an attempt: decoded, masked, copyable."""

import shlex
from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from sandbox.delivery.models import FUNCTION_METHOD, Attempt
from sandbox.delivery.webhook import decode_basic, decode_settings
from sandbox.display import (
    indent_json,
    mask_authorization,
    mask_headers,
    mask_secret,
    mask_secret_everywhere,
    mask_secret_in,
    pretty_json,
    safe_text,
)


@dataclass(frozen=True)
class RequestPane:
    headers: list[tuple[str, str]]
    api_key_masked: str
    colon_present: bool
    settings_pretty: str
    body_pretty: str


@dataclass(frozen=True)
class ResponsePane:
    headers: list[tuple[str, str]]
    body_pretty: str
    is_json: bool


def request_pane(attempt: Attempt) -> RequestPane:
    headers = []
    api_key_masked = ""
    colon_present = False
    settings_pretty = ""
    for name, value in attempt.request_headers:
        if name.lower() == "authorization":
            credentials = decode_basic(value)
            if credentials is not None:
                colon_present = credentials.endswith(":")
                key = credentials[:-1] if colon_present else credentials
                api_key_masked = mask_secret(key) or "(empty)"
            # The header is the key in base64: masked like the key itself.
            value = mask_authorization(value)
        elif name.lower() == "x-segment-settings":
            decoded = decode_settings(value)
            if decoded is not None:
                settings_pretty = indent_json(decoded)
        headers.append((name, value))
    body, _ = pretty_json(attempt.request_body)
    return RequestPane(headers, api_key_masked, colon_present, settings_pretty, body)


def _sent_key(attempt: Attempt) -> str:
    """The API key the attempt's Authorization header carried, or else (a
    function's run, given it in its settings) its target's."""
    for name, value in attempt.request_headers:
        if name.lower() == "authorization":
            credentials = decode_basic(value) or ""
            return credentials[:-1] if credentials.endswith(":") else credentials
    return attempt.target.api_key if attempt.target_id else ""


def response_pane(attempt: Attempt) -> ResponsePane:
    """The answer as the endpoint gave it, but for the key it was sent, masked
    wherever the endpoint echoed it ("Invalid API key sk_live_…")."""
    key = _sent_key(attempt)
    body, is_json = pretty_json(
        mask_secret_in(attempt.response_body, key, cut=attempt.response_truncated)
    )
    headers = [
        (name, mask_secret_in(value, key)) for name, value in attempt.response_headers
    ]
    return ResponsePane(headers, body, is_json)


def curl_command(attempt: Attempt) -> str:
    """The attempt as a cURL command, real headers included (the user asked to copy)."""
    return _curl(
        attempt.request_method,
        attempt.request_url,
        attempt.request_headers,
        attempt.request_body,
    )


def fetch_curl_command(attempt: Attempt, number: int) -> str | None:
    """The function's `number`th fetch (from 1) as a cURL command, real headers
    included, as for a webhook's request; None when it made no such fetch."""
    exchanges = attempt.exchanges if isinstance(attempt.exchanges, list) else []
    if not 1 <= number <= len(exchanges):
        return None
    request = _fetch_request(exchanges[number - 1])
    return _curl(request["method"], request["url"], request["headers"], request["body"])


def _curl(method: str, url: str, headers: list, body: str) -> str:
    lines = [f"curl -X {method} {shlex.quote(url)}"]
    lines += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers]
    # A fetch without a body (a GET) is sent without one; a webhook always has one.
    if body or method not in ("GET", "HEAD"):
        lines.append(f"--data-raw {shlex.quote(body)}")
    return " \\\n  ".join(lines)


@dataclass(frozen=True)
class FetchPane:
    """One `fetch` the function made: what it sent, and the answer or the
    FetchError it got instead."""

    number: int
    method: str
    url: str
    latency_ms: int | None
    request_headers: list[tuple[str, str]]
    request_body_pretty: str
    status: int | None
    error: str
    response_headers: list[tuple[str, str]]
    response_body_pretty: str
    response_truncated: bool

    @property
    def outcome(self) -> str:
        """The colour of the answer: a 2xx is green, anything else red."""
        if self.status is None:
            return "red"
        return "green" if 200 <= self.status < 300 else "red"


@dataclass(frozen=True)
class InvocationPane:
    """A function's run as Segment's test pane shows it: Callback Return, Log
    Output, the error it threw, and the fetch calls it made."""

    handler: str
    version: int | None
    status: str
    running: bool
    return_pretty: str
    return_is_json: bool
    logs: list[dict]
    logs_cut: bool
    error: dict | None
    duration_ms: float | None
    fetches: list[FetchPane]
    code_url: str

    @property
    def call(self) -> str:
        version = f" · v{self.version}" if self.version is not None else ""
        return f"{self.handler or '(no handler)'}{version}"

    @property
    def status_label(self) -> str:
        return INVOCATION_STATUSES.get(self.status, self.status)

    @property
    def without_return(self) -> str:
        """What ended the run when it neither returned nor threw."""
        return INVOCATION_ENDINGS.get(self.status, "")


# The run's ends that leave no return value and no error object.
INVOCATION_ENDINGS = {
    "missing_handler": "No handler for this event type is defined: Segment "
    "treats the event as unsupported (an implicit EventNotSupported).",
    "timeout": "The function did not finish within its time limit.",
    "memory": "The function ran out of memory.",
    "crashed": "The function's process ended before it finished.",
}
INVOCATION_STATUSES = {
    "returned": "returned",
    "threw": "threw",
    "missing_handler": "no handler",
    "timeout": "timed out",
    "memory": "out of memory",
    "crashed": "crashed",
}
# What Callback Return reads when the handler returned nothing.
UNDEFINED = "undefined"


def _fetch_request(exchange: object) -> dict:
    """The request half of a recorded fetch, every field present."""
    request = exchange.get("request") if isinstance(exchange, dict) else None
    request = request if isinstance(request, dict) else {}
    headers = request.get("headers")
    return {
        "method": str(request.get("method") or "GET"),
        "url": str(request.get("url") or ""),
        "headers": [
            (str(pair[0]), str(pair[1]))
            for pair in (headers if isinstance(headers, list) else [])
            if isinstance(pair, list | tuple) and len(pair) == 2
        ],
        "body": str(request.get("body") or ""),
    }


def fetch_pane(exchange: object, number: int) -> FetchPane:
    request = _fetch_request(exchange)
    exchange = exchange if isinstance(exchange, dict) else {}
    response = exchange.get("response")
    response = response if isinstance(response, dict) else None
    status = response.get("status") if response else None
    error = exchange.get("error")
    latency = exchange.get("latency_ms")
    return FetchPane(
        number=number,
        method=request["method"],
        url=request["url"],
        latency_ms=latency if isinstance(latency, int) else None,
        # Shown like a webhook's request: an Authorization header is masked, and
        # Copy as cURL (fetched on demand) has it whole.
        request_headers=mask_headers(request["headers"]),
        request_body_pretty=pretty_json(request["body"])[0],
        status=status if isinstance(status, int) else None,
        error=str(error or ("" if response else "No answer was recorded.")),
        response_headers=[
            (str(pair[0]), str(pair[1]))
            for pair in (response or {}).get("headers") or []
            if isinstance(pair, list | tuple) and len(pair) == 2
        ],
        response_body_pretty=pretty_json(str((response or {}).get("body") or ""))[0],
        response_truncated=bool((response or {}).get("truncated")),
    )


def _code_url(subscription_id: int | None, version: int | None) -> str:
    """The function's code at the version that ran, where the subscription still
    has its pages."""
    if subscription_id is None:
        return ""
    try:
        if version is None:
            return reverse("subscriptions:code", args=[subscription_id])
        return reverse("subscriptions:code-version", args=[subscription_id, version])
    except NoReverseMatch:
        return ""


def invocation_pane(attempt: Attempt, *, subscription_id: int | None) -> InvocationPane:
    """What the attempt recorded of the run; while it runs, only what it calls.
    The API key the function was given is masked wherever it logged, returned,
    sent or got it back."""
    key = _sent_key(attempt)
    record = attempt.invocation if isinstance(attempt.invocation, dict) else {}
    record = mask_secret_everywhere(record, key)
    handler, _, version = attempt.function_call.partition(" · v")
    version_number = record.get("version")
    if not isinstance(version_number, int):
        version_number = (
            int(version) if version.isascii() and version.isdigit() else None
        )
    returned = record.get("return")
    if isinstance(returned, str):
        return_pretty, is_json = pretty_json(returned)
    else:
        return_pretty, is_json = UNDEFINED, False
    error = record.get("error")
    error = (
        {key: safe_text(str(error.get(key) or "")) for key in ERROR_KEYS}
        if isinstance(error, dict)
        else None
    )
    logs = [
        {
            "level": str(line.get("level") or "log"),
            "message": str(line.get("message", "")),
        }
        for line in record.get("logs") or []
        if isinstance(line, dict)
    ]
    duration = record.get("duration_ms")
    exchanges = attempt.exchanges if isinstance(attempt.exchanges, list) else []
    exchanges = mask_secret_everywhere(exchanges, key)
    return InvocationPane(
        handler=str(record.get("handler") or handler),
        version=version_number,
        status=str(record.get("status") or ""),
        running=not attempt.outcome,
        return_pretty=return_pretty,
        return_is_json=is_json,
        logs=logs,
        logs_cut=bool(record.get("logs_cut")),
        error=error,
        duration_ms=duration if isinstance(duration, int | float) else None,
        fetches=[fetch_pane(e, n) for n, e in enumerate(exchanges, start=1)],
        code_url=_code_url(subscription_id, version_number),
    )


ERROR_KEYS = ("name", "message", "stack", "kind")


@dataclass(frozen=True)
class ChosenAttempt:
    """The one attempt the pane opens: its request and response, decoded."""

    attempt: Attempt
    request: RequestPane
    response: ResponsePane
    is_latest: bool
    # What the attempt says that the delivery's reason above it does not.
    reason: str
    error_message: str
    # A function's run, in place of the HTTP request and response.
    invocation: InvocationPane | None = None


def unsaid(text: str, *said: str) -> str:
    """`text`, or "" when one of `said` already says it: a delivery's reason
    begins with its latest attempt's, and a transport error's reason is its
    message."""
    core = text.strip().rstrip(".")
    return "" if not core or any(core in other for other in said) else text


def chosen_attempt(attempts: list[Attempt], number: int | None) -> Attempt | None:
    """The attempt asked for by its number, else the latest; None before the first."""
    if not attempts:
        return None
    found = next((a for a in attempts if a.number == number), None)
    return found or attempts[-1]


def detail_context(delivery, *, number: int | None = None) -> dict:
    """Everything the delivery-detail partial shows: the timeline of its attempts
    and one of them opened (the latest unless `number` names another).

    Only the opened attempt's request and response are decoded: a delivery with
    ten attempts shows ten timeline rows, not ten copies of the event.
    """
    attempts = delivery.timeline
    attempt = chosen_attempt(attempts, number)
    chosen = None
    if attempt is not None:
        reason = unsaid(attempt.reason, delivery.reason)
        chosen = ChosenAttempt(
            attempt=attempt,
            request=request_pane(attempt),
            response=response_pane(attempt),
            is_latest=attempt is attempts[-1],
            reason=reason,
            error_message=unsaid(
                attempt.error_message, attempt.reason, delivery.reason
            ),
            invocation=(
                invocation_pane(attempt, subscription_id=delivery.subscription_id)
                if attempt.request_method == FUNCTION_METHOD
                else None
            ),
        )
    return {
        "delivery": delivery,
        "attempts": attempts,
        "chosen": chosen,
        # The event itself is shown only while no attempt shows what was sent.
        "payload_pretty": "" if attempts else indent_json(delivery.payload),
    }
