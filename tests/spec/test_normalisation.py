"""Tests for normalise: what Segment's pipeline adds to an event on its way."""

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.spec import format_timestamp, normalise, parse_timestamp
from sandbox.spec.constants import SANDBOX_PROJECT_ID
from sandbox.spec.normalisation import NormalisedEvent
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
        "projectId",
        "channel",
        "version",
    }


def test_normalise_adds_what_segments_pipeline_adds():
    result = normalise(event(), now=NOW, new_message_id=lambda: "m1")
    assert result == {
        "type": "track",
        "event": "Signed In",
        "userId": "u1",
        "properties": {},
        "messageId": "m1",
        "receivedAt": "2025-06-01T12:00:00.000Z",
        "originalTimestamp": "2025-06-01T12:00:00.000Z",
        "timestamp": "2025-06-01T12:00:00.000Z",
        "projectId": SANDBOX_PROJECT_ID,
        "channel": "server",
        "version": 2,
    }


def test_normalise_keeps_project_id_channel_and_version_as_sent():
    sent = event(projectId="P0OJ3CTID1", channel="browser", version="1.1")
    result = normalise(sent, now=NOW)
    assert (result["projectId"], result["channel"], result["version"]) == (
        "P0OJ3CTID1",
        "browser",
        "1.1",
    )
    # Sent as null is sent too: the user may be testing an endpoint with it.
    nulls = normalise(event(projectId=None, channel=None, version=None), now=NOW)
    assert [nulls[name] for name in ("projectId", "channel", "version")] == [None] * 3


def test_normalise_takes_a_project_id_for_the_source():
    assert normalise(event(), now=NOW, project_id="Src42")["projectId"] == "Src42"


@pytest.mark.parametrize(
    ("library", "channel"),
    [
        ({"name": "analytics.js", "version": "npm:next-1.84.1"}, "client"),
        ({"name": "analytics-swift", "version": "1.7.3"}, "mobile"),
        ({"name": "analytics-kotlin", "version": "1.19.2"}, "mobile"),
        ({"name": "analytics-python", "version": "2.4.0"}, "server"),
        ({"name": "@segment/analytics-node", "version": "3.1.0"}, "server"),
        ({"name": ["not", "a", "name"]}, "server"),
        ("analytics.js", "server"),
        (None, "server"),
    ],
)
def test_normalise_gives_the_channel_of_the_sending_library(library, channel):
    sent = event(context={"library": library})
    assert normalise(sent, now=NOW)["channel"] == channel


def test_normalise_gives_a_channel_to_an_event_without_context():
    assert normalise(event(context=[1]), now=NOW)["channel"] == "server"


def test_normalise_remembers_what_was_sent():
    sent = event(sentAt="2025-06-01T11:59:59.000Z")
    for fresh in (False, True):
        result = normalise(sent, now=NOW, fresh=fresh)
        assert isinstance(result, NormalisedEvent)
        assert result.as_sent is sent
        # Stored and sent, it is a plain JSON object.
        assert json.loads(json.dumps(result)) == dict(result)


def test_normalise_keeps_numeric_ids_as_sent():
    group = {"type": "group", "userId": "u1", "groupId": 999, "traits": {}}
    alias = {"type": "alias", "userId": "u1", "previousId": 111}
    assert normalise(group, now=NOW)["groupId"] == 999
    assert normalise(alias, now=NOW)["previousId"] == 111


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


def test_normalise_delete_gets_a_project_id_and_channel_but_no_version():
    minimal = {"type": "delete", "userId": "u1"}
    result = normalise(minimal, now=NOW)
    assert result["projectId"] == SANDBOX_PROJECT_ID
    assert result["channel"] == "server"
    assert "version" not in result
    # Segment's own delete messages keep theirs.
    assert normalise(DELETE, now=NOW)["projectId"] == "P0OJ3CTID1"


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
