"""segment-analytics-python, pointed at a real sandbox server, reaches a real
receiver through a source, as it would reach a partner through Segment."""

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from segment.analytics import Client

from sandbox.spec import parse_timestamp
from tests.sources.conftest import (
    RECEIVER_API_KEY,
    RECEIVER_SETTINGS,
    SDK_WRITE_KEY,
    ingested,
    received_by_user,
    wait_for,
)

pytestmark = pytest.mark.slow

SEGMENT_HEADERS = {
    "Accept": "*/*",
    "Authorization": "Basic "
    + base64.b64encode(f"{RECEIVER_API_KEY}:".encode()).decode(),
    "Cache-Control": "no-cache",
    "Content-Type": "application/json",
    "User-Agent": "Segment.io/1.0",
    "X-Segment-Settings": base64.b64encode(
        json.dumps(RECEIVER_SETTINGS, separators=(",", ":")).encode()
    ).decode(),
}


def _client(live, **options) -> Client:
    errors = []
    client = Client(
        SDK_WRITE_KEY,
        host=live.url,
        on_error=lambda error, batch: errors.append(error),
        upload_interval=0.05,
        max_retries=0,
        **options,
    )
    client.errors = errors
    return client


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_python_sdk_calls_reach_the_receiver_enriched(live, live_receiver, gzip):
    user = f"py-{uuid.uuid4()}"
    happened = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    client = _client(live, gzip=gzip)
    sent = [
        client.identify(user, {"email": "ada@example.com"})[1],
        client.track(user, "Order Completed", {"revenue": 9.5}, timestamp=happened)[1],
        client.page(user, "Docs", "Pricing", {"path": "/pricing"})[1],
        client.screen(user, "App", "Home")[1],
        client.group(user, "acme", {"name": "Acme"})[1],
        client.alias(f"{user}-old", user)[1],
    ]
    client.flush()
    client.join()
    assert client.errors == []

    arrived = wait_for(lambda: len(received_by_user(live_receiver, user)) == 6)
    assert arrived, received_by_user(live_receiver, user)
    by_id = {r.json["messageId"]: r for r in received_by_user(live_receiver, user)}
    # messageId kept, every call delivered once, in its own request.
    assert set(by_id) == {message["messageId"] for message in sent}
    for message in sent:
        request = by_id[message["messageId"]]
        event = request.json
        for name, value in SEGMENT_HEADERS.items():
            assert request.header(name) == value, name
        assert event["type"] == message["type"]
        assert "writeKey" not in event
        assert event["context"]["library"]["name"] == "analytics-python"
        # A server library's events get no IP.
        assert "ip" not in event["context"]
        assert event["channel"] == "server"
        received = parse_timestamp(event["receivedAt"])
        original = parse_timestamp(event["originalTimestamp"])
        sent_at = parse_timestamp(event["sentAt"])
        # receivedAt is shown to the millisecond, truncated, as Segment shows it.
        corrected = received - (sent_at - original)
        assert abs(parse_timestamp(event["timestamp"]) - corrected) <= _ONE_MS
    track = next(r.json for r in by_id.values() if r.json["type"] == "track")
    # The manually set timestamp is kept as originalTimestamp, and the
    # corrected timestamp stays on that day (the server clock is trusted).
    assert parse_timestamp(track["originalTimestamp"]) == happened
    assert track["timestamp"].startswith("2025-03-01T12:00:0")
    assert track["properties"] == {"revenue": 9.5}

    rows = ingested(live, "e.user_id = ? OR e.anonymous_id = ?", user, user)
    assert [status for status, _, _ in rows] == ["accepted"] * 6


_ONE_MS = timedelta(milliseconds=1)


def test_python_sdk_sync_mode_sends_each_call_alone(live, live_receiver):
    user = f"py-sync-{uuid.uuid4()}"
    client = _client(live, sync_mode=True)
    _, message = client.track(user, "Signed Up", {"plan": "pro"})
    assert client.errors == []
    [request] = wait_for(lambda: received_by_user(live_receiver, user))
    assert request.json["messageId"] == message["messageId"]
    assert request.json["event"] == "Signed Up"


def test_python_sdk_repeated_message_id_is_dropped_as_duplicate(live, live_receiver):
    user = f"py-dupe-{uuid.uuid4()}"
    message_id = f"dupe-{uuid.uuid4()}"
    client = _client(live, sync_mode=True)
    client.track(user, "Once", message_id=message_id)
    client.track(user, "Once", message_id=message_id)
    assert wait_for(lambda: len(ingested(live, "e.user_id = ?", user)) == 2, timeout=20)
    first, second = ingested(live, "e.user_id = ?", user)
    assert first[0] == "accepted"
    assert second[0] == "dropped"
    assert second[1].startswith(f"Duplicate messageId '{message_id}'")
    # The first is delivered after it is stored; the duplicate never is.
    assert wait_for(lambda: received_by_user(live_receiver, user), timeout=20)
    time.sleep(0.5)
    assert len(received_by_user(live_receiver, user)) == 1
