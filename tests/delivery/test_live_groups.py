"""Scoped live groups: a delivery's pane, a run's progress, and the fast path."""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from sandbox import spec
from sandbox.delivery import runtime, services
from sandbox.delivery.broadcast import Watcher
from sandbox.delivery.conditions import Conditions
from sandbox.delivery.engine import Engine
from sandbox.delivery.models import Delivery, Door
from sandbox.routing import websocket_application
from tests.factories import make_delivery, make_subscription

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


async def _connect(path: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(websocket_application, path, headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _deliver(*ids: int) -> None:
    engine = Engine()
    try:
        await engine.run_due(only_ids=list(ids))
    finally:
        await engine.close()


async def _received(communicator: WebsocketCommunicator, wait: float) -> list[str]:
    """Every message that arrives within `wait` seconds of the last one."""
    messages = []
    # receive_nothing, unlike a receive that times out, leaves the consumer running.
    while not await communicator.receive_nothing(timeout=wait):
        messages.append(await communicator.receive_from())
    return messages


@pytest.fixture
async def watcher():
    watcher = Watcher()
    yield watcher
    await watcher.close()


async def test_a_pane_gets_its_delivery_on_subscribing_then_each_change(
    receiver, watcher
):
    subscription = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/ok")
    )
    delivery = await database_sync_to_async(make_delivery)(subscription=subscription)
    await watcher.tick()
    pane = await _connect(f"/ws/deliveries/{delivery.pk}/")

    assert await watcher.tick() is True
    html = await pane.receive_from(timeout=2)
    assert html.startswith('<div id="delivery-detail" class="card"')
    assert f'ws-connect="/ws/deliveries/{delivery.pk}/"' in html
    assert "Waiting for the first attempt" in html

    await _deliver(delivery.pk)
    assert await watcher.tick() is True
    html = await pane.receive_from(timeout=2)
    assert 'id="attempt-1"' in html
    assert "HTTP 200" in html
    # The pushed forms post through htmx with the page's own token.
    assert "csrfmiddlewaretoken" not in html

    assert await watcher.tick() is False
    assert await pane.receive_nothing(timeout=0.3)
    await pane.disconnect()


async def test_a_pane_hears_only_its_delivery_and_the_feed_no_pane(receiver, watcher):
    subscription = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/ok")
    )
    shown = await database_sync_to_async(make_delivery)(subscription=subscription)
    other = await database_sync_to_async(make_delivery)(subscription=subscription)
    await watcher.tick()
    pane = await _connect(f"/ws/deliveries/{shown.pk}/")
    feed = await _connect("/ws/deliveries/")
    await watcher.tick()
    assert 'id="delivery-detail"' in await pane.receive_from(timeout=2)

    await _deliver(other.pk)
    assert await watcher.tick() is True
    html = await feed.receive_from(timeout=2)
    assert html.startswith(f'<div id="delivery-row-{other.pk}" class="delivery-row"')
    assert 'id="delivery-detail"' not in html
    assert await pane.receive_nothing(timeout=0.3)
    await pane.disconnect()
    await feed.disconnect()


async def test_a_late_subscriber_gets_the_pane_alone(receiver, watcher):
    subscription = await database_sync_to_async(make_subscription)(
        endpoint_url=receiver.url("/ok")
    )
    delivery = await database_sync_to_async(make_delivery)(subscription=subscription)
    first = await _connect(f"/ws/deliveries/{delivery.pk}/")
    await watcher.tick()
    await first.receive_from(timeout=2)

    second = await _connect(f"/ws/deliveries/{delivery.pk}/")
    assert await watcher.tick() is True
    assert 'id="delivery-detail"' in await second.receive_from(timeout=2)
    # Nothing changed: the page already showing it is not sent it again.
    assert await first.receive_nothing(timeout=0.3)
    await first.disconnect()
    await second.disconnect()


@pytest.mark.slow
async def test_a_runs_progress_is_coalesced_however_fast_it_changes(watcher):
    watcher.run_interval = 1.0
    subscription = await database_sync_to_async(make_subscription)()

    def send_run():
        return services.run_enqueue(
            target=services.Target.of(subscription),
            event=spec.sample_event("track"),
            door=Door.COMPOSER,
            conditions=Conditions(copies=12),
        )

    run = await database_sync_to_async(send_run)()
    progress = await _connect(f"/ws/runs/{run.pk}/")
    await watcher.tick()
    html = await progress.receive_from(timeout=2)
    assert html.startswith('<p id="run-progress"')
    assert "12 pending" in html
    assert "0 of 12 settled" in html

    ids = await database_sync_to_async(
        lambda: list(run.deliveries.values_list("pk", flat=True))
    )()
    started = time.monotonic()
    for pk in ids:
        delivery = await database_sync_to_async(Delivery.objects.get)(pk=pk)
        await database_sync_to_async(services.delivery_stop_retrying)(delivery=delivery)
        await watcher.tick()
    burst = time.monotonic() - started
    during = await _received(progress, wait=0.05)
    # Twelve changes, at most one push a second.
    assert len(during) <= int(burst / watcher.run_interval) + 1

    await asyncio.sleep(watcher.run_interval)
    await watcher.tick()
    final = (during + await _received(progress, wait=0.5))[-1]
    assert "12 failed" in final
    assert "12 of 12 settled" in final
    await progress.disconnect()


async def test_a_change_signalled_in_this_process_is_pushed_at_once(settings):
    # A poll this slow never answers within the test: only the signal can.
    settings.LIVE_POLL_MS = 60_000
    subscription = await database_sync_to_async(make_subscription)()
    feed = await _connect("/ws/deliveries/")
    runtime.ensure_watcher()
    try:
        # The watcher's first look is its poll; what follows is the signal's.
        await asyncio.sleep(0.2)
        delivery = await database_sync_to_async(make_delivery)(
            subscription=subscription
        )
        await _received(feed, wait=0.2)

        def stop_elsewhere():
            services.delivery_stop_retrying(delivery=delivery)
            runtime.changed([delivery.pk])

        started = time.monotonic()
        # From another thread, as the engine's database thread calls it.
        await asyncio.to_thread(stop_elsewhere)
        html = await feed.receive_from(timeout=2)
        latency = time.monotonic() - started
        assert f'id="delivery-row-{delivery.pk}"' in html
        assert 'data-state="failed"' in html
        assert latency < 1.0
    finally:
        await runtime.stop_watcher()
        await feed.disconnect()
