"""A hostile websocket cannot stop live updates: topics no page could watch
are refused at connect, and a topic that fails to render holds back no other
page's pushes."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from sandbox.delivery.broadcast import RUN_PROGRESS, SUBSCRIBERS, Topic, Watcher
from sandbox.routing import websocket_application
from tests.factories import make_delivery, make_subscription

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


@pytest.fixture
async def watcher():
    watcher = Watcher()
    yield watcher
    await watcher.close()


@pytest.mark.parametrize(
    "path",
    [
        "/ws/runs/99999999999999999999999/",
        "/ws/deliveries/9223372036854775808/",
        "/ws/mocks/-1/",
        "/ws/sources/99999999999999999999/",
        "/ws/history/?" + "&".join(f"a{n}=1" for n in range(1500)),
        "/ws/history/?event=" + "x" * 5000,
    ],
)
async def test_a_topic_no_page_watches_is_refused(path):
    socket = WebsocketCommunicator(websocket_application, path, headers=ORIGIN)
    connected, _ = await socket.connect()
    assert not connected


async def test_a_topic_that_fails_to_render_holds_back_no_other_push(watcher):
    subscription = await database_sync_to_async(make_subscription)()
    await watcher.tick()
    feed = WebsocketCommunicator(
        websocket_application, "/ws/deliveries/", headers=ORIGIN
    )
    assert (await feed.connect())[0]
    await watcher.tick()
    while not await feed.receive_nothing(timeout=0.2):
        await feed.receive_from()
    # Watched as a page's socket would have it, were it not refused: its run
    # progress query fails (the id does not fit SQLite's integers).
    hostile = Topic(RUN_PROGRESS, 2**70)
    SUBSCRIBERS.add(hostile, "hostile-channel")
    try:
        delivery = await database_sync_to_async(make_delivery)(
            subscription=subscription
        )
        await watcher.tick()
        row = await feed.receive_from(timeout=2)
        assert f'id="delivery-row-{delivery.pk}"' in row
    finally:
        SUBSCRIBERS.discard(hostile, "hostile-channel")
        await feed.disconnect()
