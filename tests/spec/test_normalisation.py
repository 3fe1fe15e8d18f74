"""Tests for normalise: messageId and the four timestamps as Segment sets them."""

import copy
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.spec import format_timestamp, normalise, parse_timestamp
from sandbox.spec.timestamps import format_go_time

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def event(**fields):
    base = {"type": "track", "event": "Signed In", "userId": "u1", "properties": {}}
    return base | fields


def test_normalise_keeps_an_existing_message_id():
    result = normalise(event(messageId="keep-me"), now=NOW)
    assert result["messageId"] == "keep-me"


def test_normalise_generates_a_missing_message_id():
    result = normalise(event(), now=NOW)
    assert len(result["messageId"]) == 36
    assert normalise(event(), now=NOW)["messageId"] != result["messageId"]


def test_normalise_replaces_a_message_id_that_is_not_a_string():
    result = normalise(event(messageId=42), now=NOW, new_message_id=lambda: "fresh")
    assert result["messageId"] == "fresh"


def test_normalise_fresh_always_generates_a_new_message_id():
    result = normalise(
        event(messageId="old"), now=NOW, fresh=True, new_message_id=lambda: "new"
    )
    assert result["messageId"] == "new"


def test_normalise_sets_received_at_to_now():
    result = normalise(event(receivedAt="2019-01-01T00:00:00.000Z"), now=NOW)
    assert result["receivedAt"] == "2025-06-01T12:00:00.000Z"


def test_normalise_corrects_a_two_second_clock_skew():
    # The device clock is 2 s ahead: it says it sent at 12:00:02.500, Segment got it
    # at 12:00:00.500, and the event happened 300 ms before the send.
    skewed = event(
        originalTimestamp="2025-06-01T12:00:02.200Z", sentAt="2025-06-01T12:00:02.500Z"
    )
    result = normalise(skewed, now=NOW + timedelta(milliseconds=500))
    assert result["timestamp"] == "2025-06-01T12:00:00.200Z"
    assert result["originalTimestamp"] == "2025-06-01T12:00:02.200Z"
    assert result["sentAt"] == "2025-06-01T12:00:02.500Z"
    assert result["receivedAt"] == "2025-06-01T12:00:00.500Z"


def test_normalise_applies_the_formula_across_offsets_and_microseconds():
    python_event = event(
        timestamp="2025-06-01T11:59:59.000000+00:00",
        sentAt="2025-06-01T13:59:59.250000+02:00",
    )
    result = normalise(python_event, now=NOW)
    assert result["timestamp"] == "2025-06-01T11:59:59.750Z"


def test_normalise_turns_a_manual_timestamp_into_original_timestamp():
    historical = event(timestamp="2024-01-01T00:00:00.000Z")
    result = normalise(historical, now=NOW)
    assert result["originalTimestamp"] == "2024-01-01T00:00:00.000Z"
    assert result["timestamp"] == "2024-01-01T00:00:00.000Z"


def test_normalise_recomputes_a_manual_timestamp_when_sent_at_is_given():
    historical = event(
        timestamp="2024-01-01T00:00:00.000Z", sentAt="2025-06-01T11:59:59.000Z"
    )
    result = normalise(historical, now=NOW)
    assert result["originalTimestamp"] == "2024-01-01T00:00:00.000Z"
    assert result["timestamp"] == "2024-01-01T00:00:01.000Z"


def test_normalise_without_sent_at_applies_no_correction():
    result = normalise(event(originalTimestamp="2025-06-01T11:00:00.000Z"), now=NOW)
    assert result["timestamp"] == "2025-06-01T11:00:00.000Z"
    assert "sentAt" not in result


def test_normalise_without_any_time_uses_now():
    result = normalise(event(), now=NOW)
    assert result["originalTimestamp"] == "2025-06-01T12:00:00.000Z"
    assert result["timestamp"] == "2025-06-01T12:00:00.000Z"


def test_normalise_ignores_sent_at_when_there_was_no_client_time():
    result = normalise(event(sentAt="2025-06-01T11:59:58.000Z"), now=NOW)
    assert result["timestamp"] == "2025-06-01T12:00:00.000Z"


def test_normalise_fresh_rebases_times_on_now_keeping_the_send_delay():
    old = event(
        messageId="old",
        originalTimestamp="2024-03-01T08:00:00.000Z",
        sentAt="2024-03-01T08:00:00.400Z",
        receivedAt="2024-03-01T08:00:00.600Z",
        timestamp="2024-03-01T08:00:00.200Z",
    )
    result = normalise(old, now=NOW, fresh=True)
    assert result["originalTimestamp"] == "2025-06-01T11:59:59.600Z"
    assert result["sentAt"] == "2025-06-01T12:00:00.000Z"
    assert result["receivedAt"] == "2025-06-01T12:00:00.000Z"
    assert result["timestamp"] == "2025-06-01T11:59:59.600Z"
    times = {name: parse_timestamp(result[name]) for name in ("timestamp", "sentAt")}
    assert times["timestamp"] == parse_timestamp(result["receivedAt"]) - (
        times["sentAt"] - parse_timestamp(result["originalTimestamp"])
    )


def test_normalise_fresh_without_sent_at_uses_now():
    result = normalise(
        event(originalTimestamp="2024-03-01T08:00:00.000Z"), now=NOW, fresh=True
    )
    assert result["originalTimestamp"] == format_timestamp(NOW)
    assert result["timestamp"] == format_timestamp(NOW)
    assert "sentAt" not in result


def test_normalise_does_not_mutate_its_input():
    original = event(
        messageId="m1",
        originalTimestamp="2025-06-01T11:00:00.000Z",
        sentAt="2025-06-01T11:00:01.000Z",
        context={"library": {"name": "analytics.js"}},
    )
    snapshot = copy.deepcopy(original)
    result = normalise(original, now=NOW, fresh=True)
    assert original == snapshot
    assert result is not original


def test_normalise_passes_everything_else_through():
    original = event(
        context={"ip": "1.2.3.4"}, integrations={"All": True}, _metadata={}, foo=[1]
    )
    result = normalise(original, now=NOW)
    for name in ("type", "event", "userId", "properties", "context", "integrations"):
        assert result[name] == original[name]
    assert result["_metadata"] == {}
    assert result["foo"] == [1]
    assert set(result) - set(original) == {
        "messageId",
        "receivedAt",
        "originalTimestamp",
        "timestamp",
    }


@pytest.mark.parametrize("garbage", [None, [], "event", 42])
def test_normalise_returns_non_objects_untouched(garbage):
    assert normalise(garbage, now=NOW) == garbage


def test_normalise_leaves_unparseable_timestamps_alone():
    broken = event(originalTimestamp="not a time", sentAt=12, timestamp="later")
    result = normalise(broken, now=NOW)
    assert result["originalTimestamp"] == "not a time"
    assert result["sentAt"] == 12
    assert result["timestamp"] == "later"
    assert result["receivedAt"] == format_timestamp(NOW)


def test_normalise_fresh_leaves_a_broken_original_timestamp_alone():
    result = normalise(event(originalTimestamp="soon"), now=NOW, fresh=True)
    assert result["originalTimestamp"] == "soon"
    assert result["timestamp"] == format_timestamp(NOW)


def test_normalise_reads_a_naive_now_as_utc():
    result = normalise(event(), now=NOW.replace(tzinfo=None))
    assert result["receivedAt"] == "2025-06-01T12:00:00.000Z"


DELETE = {
    "type": "delete",
    "channel": "server",
    "userId": "507f191e81",
    "context": [],
    "integrations": None,
    "messageId": "delete-reg-6543321::job-2-P0OJ3CTID1",
    "projectId": "P0OJ3CTID1",
    "timestamp": "2020-05-09T23:54:49.209Z",
    "receivedAt": "2020-05-09T23:54:49.209Z",
    "sentAt": "2020-05-09T17:49:00.000Z",
    "originalTimestamp": "2020-05-09 23:54:49.209808489 +0000 UTC m=+70366.298768264",
}


def test_normalise_delete_keeps_its_shape_and_skips_the_skew_correction():
    result = normalise(DELETE, now=NOW)
    assert result["context"] == []
    assert result["integrations"] is None
    assert result["messageId"] == DELETE["messageId"]
    assert result["originalTimestamp"] == DELETE["originalTimestamp"]
    assert result["sentAt"] == DELETE["sentAt"]
    assert result["timestamp"] == result["receivedAt"] == format_timestamp(NOW)


def test_normalise_fresh_delete_keeps_go_time_and_the_request_lead():
    result = normalise(DELETE, now=NOW, fresh=True)
    assert result["messageId"].startswith("delete-")
    assert result["messageId"] != DELETE["messageId"]
    assert result["originalTimestamp"] == format_go_time(NOW)
    lead = timedelta(hours=6, minutes=5, seconds=49, microseconds=209808)
    assert result["sentAt"] == format_timestamp(NOW - lead)
    assert result["timestamp"] == format_timestamp(NOW)
