"""One HTTP exchange with a subscription over aiohttp; failures in plain words."""

import errno
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from sandbox.delivery.webhook import WebhookRequest
from sandbox.spec.endpoint_url import ENDPOINT_URL_SCHEME_ERROR

# The subscription's own sentence, with the URL that broke it.
INVALID_URL = ENDPOINT_URL_SCHEME_ERROR + " (got {url!r})."
TIMEOUT = (
    "The endpoint did not answer within {timeout:g} s, the subscription's timeout."
)
REFUSED = "Connection refused by {host}: nothing is listening there."
DNS_FAILURE = "DNS lookup failed: the host {host!r} could not be resolved."
TLS_FAILURE = "TLS handshake with {host} failed: {detail}"
RESET = "The endpoint closed the connection before the response was complete."
OTHER = "The request could not be completed: {detail}"
NOT_HTTP = "The endpoint's answer could not be read as HTTP: {detail}"
UNSENDABLE_URL = "The endpoint URL {url!r} cannot be used: {detail}"
_NEVER_CEIL = float("inf")


@dataclass
class Exchange:
    """What happened on the wire: a response, or a transport error."""

    latency_ms: int = 0
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    truncated: bool = False
    content_type: str = ""
    error_kind: str = ""
    error_message: str = ""
    # The body as it came, up to the limit, when the caller asked to keep it (a
    # function's fetch reads bytes); never stored.
    raw: bytes = b""


def new_session(*, concurrency: int = 100) -> aiohttp.ClientSession:
    # No headers of our own: aiohttp would otherwise add Accept-Encoding and its own
    # User-Agent, and Segment's request has exactly the headers the engine sets.
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=concurrency, timeout_ceil_threshold=_NEVER_CEIL
        ),
        skip_auto_headers=("Accept-Encoding", "User-Agent", "Accept", "Content-Type"),
    )


async def _read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    buffer = bytearray()
    while len(buffer) <= limit:
        chunk = await response.content.read(limit + 1 - len(buffer))
        if not chunk:
            break
        buffer += chunk
    return bytes(buffer)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


async def send(
    session: aiohttp.ClientSession,
    request: WebhookRequest,
    *,
    timeout: float,
    body_limit: int,
    keep_raw: bool = False,
) -> Exchange:
    """Send one request; never raises for anything the endpoint or network does."""
    if urlsplit(request.url).scheme not in {"http", "https"}:
        return Exchange(
            error_kind="invalid_url", error_message=INVALID_URL.format(url=request.url)
        )
    started = time.perf_counter()
    exchange = Exchange()
    try:
        async with session.request(
            request.method,
            request.url,
            data=request.body,
            headers=request.headers,
            # Segment does not follow a webhook's redirects; a function's fetch
            # follows them itself, a hop at a time (worker/context.js).
            allow_redirects=False,
            # aiohttp rounds timeouts of ceil_threshold (5 s) or more up to the next
            # whole second; Segment's 5 s means 5 s.
            timeout=aiohttp.ClientTimeout(total=timeout, ceil_threshold=_NEVER_CEIL),
        ) as response:
            raw = await _read_limited(response, body_limit)
            exchange.status = response.status
            exchange.headers = [
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in response.raw_headers
            ]
            exchange.content_type = response.headers.get("Content-Type", "")
            exchange.truncated = len(raw) > body_limit
            exchange.body = raw[:body_limit].decode("utf-8", errors="replace")
            if keep_raw:
                exchange.raw = raw[:body_limit]
            if exchange.truncated:
                # Don't drain megabytes we will not keep; drop the connection instead.
                response.close()
    except TimeoutError:
        exchange.error_kind = "timeout"
        exchange.error_message = TIMEOUT.format(timeout=timeout)
    except aiohttp.ClientConnectorDNSError:
        exchange.error_kind = "dns"
        exchange.error_message = DNS_FAILURE.format(host=urlsplit(request.url).hostname)
    except (aiohttp.ClientSSLError, ssl.SSLError) as error:
        exchange.error_kind = "tls"
        exchange.error_message = TLS_FAILURE.format(
            host=_host(request.url), detail=_detail(error)
        )
    except aiohttp.ClientConnectorError as error:
        if isinstance(error.os_error, ConnectionRefusedError):
            exchange.error_kind = "refused"
            exchange.error_message = REFUSED.format(host=_host(request.url))
        else:
            exchange.error_kind = "other"
            exchange.error_message = OTHER.format(detail=_detail(error))
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError):
        exchange.error_kind = "reset"
        exchange.error_message = RESET
    except aiohttp.ClientOSError as error:
        if error.errno in {errno.ECONNRESET, errno.EPIPE}:
            exchange.error_kind = "reset"
            exchange.error_message = RESET
        else:
            exchange.error_kind = "other"
            exchange.error_message = OTHER.format(detail=_detail(error))
    except aiohttp.InvalidURL:
        exchange.error_kind = "invalid_url"
        exchange.error_message = INVALID_URL.format(url=request.url)
    except aiohttp.ClientResponseError as error:
        # An answer aiohttp could not parse: its "400" is aiohttp's own code,
        # not a status the endpoint sent.
        exchange.error_kind = "other"
        exchange.error_message = NOT_HTTP.format(detail=error.message or _detail(error))
    except aiohttp.ClientError as error:
        exchange.error_kind = "other"
        exchange.error_message = OTHER.format(detail=_detail(error))
    except ValueError as error:
        # aiohttp refuses some URLs (credentials in them, say) with a ValueError.
        exchange.error_kind = "invalid_url"
        exchange.error_message = UNSENDABLE_URL.format(
            url=request.url, detail=_detail(error)
        )
    exchange.latency_ms = round((time.perf_counter() - started) * 1000)
    return exchange


def _detail(error: BaseException) -> str:
    return str(error) or type(error).__name__
