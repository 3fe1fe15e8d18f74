"""The mock endpoint itself (`/mock/<slug>/`), as a plain ASGI app ahead of Django.

Every delivery to a subscription on a mock is a request here, so a burst of sends
from the page brings as many requests again. Through Django's stack (a request
object, the middleware, URL resolution, two switches to the sync thread that
serves pages) each cost the server as much CPU as the send itself: 6.1 to 6.5 ms
(200 concurrent POSTs to the demo mock, `runserver`, DEBUG off). An endpoint for
machines needs none of that, as the tracking API (sandbox.sources.api) does not:
here the body is read on the event loop, and the request is recorded and its
answer chosen in one switch to the sync thread (2.4 to 3.0 ms a request).

That thread is the pages' own, on purpose: a thread of its own for the mock was
tried, and the page's sends then waited for SQLite's write lock behind the
mock's records (p95 of the load benchmark 2.0 s against 1.1 s), where one
thread takes its turns without waiting.

What it answers, records and announces is sandbox.mock.services'
mock_request_receive, which the Django view (for callers of Django itself)
shares: the same door either way.
"""

import asyncio
import io
import logging
import re

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host

from sandbox.middleware import body_size
from sandbox.mock.answers import METHOD_NOT_ALLOWED, UNKNOWN_ENDPOINT
from sandbox.mock.services import Received, mock_request_receive
from sandbox.plain_asgi import answer, answer_json, read_body

logger = logging.getLogger("sandbox.mock")

# Django's <slug:slug> converter, with or without the trailing slash (a URL
# pasted without it would otherwise meet APPEND_SLASH, which cannot redirect a
# POST).
PATH = re.compile(r"/mock/(?P<slug>[-a-zA-Z0-9_]+)/?")
NOT_RECORDED = "The sandbox could not record this request; send it again."
DISALLOWED_HOST = (
    "Host {host!r} is not one this sandbox serves; add it to SANDBOX_ALLOWED_HOSTS"
)
# Every answer, as Django's middleware would add to it: a browser shown one
# reads it as its type only, and never in a frame.
_ANSWER_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
]


class MockReceiver:
    """Answers the mock endpoint's path itself and hands everything else to `app`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            found = PATH.fullmatch(scope["path"])
            if found is not None:
                return await _serve(scope, receive, send, found["slug"])
        return await self.app(scope, receive, send)


async def _serve(scope, receive, send, slug: str) -> None:
    method = scope["method"]
    host = _host(scope)
    if host is not None:
        # As Django refuses a page for another name (DNS rebinding, say).
        await _read_body(receive, limit=0)
        await _answer_json(send, 400, {"message": DISALLOWED_HOST.format(host=host)})
        return
    if method != "POST":
        await _read_body(receive, limit=0)
        await _answer_json(
            send,
            405,
            {"message": METHOD_NOT_ALLOWED.format(method=method)},
            [(b"allow", b"POST")],
        )
        return
    # Django's own reading of the request line and headers, so either door
    # records the same headers (its names, its joining of repeats, its guard
    # against names with an underscore) and reads the same announced size.
    request = ASGIRequest(scope, io.BytesIO())
    headers = list(request.headers.items())
    body, size = await _read_body(
        receive,
        limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        announced=body_size(request),
    )
    try:
        received = await sync_to_async(_receive)(slug, method, headers, body, size)
    except Exception:
        logger.exception("a request to the mock endpoint %r was not recorded", slug)
        await _answer_json(
            send, 503, {"message": NOT_RECORDED}, [(b"retry-after", b"1")]
        )
        return
    if received is None:
        await _answer_json(send, 404, {"message": UNKNOWN_ENDPOINT.format(slug=slug)})
        return
    if received.delay_ms:
        # Recorded first, answered late: like a partner that is slow to respond.
        await asyncio.sleep(received.delay_ms / 1000)
    reply = received.answer
    await _answer(
        send,
        reply.status,
        reply.body.encode(),
        [(b"content-type", reply.content_type.encode("latin-1"))],
    )


def _host(scope) -> str | None:
    """The Host the request names when it is not an allowed one, else None."""
    host = next((v for k, v in scope["headers"] if k == b"host"), None)
    if host is None:
        server = scope.get("server") or ("", None)
        host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    else:
        host = host.decode("latin-1")
    domain, _ = split_domain_port(host)
    if domain and validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    return host


def _receive(slug, method, headers, body, size) -> Received | None:
    try:
        return mock_request_receive(
            slug=slug, method=method, headers=headers, body=body, size=size
        )
    except Exception:
        # A broken connection is replaced at the next request.
        close_old_connections()
        raise


async def _read_body(
    receive, *, limit: int, announced: int = 0
) -> tuple[bytes | None, int]:
    """The body and its size; None for a body over `limit` (announced, or found
    so as it came), of which only the size is kept."""
    body, size = await read_body(receive, limit=limit)
    if size > limit or announced > limit:
        return None, max(size, announced)
    return body, size


async def _answer(send, status: int, body: bytes, headers: list) -> None:
    await answer(send, status, body, [*headers, *_ANSWER_HEADERS])


async def _answer_json(send, status: int, body: dict, headers: list = ()) -> None:
    await answer_json(send, status, body, [*headers, *_ANSWER_HEADERS])
