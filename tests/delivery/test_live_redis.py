"""Two servers on one Redis channel layer: each page hears each change once."""

import asyncio
import importlib.util
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.server import Server, composer_send

REDIS_SERVER = Path("/usr/bin/redis-server")
ROW = re.compile(
    r'<div id="delivery-row-(\d+)" class="delivery-row" data-version="(\d+)"'
    r' data-state="(\w+)"'
)
MOCK_REQUEST = re.compile(r'<article id="mock-request-(\d+)"')


def _missing() -> str | None:
    if not REDIS_SERVER.exists():
        return f"{REDIS_SERVER} is not installed (apt-get install redis-server)"
    if importlib.util.find_spec("channels_redis") is None:
        return "channels-redis is not installed (pip install -e '.[redis]')"
    return None


@pytest.fixture
def redis_url(tmp_path):
    missing = _missing()
    if missing:
        if os.environ.get("SANDBOX_REQUIRE_REDIS") == "1":
            pytest.fail(f"{missing} and SANDBOX_REQUIRE_REDIS=1")
        pytest.skip(missing)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            str(REDIS_SERVER),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as client:
                client.sendall(b"PING\r\n")
                if client.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


def _send(url: str, subscription: int) -> int:
    """One send through the composer of the server at `url`."""
    event = {"type": "track", "event": "Twice Heard?", "userId": "redis-1"}
    _, html = composer_send(url, subscription, event)
    return int(re.search(r'id="delivery-row-(\d+)"', html).group(1))


async def _listen(session, server: Server, path: str, into: list[str]) -> None:
    async with session.ws_connect(
        server.url.replace("http", "ws") + path, origin=server.url
    ) as socket_:
        async for message in socket_:
            into.append(message.data)


@pytest.mark.slow
def test_each_page_hears_each_change_once_with_two_servers(redis_url, tmp_path):
    showing = Server(tmp_path)
    showing.env["REDIS_URL"] = redis_url
    working = Server(tmp_path)
    working.log = tmp_path / "working.log"
    # Only one server sends, so the change is made in that process alone.
    working.env |= {"REDIS_URL": redis_url}
    showing.env["SANDBOX_ENGINE"] = "off"
    working.start()
    showing.start()
    try:
        heard = asyncio.run(_hear_a_send(working, showing))
    finally:
        showing.stop()
        working.stop()

    delivery = heard.pop("pk")
    [(request_id,)] = working.query(
        "SELECT max(id) FROM mock_mockrequest WHERE message_id ="
        " (SELECT message_id FROM delivery_delivery WHERE id = ?)",
        delivery,
    )
    for name, (feed, mock) in heard.items():
        versions = [
            (version, state)
            for message in feed
            for pk, version, state in ROW.findall(message)
            if int(pk) == delivery
        ]
        assert versions, f"the page on the {name} server heard nothing"
        assert len(versions) == len(set(versions)), (name, versions)
        assert versions[-1][1] == "delivered", (name, versions)
        recorded = [
            int(found) for message in mock for found in MOCK_REQUEST.findall(message)
        ]
        assert recorded == [request_id], (name, recorded)


async def _hear_a_send(working: Server, showing: Server) -> dict:
    [(subscription,)] = working.query(
        "SELECT id FROM subscriptions_subscription WHERE name = 'Demo subscription'"
    )
    [(mock,)] = working.query("SELECT id FROM mock_mockendpoint WHERE slug = 'demo'")
    heard: dict = {}
    async with aiohttp.ClientSession() as session:
        listeners = []
        for name, server in (("working", working), ("showing", showing)):
            feed, requests = [], []
            heard[name] = (feed, requests)
            listeners += [
                asyncio.create_task(_listen(session, server, "/ws/deliveries/", feed)),
                asyncio.create_task(
                    _listen(session, server, f"/ws/mocks/{mock}/", requests)
                ),
            ]
        # Each socket is subscribed once its handshake is answered.
        await asyncio.sleep(1.0)
        heard["pk"] = pk = await asyncio.to_thread(_send, working.url, subscription)
        deadline = time.monotonic() + 20
        while working.query("SELECT state FROM delivery_delivery WHERE id = ?", pk) != [
            ("delivered",)
        ]:
            assert time.monotonic() < deadline, "the delivery never settled"
            await asyncio.sleep(0.1)
        # Long enough for every poll and announcement to have been answered twice.
        await asyncio.sleep(1.5)
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    return heard
