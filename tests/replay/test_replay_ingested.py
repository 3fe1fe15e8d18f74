"""Replaying what the sandbox's sources received from SDKs, and past deliveries
chosen by the source they came in through, from the replay page."""

import re

import pytest
from django.urls import reverse

from sandbox.delivery.models import Delivery
from sandbox.replay.models import Replay
from sandbox.sources import services, spool
from sandbox.sources.models import IngestedEvent
from tests.factories import ingest_batch, make_subscription
from tests.replay.helpers import EngineThread, wait_until


@pytest.fixture(autouse=True)
def _own_spool(settings, tmp_path):
    settings.SOURCES_SPOOL_PATH = tmp_path / "spool.sqlite3"
    yield
    spool.disconnect()


def _track(name: str, number: int, **fields) -> dict:
    return {
        "type": "track",
        "event": name,
        "userId": f"user-{number}",
        "messageId": f"{name}-{number}",
        "timestamp": "2024-05-06T07:08:09.000Z",
        **fields,
    }


def _replay(client, **fields) -> Replay:
    response = client.post(reverse("replay:start"), {"concurrency": "5", **fields})
    assert response.status_code == 302, response.content.decode()[:2000]
    replay = Replay.objects.latest("pk")
    wait_until(lambda: Replay.objects.get(pk=replay.pk).fed_at is not None)
    return Replay.objects.get(pk=replay.pk)


@pytest.fixture
def received():
    """Two sources feeding one subscription: Web sent three "Order Completed"
    and an identify, App two "Order Completed"; a batch to an unknown write key
    was dropped."""
    old = make_subscription(name="Old", endpoint_url="http://127.0.0.1:9/old")
    web, _ = services.source_save(name="Web", subscriptions=[old], write_key="web")
    app, _ = services.source_save(name="App", subscriptions=[old], write_key="app")
    ingest_batch(
        "web",
        [_track("Order Completed", n) for n in range(3)]
        + [{"type": "identify", "userId": "u", "messageId": "web-identify"}],
    )
    ingest_batch("app", [_track("Order Completed", n) for n in range(10, 12)])
    ingest_batch("nobody", [_track("Order Completed", 99)])
    assert IngestedEvent.objects.filter(status="accepted").count() == 6
    return web, app


@pytest.mark.django_db(transaction=True)
def test_events_a_source_received_are_replayed_as_they_were_forwarded(
    client, receiver, received
):
    web, _ = received
    new = make_subscription(name="New", endpoint_url=receiver.url("/ok"))
    with EngineThread():
        replay = _replay(
            client,
            source="ingested",
            subscription=new.pk,
            from_source=web.pk,
            event_type="track",
        )
        wait_until(lambda: len(receiver.received) == 3)
    assert replay.source == Replay.Source.INGESTED
    assert replay.source_label == "ingested events"
    assert replay.events_read == 3 and replay.unit == "event"
    forwarded = {
        e.message_id: e.payload
        for e in IngestedEvent.objects.filter(source=web, event_type="track")
    }
    bodies = {r.json["messageId"]: r.json for r in receiver.received}
    assert set(bodies) == set(forwarded) == {f"Order Completed-{n}" for n in range(3)}
    for message_id, body in bodies.items():
        # The event as the source forwarded it (enriched as Segment enriches
        # it: receivedAt, projectId...), its timestamp kept.
        assert body == forwarded[message_id]
        assert body["timestamp"] == "2024-05-06T07:08:09.000Z"
        assert "receivedAt" in body
    page = client.get(reverse("replay:detail", args=[replay.pk])).content.decode()
    assert "ingested events" in page


@pytest.mark.django_db(transaction=True)
def test_the_filters_choose_among_received_events_and_past_deliveries(client, received):
    _, app = received
    target = make_subscription(name="Target", endpoint_url="http://127.0.0.1:9/t")
    old = Delivery.objects.filter(subscription__name="Old")
    assert old.count() == 6
    by_subscription = _replay(
        client,
        source="ingested",
        subscription=target.pk,
        from_subscription=old.first().subscription_id,
        event_name="Order Completed",
    )
    from_app = _replay(
        client, source="history", subscription=target.pk, from_source=app.pk
    )
    # The page's date pickers send times as "2099-01-01T00:00" (UTC).
    none_yet = _replay(
        client, source="ingested", subscription=target.pk, since="2099-01-01T00:00"
    )
    all_since = _replay(
        client, source="ingested", subscription=target.pk, since="2000-01-01T00:00"
    )
    for replay, expected in (
        (by_subscription, 5),
        (from_app, 2),
        (none_yet, 0),
        (all_since, 6),
    ):
        ids = Delivery.objects.filter(run_id=replay.run_id).values_list(
            "message_id", flat=True
        )
        assert len(ids) == expected, replay
    assert sorted(
        Delivery.objects.filter(run_id=from_app.run_id).values_list(
            "message_id", flat=True
        )
    ) == ["Order Completed-10", "Order Completed-11"]
    assert from_app.source == Replay.Source.HISTORY
    # Each replay's page says what its filters chose.
    for replay, said in (
        (from_app, "Past deliveries: came in through App ("),
        (
            by_subscription,
            "The events the sandbox's sources received: event name "
            "“Order Completed”, delivered to Old (",
        ),
        (all_since, "received: from 2000-01-01 00:00 UTC ("),
    ):
        page = client.get(reverse("replay:detail", args=[replay.pk]))
        assert said in page.content.decode()
    hostile = _replay(
        client,
        source="history",
        subscription=target.pk,
        event_name="<script>alert(1)</script>",
    )
    page = client.get(reverse("replay:detail", args=[hostile.pk])).content.decode()
    assert "event name “&lt;script&gt;alert(1)&lt;/script&gt;”" in page


@pytest.mark.django_db
def test_the_form_offers_received_events_and_the_sources(client, received):
    page = client.get(reverse("replay:list")).content.decode()
    assert 'value="ingested"' in page and "Events your sources received" in page
    assert 'name="from_source"' in page
    assert page.count('type="datetime-local"') == 2
    assert ">Web</option>" in page and ">App</option>" in page


@pytest.mark.django_db
def test_a_sources_page_links_to_a_replay_of_what_it_received(client, received):
    web, _ = received
    page = client.get(reverse("sources:detail", args=[web.pk])).content.decode()
    link = f"/replays/?source=ingested&amp;from_source={web.pk}"
    assert f'href="{link}">Replay what it received</a>' in page
    form = client.get(link.replace("&amp;", "&")).content.decode()
    [radio] = re.findall(r'<input type="radio"[^>]*value="ingested"[^>]*>', form)
    assert " checked" in radio
    assert f'<option value="{web.pk}" selected>Web</option>' in form
    assert '<details class="field" data-history-filters open>' in form
    for query in ("source=file&from_source=x", "from_source=99999999999999999999999"):
        plain = client.get(f"/replays/?{query}")
        assert plain.status_code == 200
        assert (
            " selected>"
            not in plain.content.decode().split("replay-from_source")[1][:300]
        )
