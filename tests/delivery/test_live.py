"""Live updates: a delivery's change reaches a subscribed websocket as HTML."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from sandbox.delivery.broadcast import Watcher
from sandbox.delivery.engine import Engine
from sandbox.routing import websocket_application
from tests.factories import make_delivery, make_subscription

pytestmark = pytest.mark.django_db(transaction=True)

# A page served by this server: its Origin matches the handshake's Host.
ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


async def _connect() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        websocket_application, "/ws/deliveries/", headers=ORIGIN
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_new_delivery_is_pushed_to_the_top_of_the_feed():
    watcher = Watcher()
    communicator = await _connect()
    subscription = await database_sync_to_async(make_subscription)()
    delivery = await database_sync_to_async(make_delivery)(subscription=subscription)
    assert await watcher.tick() is True
    html = await communicator.receive_from(timeout=2)
    assert html.startswith(f'<div id="delivery-row-{delivery.pk}" class="delivery-row"')
    assert "hx-swap-oob" not in html
    assert "Partner webhook" in html
    await communicator.disconnect()


async def test_changed_delivery_replaces_its_row(receiver):
    subscription = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/ok")
    )
    delivery = await database_sync_to_async(make_delivery)(subscription=subscription)
    watcher = Watcher()
    communicator = await _connect()
    await watcher.tick()
    await communicator.receive_from(timeout=2)
    engine = Engine()
    await engine.run_due()
    await engine.close()
    assert await watcher.tick() is True
    html = await communicator.receive_from(timeout=2)
    assert f'id="delivery-row-{delivery.pk}"' in html
    assert "hx-swap-oob" not in html
    assert 'data-outcome="green"' in html
    assert ">200<" in html
    await communicator.disconnect()


async def test_nothing_is_pushed_when_nothing_changed():
    watcher = Watcher()
    communicator = await _connect()
    assert await watcher.tick() is False
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_foreign_origin_is_refused():
    communicator = WebsocketCommunicator(
        websocket_application,
        "/ws/deliveries/",
        headers=[(b"origin", b"http://evil.example")],
    )
    connected, _ = await communicator.connect()
    assert not connected
