"""Segment's HTTP Tracking API (`POST /v1/...`) as a plain ASGI app, ahead of Django.

An API, not a page: no middleware, no session, no CSRF, no cookies. Each request
is read and checked as Segment's edge checks it (sandbox.sources.tracking), then
stored as it arrived and answered once the store commits, as Segment answers
once it has queued the request. Expanding it into events and deliveries happens
afterwards (sandbox.sources.runtime), so the answer never waits for that, nor
for any subscription.
"""

import logging

from django.utils import timezone

from sandbox.plain_asgi import JSON, answer, answer_json, read_body
from sandbox.sources import runtime, tracking
from sandbox.sources.services import ArrivedRequest

logger = logging.getLogger("sandbox.sources")

SUCCESS = b'{"success": true}'
STORE_FAILED = "The sandbox could not store the request; send it again."
METHOD_NOT_ALLOWED = "The tracking API takes POST."
# CORS: any page may send (browsers send text/plain, and analytics.js 1.84 an
# Authorization header, which needs a preflight).
ALLOWED_HEADERS = "Authorization, Content-Type, Content-Encoding, X-Retry-Count"
PREFLIGHT_MAX_AGE = "86400"


def endpoint_of(path: str) -> str | None:
    """The call a tracking API path names (a trailing slash allowed), or None."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return tracking.ENDPOINTS.get(path)


class TrackingAPI:
    """Routes the tracking API's paths to itself and everything else to `app`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            endpoint = endpoint_of(scope["path"])
            if endpoint is not None:
                return await _serve(scope, receive, send, endpoint)
        if scope["type"] in {"http", "websocket"}:
            # Requests a stopped server left stored are expanded on its next start.
            runtime.start()
        return await self.app(scope, receive, send)


async def _serve(scope, receive, send, endpoint: str) -> None:
    headers = _headers(scope)
    cors = _cors_headers(headers)
    method = scope["method"]
    if method == "OPTIONS":
        await answer(send, 204, b"", cors + _preflight_headers(headers))
        return
    if method != "POST":
        await read_body(receive, limit=0)
        body = tracking.Refusal("method_not_allowed", METHOD_NOT_ALLOWED).body()
        await answer_json(send, 405, body, [*cors, (b"allow", b"POST, OPTIONS")])
        return
    # One byte over the limit is enough to know the body is over it.
    raw, _ = await read_body(receive, limit=tracking.MAX_BATCH_BYTES + 1)
    if endpoint == tracking.METRICS:
        # analytics.js's own metrics: accepted and ignored.
        await answer(send, 200, SUCCESS, cors + JSON)
        return
    received_at = timezone.now()
    read = tracking.read_body(
        raw,
        endpoint=endpoint,
        content_encoding=headers.get(b"content-encoding", b"").decode("latin-1"),
        authorization=headers.get(b"authorization", b"").decode("latin-1"),
    )
    refusal = read.refusal
    stored = ArrivedRequest(
        endpoint=endpoint,
        write_key=read.write_key,
        body=read.text if refusal is None else _preview(read.text, raw, headers),
        refusal=refusal.message if refusal is not None else "",
        client_ip=(scope.get("client") or ("",))[0] or "",
        user_agent=headers.get(b"user-agent", b"").decode("latin-1"),
        received_at=received_at,
    )
    try:
        await runtime.writer().submit(stored)
    except Exception:
        logger.exception("a tracking API request was not stored")
        failed = tracking.Refusal("unavailable", STORE_FAILED).body()
        await answer_json(send, 503, failed, [*cors, (b"retry-after", b"1")])
        return
    if refusal is not None:
        await answer_json(send, 400, refusal.body(), cors)
        return
    await answer(send, 200, SUCCESS, cors + JSON)


def _preview(text: str, raw: bytes, headers: dict[bytes, bytes]) -> str:
    """The start of a refused request's body, to show why it went nowhere (a
    body refused before it was read as text is shown as far as it is text)."""
    if text:
        return text[: tracking.REFUSED_BODY_PREVIEW]
    if headers.get(b"content-encoding", b"").strip().lower() not in (b"", b"identity"):
        return ""
    return raw[: tracking.REFUSED_BODY_PREVIEW].decode("utf-8", "replace")


def _headers(scope) -> dict[bytes, bytes]:
    # Header names arrive lower-cased (ASGI); the last of a repeated one wins.
    return dict(scope["headers"])


def _cors_headers(headers: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    origin = headers.get(b"origin")
    if origin is None:
        return []
    return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]


def _preflight_headers(headers: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-methods", b"POST, OPTIONS"),
        (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
        (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()),
    ]
