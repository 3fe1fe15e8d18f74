"""A shuffled replay's first pass reaches its open page live: no delivery
changes while it reads, so the reading itself tells the watcher."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from sandbox.replay import services
from sandbox.replay.models import Replay
from sandbox.routing import websocket_application
from tests.factories import ad_hoc_target
from tests.replay.helpers import write_lines

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


@pytest.mark.django_db(transaction=True)
async def test_a_run_poked_without_delivery_changes_is_pushed(tmp_path, watcher):
    path = write_lines(tmp_path / "e.jsonl", 50)
    replay = await database_sync_to_async(services.replay_create)(
        target=ad_hoc_target("http://127.0.0.1:9/"), path=path, shuffle=True
    )
    socket = WebsocketCommunicator(
        websocket_application, f"/ws/runs/{replay.run_id}/", headers=ORIGIN
    )
    assert (await socket.connect())[0]
    await watcher.tick(poll=False)
    first = await socket.receive_from(timeout=2)
    assert "data-shuffling" not in first
    # The first pass has read part of the file: the row changes, no delivery.
    await database_sync_to_async(
        lambda: Replay.objects.filter(pk=replay.pk).update(
            bytes_read=1234, feeder="here"
        )
    )()
    await watcher.tick(poll=False)
    assert await socket.receive_nothing(timeout=0.3)
    watcher.poke(runs=(replay.run_id,))
    await watcher.tick(poll=False)
    pushed = await socket.receive_from(timeout=2)
    assert "data-shuffling" in pushed
    assert "1.2\xa0KB of" in pushed
    await socket.disconnect()
