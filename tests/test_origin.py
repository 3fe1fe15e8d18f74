"""The websocket origin check, through the real websocket application."""

import pytest
from channels.testing import WebsocketCommunicator

from sandbox.routing import websocket_application

pytestmark = pytest.mark.django_db


async def _connects(headers: list[tuple[bytes, bytes]], scheme: str = "ws") -> bool:
    communicator = WebsocketCommunicator(
        websocket_application, "/ws/deliveries/", headers=headers
    )
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect()
    if connected:
        await communicator.disconnect()
    return connected


def _headers(origin: str | None, host: str | None) -> list[tuple[bytes, bytes]]:
    headers = []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if host is not None:
        headers.append((b"host", host.encode()))
    return headers


async def test_same_origin_is_accepted():
    assert await _connects(_headers("http://127.0.0.1:8000", "127.0.0.1:8000"))


async def test_same_origin_on_default_ports_is_accepted():
    assert await _connects(_headers("http://localhost", "localhost:80"))
    assert await _connects(_headers("https://localhost:443", "localhost"), "wss")


async def test_ipv6_loopback_same_origin_is_accepted():
    assert await _connects(_headers("http://[::1]:8000", "[::1]:8000"))


async def test_origin_host_case_does_not_matter():
    assert await _connects(_headers("http://LOCALHOST:8000", "localhost:8000"))


async def test_page_on_another_port_is_refused():
    assert not await _connects(_headers("http://127.0.0.1:3000", "127.0.0.1:8000"))


async def test_page_on_another_scheme_is_refused():
    assert not await _connects(_headers("https://127.0.0.1:8000", "127.0.0.1:8000"))
    assert not await _connects(
        _headers("http://127.0.0.1:8000", "127.0.0.1:8000"), "wss"
    )


async def test_page_on_another_host_is_refused():
    assert not await _connects(_headers("http://localhost:8000", "127.0.0.1:8000"))
    assert not await _connects(_headers("http://evil.example", "127.0.0.1:8000"))


async def test_same_origin_on_a_host_outside_allowed_hosts_is_refused():
    # What DNS rebinding looks like: the attacker's name on both sides.
    assert not await _connects(_headers("http://evil.example", "evil.example"))


async def test_opaque_or_malformed_origins_are_refused():
    for origin in ("null", "file://", "http://", "ftp://127.0.0.1:8000"):
        assert not await _connects(_headers(origin, "127.0.0.1:8000")), origin


async def test_origin_without_host_header_is_refused():
    assert not await _connects(_headers("http://127.0.0.1:8000", None))


async def test_missing_origin_is_accepted():
    # Only non-browser clients leave it out; a web page cannot.
    assert await _connects(_headers(None, "127.0.0.1:8000"))
