"""A request a mock endpoint records reaches that endpoint's open page at once."""

import asyncio
import json
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from sandbox.delivery import runtime
from sandbox.mock.services import mock_request_handle
from sandbox.routing import websocket_application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


async def _connect(path: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(websocket_application, path, headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@pytest.fixture
async def live_watcher(settings):
    # A poll this slow never answers within the test: only the on-commit call can.
    settings.LIVE_POLL_MS = 60_000
    yield
    await runtime.stop_watcher()


async def test_a_recorded_request_is_pushed_to_its_endpoints_page_only(
    live_watcher, make_mock_endpoint, basic_auth, api_key
):
    endpoint = await database_sync_to_async(make_mock_endpoint)()
    other = await database_sync_to_async(make_mock_endpoint)(slug="other", name="B")
    page = await _connect(f"/ws/mocks/{endpoint.pk}/")
    other_page = await _connect(f"/ws/mocks/{other.pk}/")
    runtime.ensure_watcher()
    await asyncio.sleep(0.2)

    started = time.monotonic()
    # In a thread, as the mock's async view calls it.
    await asyncio.to_thread(
        mock_request_handle,
        endpoint=endpoint,
        method="POST",
        headers=[("Authorization", basic_auth(api_key))],
        body=json.dumps({"type": "track", "messageId": "live-1"}).encode(),
    )
    html = await page.receive_from(timeout=2)
    latency = time.monotonic() - started

    request_id = await database_sync_to_async(
        lambda: endpoint.requests.get(message_id="live-1").pk
    )()
    assert f'<article id="mock-request-{request_id}" class="card mock-request">' in html
    assert '<span id="mock-requests-summary" class="muted">1 recorded' in html
    assert "live-1" in html
    assert latency < 1.0
    assert await other_page.receive_nothing(timeout=0.3)
    await page.disconnect()
    await other_page.disconnect()
