"""Scoped live groups: a delivery's pane, a run's progress, the history under
its filters, and the fast path."""

import asyncio
import re
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from sandbox import spec
from sandbox.delivery import runtime, services
from sandbox.delivery.broadcast import FEED, Topic, Watcher, history_topic
from sandbox.delivery.conditions import Conditions
from sandbox.delivery.engine import Engine
from sandbox.delivery.models import Delivery, Door
from sandbox.delivery.selectors import PAGE_SIZE
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


def _send_named(subscription, name: str, *, count: int = 1) -> list[Delivery]:
    return services.deliveries_enqueue(
        target=services.Target.of(subscription),
        events=[{"type": "track", "event": name, "userId": "u"}] * count,
        door=Door.COMPOSER,
    )


async def test_a_history_page_hears_the_new_deliveries_its_filters_match(watcher):
    subscription = await database_sync_to_async(make_subscription)()
    filtered = await _connect("/ws/history/?event=ORDER&q=&before=")
    everything = await _connect("/ws/history/")
    await watcher.tick()

    [order] = await database_sync_to_async(_send_named)(subscription, "Order Shipped")
    [signup] = await database_sync_to_async(_send_named)(subscription, "Signed Up")
    assert await watcher.tick() is True
    html = await filtered.receive_from(timeout=2)
    assert html.startswith(f'<tr id="history-row-{order.pk}" class="history-row"')
    assert "Order Shipped" in html
    assert f"history-row-{signup.pk}" not in html
    both = await everything.receive_from(timeout=2)
    # Newest first, as the page lists them.
    assert both.index(f"history-row-{signup.pk}") < both.index(
        f"history-row-{order.pk}"
    )
    assert await filtered.receive_nothing(timeout=0.3)

    await database_sync_to_async(services.delivery_stop_retrying)(delivery=signup)
    assert await watcher.tick() is True
    assert 'data-version="' in await everything.receive_from(timeout=2)
    assert await filtered.receive_nothing(timeout=0.3)
    await filtered.disconnect()
    await everything.disconnect()


async def test_a_subscriptions_page_hears_only_its_own_deliveries(watcher):
    mine = await database_sync_to_async(make_subscription)(name="Mine")
    theirs = await database_sync_to_async(make_subscription)(
        name="Theirs", endpoint_url="http://127.0.0.1:9/theirs"
    )
    page = await _connect(f"/ws/history/?subscription={mine.pk}")
    await watcher.tick()
    [other] = await database_sync_to_async(_send_named)(theirs, "Elsewhere")
    assert await watcher.tick() is False
    [own] = await database_sync_to_async(_send_named)(mine, "Here")
    assert await watcher.tick() is True
    html = await page.receive_from(timeout=2)
    assert f'id="history-row-{own.pk}"' in html
    assert f"history-row-{other.pk}" not in html
    await page.disconnect()


async def test_a_history_page_hears_no_change_below_its_first_page(watcher):
    subscription = await database_sync_to_async(make_subscription)()
    made = await database_sync_to_async(_send_named)(
        subscription, "Bulk", count=PAGE_SIZE + 2
    )
    page = await _connect("/ws/history/?event=bulk")
    await watcher.tick()
    await _received(page, wait=0.3)

    stop = database_sync_to_async(services.delivery_stop_retrying)
    await stop(delivery=made[0])
    assert await watcher.tick() is False
    # One row past the page: the page keeps its size and learns there is more.
    await stop(delivery=made[1])
    assert await watcher.tick() is True
    html = await page.receive_from(timeout=2)
    assert html.startswith(f'<tr id="history-row-{made[1].pk}"')
    await page.disconnect()


async def test_a_burst_reaches_a_history_page_as_one_page_and_one_row(watcher):
    subscription = await database_sync_to_async(make_subscription)()
    page = await _connect("/ws/history/?event=burst")
    await watcher.tick()
    made = await database_sync_to_async(_send_named)(
        subscription, "Burst", count=PAGE_SIZE + 5
    )
    assert await watcher.tick() is True
    html = await page.receive_from(timeout=2)
    assert html.count('class="history-row"') == PAGE_SIZE + 1
    assert html.startswith(f'<tr id="history-row-{made[-1].pk}"')
    assert f'id="history-row-{made[4].pk}"' in html
    assert f'id="history-row-{made[3].pk}"' not in html
    await page.disconnect()


async def test_a_history_page_with_filters_that_do_not_parse_hears_nothing(watcher):
    subscription = await database_sync_to_async(make_subscription)()
    page = await _connect("/ws/history/?status=abc")
    await watcher.tick()
    await database_sync_to_async(_send_named)(subscription, "Anything")
    assert await watcher.tick() is False
    assert await page.receive_nothing(timeout=0.3)
    await page.disconnect()


def test_one_history_group_per_set_of_filters():
    same = history_topic("type=track&event=Order&before=12&q=")
    assert same == history_topic("event=Order&type=track")
    assert same.group == history_topic("event=Order&type=track&before=3").group
    assert same.group != history_topic("event=order&type=track").group
    assert history_topic("").group != Topic(FEED).group
    long = history_topic("event=" + "é" * 500)
    assert len(long.group) < 100
    assert re.fullmatch(r"[A-Za-z0-9._-]+", long.group)
