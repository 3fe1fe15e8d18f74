"""Sources and the expansion of stored tracking API requests, on the real
database: what each event becomes, and that one bad row never stops the others."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from sandbox.delivery.models import Delivery, Door
from sandbox.sources import selectors, services, spool, tracking
from sandbox.sources.models import IngestedEvent, Source
from sandbox.subscriptions.models import Subscription
from tests.factories import make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_spool(settings, tmp_path):
    settings.SOURCES_SPOOL_PATH = tmp_path / "spool.sqlite3"
    yield
    spool.disconnect()


def _store(body: dict | str, *, endpoint: str = "batch", write_key="wk", **fields):
    services.ingest_requests_store(
        requests=[
            services.ArrivedRequest(
                endpoint=endpoint,
                write_key=write_key,
                body=body if isinstance(body, str) else json.dumps(body),
                refusal=fields.get("refusal", ""),
                client_ip=fields.get("client_ip", "127.0.0.1"),
                user_agent="test",
                received_at=fields.get("received_at", timezone.now()),
            )
        ]
    )


def _expand_all() -> None:
    while services.ingest_requests_expand():
        pass


def _events() -> list[IngestedEvent]:
    return list(IngestedEvent.objects.order_by("id"))


def _source(*subscriptions: Subscription, write_key: str = "wk") -> Source:
    source, _ = services.source_save(
        name=f"Source {write_key}", subscriptions=subscriptions, write_key=write_key
    )
    return source


def _track(n: int, **fields) -> dict:
    return {"type": "track", "event": "E", "userId": f"u{n}", **fields}


def test_source_save_creates_then_updates_by_name():
    first = make_subscription(name="One")
    second = make_subscription(name="Two")
    source, created = services.source_save(name="Web", subscriptions=[first])
    assert created
    assert len(source.write_key) == 32
    key = source.write_key
    source, created = services.source_save(name="Web", subscriptions=[first, second])
    assert not created
    assert source.write_key == key
    assert {s.name for s in source.subscriptions.all()} == {"One", "Two"}
    source, _ = services.source_save(name="Web", subscriptions=[], write_key="new")
    assert source.write_key == "new"
    assert list(source.subscriptions.all()) == []


def test_source_save_refuses_a_taken_write_key_and_blank_values():
    services.source_save(name="A", subscriptions=[], write_key="same")
    with pytest.raises(ValidationError):
        services.source_save(name="B", subscriptions=[], write_key="same")
    with pytest.raises(ValidationError):
        services.source_save(name="C", subscriptions=[], write_key=" ")
    with pytest.raises(ValidationError):
        services.source_save(name=" ", subscriptions=[])


def test_expand_enriches_forwards_and_links_each_event():
    subscription = make_subscription()
    source = _source(subscription)
    _store(
        {
            "writeKey": "wk",
            "sentAt": "2026-01-01T00:00:10.000Z",
            "context": {"library": {"name": "analytics.js", "version": "next-1"}},
            "batch": [_track(1, timestamp="2026-01-01T00:00:00.000Z", messageId="m1")],
        },
        client_ip="10.1.2.3",
    )
    _expand_all()
    assert services.ingest_requests_waiting() == 0
    [event] = _events()
    assert (event.source, event.status, event.reason) == (source, "accepted", "")
    assert event.library == "analytics.js"
    payload = event.payload
    assert payload["messageId"] == "m1"
    assert payload["context"]["ip"] == "10.1.2.3"
    assert payload["originalTimestamp"] == "2026-01-01T00:00:00.000Z"
    assert payload["projectId"] == source.project_id
    assert payload["channel"] == "client"
    [delivery] = selectors.ingested_event_deliveries(event=event)
    assert delivery.door == Door.SOURCE
    assert delivery.payload == payload
    assert delivery.subscription == subscription


def test_expand_drops_a_repeated_message_id_on_the_source_only():
    subscription = make_subscription()
    _source(subscription, write_key="one")
    _source(subscription, write_key="two")
    event = _track(1, messageId="same")
    _store({"batch": [event, event]}, write_key="one")
    _store({"batch": [event]}, write_key="one")
    _store({"batch": [event]}, write_key="two")
    _expand_all()
    statuses = [(e.write_key, e.status) for e in _events()]
    assert statuses == [
        ("one", "accepted"),
        ("one", "dropped"),
        ("one", "dropped"),
        ("two", "accepted"),
    ]
    assert _events()[1].reason.startswith("Duplicate messageId 'same'")


def test_expand_forgets_a_message_id_after_the_sources_window():
    subscription = make_subscription(dedupe_enabled=False)
    _source(subscription)
    event = _track(1, messageId="again")
    _store({"batch": [event]}, received_at=timezone.now() - timedelta(hours=25))
    _store({"batch": [event]})
    _expand_all()
    assert [e.status for e in _events()] == ["accepted", "accepted"]


def test_expand_records_an_unknown_write_key_as_dropped():
    _store({"batch": [_track(1), _track(2)]}, write_key="nobody")
    _expand_all()
    events = _events()
    assert [e.status for e in events] == ["dropped", "dropped"]
    assert all(e.source is None for e in events)
    assert events[0].reason == services.UNKNOWN_WRITE_KEY.format(masked="••••••••")
    assert Delivery.objects.count() == 0


def test_expand_shows_a_door_refusal_as_one_dropped_event():
    _source(make_subscription())
    _store("{broken", endpoint="track", refusal="Invalid JSON at line 1")
    _expand_all()
    [event] = _events()
    assert (event.status, event.reason, event.payload) == (
        "dropped",
        "Invalid JSON at line 1",
        "{broken",
    )


def test_expand_drops_every_event_of_a_batch_over_2500():
    _source(make_subscription())
    _store({"batch": [_track(n) for n in range(2_501)]})
    _expand_all()
    assert IngestedEvent.objects.filter(status="dropped").count() == 2_501
    assert Delivery.objects.count() == 0


def test_expand_says_when_no_subscription_is_enabled():
    _source(make_subscription(enabled=False))
    _store({"batch": [_track(1)]})
    _expand_all()
    [event] = _events()
    assert (event.status, event.reason) == ("accepted", services.NO_SUBSCRIPTION)


def test_a_subscription_the_pipeline_refuses_does_not_stop_the_others():
    broken = make_subscription(name="Broken")
    # Settings no form would save: the pipeline refuses to send with them.
    Subscription.objects.filter(pk=broken.pk).update(custom_settings={"apiKey": "x"})
    working = make_subscription(name="Working")
    _source(broken, working)
    _store({"batch": [_track(1), _track(2)]})
    _expand_all()
    events = _events()
    assert [e.status for e in events] == ["accepted", "accepted"]
    for event in events:
        assert event.reason.startswith("Not forwarded to 'Broken'")
        [delivery] = selectors.ingested_event_deliveries(event=event)
        assert delivery.subscription == working


def test_a_batch_of_2500_to_two_subscriptions_is_enqueued_in_one_expansion():
    first, second = make_subscription(name="A"), make_subscription(name="B")
    _source(first, second)
    _store({"batch": [_track(n) for n in range(tracking.MAX_BATCH_EVENTS)]})
    assert services.ingest_requests_expand() == 1
    assert services.ingest_requests_waiting() == 0
    deliveries = Delivery.objects.all()
    assert deliveries.count() == 5_000
    assert set(deliveries.values_list("created_at", flat=True).distinct()) == {
        deliveries.first().created_at
    }


def test_small_requests_are_expanded_together():
    _source(make_subscription())
    for n in range(5):
        _store(_track(n, writeKey="wk"), endpoint="track")
    assert services.ingest_requests_expand() == 5
    assert [e.event_type for e in _events()] == ["track"] * 5


def test_ingested_event_list_is_newest_first_per_source():
    source = _source(make_subscription())
    _store({"batch": [_track(n) for n in range(3)]})
    _store({"batch": [_track(9)]}, write_key="nobody")
    _expand_all()
    listed = selectors.ingested_event_list(source=source)
    assert [e.user_id for e in listed] == ["u2", "u1", "u0"]
    assert [e.user_id for e in selectors.ingested_event_list(source=None)] == ["u9"]
    older = selectors.ingested_event_list(source=source, before_id=listed[0].pk)
    assert [e.user_id for e in older] == ["u1", "u0"]
    assert selectors.ingested_event_latest(source=source).user_id == "u2"


def test_a_request_that_cannot_be_expanded_is_dropped_and_the_others_go_on():
    _source(make_subscription())
    _store({"batch": [_track(1)]})
    # A stored row no door would write: its arrival time is unreadable.
    spool.append(
        spool.connection(),
        [("batch", "wk", json.dumps({"batch": [_track(2)]}), "", "", "", "soon")],
    )
    _store({"batch": [_track(3)]})
    while services.ingest_requests_expand_pass():
        pass
    assert services.ingest_requests_waiting() == 0
    events = _events()
    assert [(e.user_id, e.status) for e in events] == [
        ("u1", "accepted"),
        ("", "dropped"),
        ("u3", "accepted"),
    ]
    assert events[1].reason.startswith("The sandbox could not read this request")


def test_a_request_already_expanded_before_a_crash_is_not_expanded_again():
    _source(make_subscription())
    _store({"batch": [_track(1)]})
    _expand_all()
    [event] = _events()
    # The process died after its commit, before the spool let the request go.
    spool.connection().execute(
        "INSERT INTO request (id, endpoint, write_key, body, refusal, client_ip, "
        "user_agent, received_at) VALUES (?, 'batch', 'wk', ?, '', '', '', ?)",
        (event.request_number, json.dumps({"batch": [_track(1)]}), "2026-01-01"),
    )
    assert services.ingest_requests_waiting() == 1
    _expand_all()
    assert services.ingest_requests_waiting() == 0
    assert _events() == [event]
    assert Delivery.objects.count() == 1


def test_a_new_spool_numbers_requests_after_those_already_stored(settings, tmp_path):
    _source(make_subscription())
    _store({"batch": [_track(1)]})
    _expand_all()
    [first] = _events()
    settings.SOURCES_SPOOL_PATH = tmp_path / "a-new-spool.sqlite3"
    _store({"batch": [_track(2)]})
    _expand_all()
    assert _events()[1].request_number > first.request_number
