"""Events a source receives reach that source's open debugger at once."""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils.html import escape

from sandbox.delivery import runtime
from sandbox.routing import websocket_application
from sandbox.sources import services
from sandbox.sources.models import IngestedEvent
from tests.factories import ingest_batch, make_subscription

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


def _sources():
    subscription = make_subscription(name="Live receiver")
    one, _ = services.source_save(
        name="One", subscriptions=[subscription], write_key="live-one-key"
    )
    two, _ = services.source_save(
        name="Two", subscriptions=[subscription], write_key="live-two-key"
    )
    return one, two


async def test_arriving_events_are_pushed_to_their_sources_debugger_only(
    live_watcher,
):
    one, two = await database_sync_to_async(_sources)()
    page = await _connect(f"/ws/sources/{one.pk}/")
    other_page = await _connect(f"/ws/sources/{two.pk}/")
    unknown_page = await _connect("/ws/sources/0/")
    runtime.ensure_watcher()
    await asyncio.sleep(0.2)

    started = time.monotonic()
    events = [
        {"type": "track", "event": "Live One", "userId": "u1", "messageId": "live-a"},
        {"type": "nonsense", "userId": "u1", "messageId": "live-b"},
    ]
    await asyncio.to_thread(ingest_batch, "live-one-key", events)
    html = await page.receive_from(timeout=2)
    latency = time.monotonic() - started

    stored = await database_sync_to_async(
        lambda: {e.message_id: e for e in IngestedEvent.objects.filter(source=one)}
    )()
    accepted, dropped = stored["live-a"], stored["live-b"]
    assert dropped.status == IngestedEvent.Status.DROPPED
    assert f'id="source-event-{accepted.pk}"' in html
    assert f'id="source-event-{dropped.pk}"' in html
    # Newest first, as the page lists them; the dropped one says why.
    assert html.index(f"source-event-{dropped.pk}") < html.index(
        f"source-event-{accepted.pk}"
    )
    assert "Live One" in html and "accepted" in html
    assert dropped.reason.startswith("Unknown type 'nonsense'")
    assert escape(dropped.reason) in html
    assert latency < 1.0
    assert await other_page.receive_nothing(timeout=0.3)
    assert await unknown_page.receive_nothing(timeout=0.1)

    await asyncio.to_thread(
        ingest_batch, "nobody-has-this-key", [{"type": "track", "event": "Lost"}]
    )
    html = await unknown_page.receive_from(timeout=2)
    assert "Lost" in html and "dropped" in html
    assert await page.receive_nothing(timeout=0.3)
    for communicator in (page, other_page, unknown_page):
        await communicator.disconnect()


async def test_endpoint_text_in_a_pushed_row_is_escaped(live_watcher):
    one, _ = await database_sync_to_async(_sources)()
    page = await _connect(f"/ws/sources/{one.pk}/")
    runtime.ensure_watcher()
    await asyncio.sleep(0.2)
    event = {"type": "track", "event": "<img src=x onerror=alert(1)>", "userId": "u"}
    await asyncio.to_thread(ingest_batch, "live-one-key", [event])
    html = await page.receive_from(timeout=2)
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    await page.disconnect()
