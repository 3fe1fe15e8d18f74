"""The websocket origin check: only pages this very server served may listen."""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": "80", "https": "443"}
# A websocket's scheme, as the page that opened it was served.
PAGE_SCHEMES = {"ws": "http", "wss": "https"}


def _header(scope: dict, name: bytes) -> str | None:
    for header_name, value in scope.get("headers", []):
        if header_name == name:
            return value.decode("latin1")
    return None


def _site(scheme: str, netloc: str) -> tuple[str, str, str] | None:
    """(scheme, host, port) with the port spelled out, or None when unreadable."""
    host, port = split_domain_port(netloc)
    if not host or scheme not in DEFAULT_PORTS:
        return None
    return scheme, host, port or DEFAULT_PORTS[scheme]


def origin_allowed(scope: dict) -> bool:
    """Same origin as the websocket request itself, on a host in ALLOWED_HOSTS.

    A request without Origin is let through, as it cannot come from a web page:
    browsers always send Origin on a websocket handshake, and a page cannot remove
    it. Command-line clients that leave it out can read the pages over HTTP anyway.
    """
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    host = _header(scope, b"host")
    page_scheme = PAGE_SCHEMES.get(scope.get("scheme", "ws"))
    if host is None or page_scheme is None:
        return False
    own = _site(page_scheme, host)
    parsed = urlsplit(origin)
    claimed = _site(parsed.scheme.lower(), parsed.netloc)
    if own is None or claimed != own:
        return False
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        # As Django itself does for HTTP.
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    return validate_host(own[1], allowed_hosts)


class SameOriginValidator:
    """ASGI middleware that refuses a websocket whose Origin is another site.

    Channels' AllowedHostsOriginValidator only checks the Origin's host, so a page
    on any port of localhost could read the live feed; here scheme and port count
    too. Behind a TLS proxy, run Daphne with --proxy-headers so the scheme is https.
    """

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
