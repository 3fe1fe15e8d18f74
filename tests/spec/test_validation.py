"""Tests for validate_event: each Spec problem's exact message, and real SDK quirks."""

import json
import random
from datetime import UTC, datetime

import pytest

from sandbox.spec import (
    Problem,
    event_size,
    event_warnings,
    json_size,
    normalise,
    sample_event,
    validate_event,
)
from sandbox.spec.json_text import NOT_A_NUMBER
from sandbox.spec.validation import (
    BAD_TIMESTAMP,
    MESSAGE_ID_TOO_LONG,
    MISSING_ALIAS_USER_ID,
    MISSING_DELETE_USER_ID,
    MISSING_EVENT_NAME,
    MISSING_GROUP_ID,
    MISSING_IDENTITY,
    MISSING_PREVIOUS_ID,
    MISSING_TYPE,
    NOT_AN_OBJECT,
    NOT_JSON,
    NUMERIC_ID,
    TOO_LARGE,
    UNKNOWN_TYPE,
    WRONG_TYPE,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
GO_TIME = "2020-05-09 23:54:49.209808489 +0000 UTC m=+70366.298768264"


def track(**fields):
    event = {
        "type": "track",
        "event": "Order Completed",
        "userId": "user-1",
        "properties": {"revenue": 12.5},
    }
    event.update(fields)
    return {name: value for name, value in event.items() if value is not ...}


def test_validate_event_accepts_a_minimal_track():
    assert validate_event(track()) == []


@pytest.mark.parametrize(
    ("payload", "kind"),
    [([], "an array"), ("track", "a string"), (3, "a number"), (None, "null")],
)
def test_validate_event_rejects_what_is_not_an_object(payload, kind):
    assert validate_event(payload) == [
        Problem("not_an_object", NOT_AN_OBJECT.format(kind=kind))
    ]


def test_validate_event_not_an_object_message_reads_well():
    assert NOT_AN_OBJECT.format(kind="an array") == (
        "An event must be a JSON object, not an array."
    )


def test_validate_event_rejects_an_unknown_type():
    assert validate_event(track(type="foo")) == [
        Problem("unknown_type", UNKNOWN_TYPE.format(value="foo"), "type")
    ]
    assert UNKNOWN_TYPE.format(value="foo") == (
        "Unknown type 'foo'. Use one of identify, track, page, screen, group, "
        "alias, delete."
    )


def test_validate_event_rejects_a_missing_type():
    assert validate_event(track(type=...)) == [Problem("no_type", MISSING_TYPE, "type")]


def test_validate_event_rejects_a_type_that_is_not_a_string():
    assert validate_event(track(type=7)) == [
        Problem(
            "wrong_type",
            WRONG_TYPE.format(path="type", expected="a string", kind="a number"),
            "type",
        )
    ]


@pytest.mark.parametrize("event_type", ["identify", "track", "page", "screen", "group"])
def test_validate_event_needs_a_user_id_or_anonymous_id(event_type):
    event = {"type": event_type, "event": "Signed In", "groupId": "g1"}
    assert validate_event(event) == [Problem("no_identity", MISSING_IDENTITY)]


def test_validate_event_counts_empty_ids_as_missing():
    event = track(userId="", anonymousId="  ")
    assert validate_event(event) == [Problem("no_identity", MISSING_IDENTITY)]


def test_validate_event_accepts_an_anonymous_id_alone():
    assert validate_event(track(userId=..., anonymousId="anon-1")) == []


def test_validate_event_needs_an_event_name_on_track():
    expected = [Problem("no_event", MISSING_EVENT_NAME, "event")]
    assert validate_event(track(event=...)) == expected
    assert validate_event(track(event="")) == expected
    assert validate_event(track(event=None)) == expected


def test_validate_event_needs_previous_id_and_user_id_on_alias():
    assert validate_event({"type": "alias", "userId": "new"}) == [
        Problem("no_previous_id", MISSING_PREVIOUS_ID, "previousId")
    ]
    assert validate_event(
        {"type": "alias", "previousId": "old", "anonymousId": "a"}
    ) == [Problem("no_user_id", MISSING_ALIAS_USER_ID, "userId")]
    assert validate_event({"type": "alias", "previousId": "old", "userId": "new"}) == []


def test_validate_event_needs_a_group_id_on_group():
    assert validate_event({"type": "group", "userId": "u1", "traits": {}}) == [
        Problem("no_group_id", MISSING_GROUP_ID, "groupId")
    ]


def test_validate_event_needs_a_user_id_on_delete():
    assert validate_event({"type": "delete", "anonymousId": "a1"}) == [
        Problem("no_user_id", MISSING_DELETE_USER_ID, "userId")
    ]


def test_validate_event_rejects_an_event_over_32_kb():
    event = track(properties={"notes": "x" * 41_000})
    size = len(json.dumps(event, separators=(",", ":")))
    assert size == 41_086
    assert validate_event(event) == [
        Problem(
            "too_large",
            TOO_LARGE.format(size_kb=size / 1024, size=size, limit_kb=32, limit=32768),
        )
    ]
    assert TOO_LARGE.format(
        size_kb=size / 1024, size=size, limit_kb=32, limit=32768
    ) == (
        "The event is 40.1 KB (41,086 bytes); Segment accepts at most 32 KB "
        "(32,768 bytes) per event."
    )


def test_validate_event_counts_size_in_utf8_bytes():
    # 11,000 three-byte characters: 33,000 bytes though only 11,000 characters.
    problems = validate_event(track(properties={"notes": "€" * 11_000}))
    assert [problem.code for problem in problems] == ["too_large"]


def test_validate_event_accepts_an_event_of_exactly_32_kb():
    padding = 32 * 1024 - len(
        json.dumps(track(properties={"n": ""}), separators=(",", ":"))
    )
    event = track(properties={"n": "x" * padding})
    assert json_size(event) == 32 * 1024
    assert validate_event(event) == []
    event["properties"]["n"] += "x"
    assert [problem.code for problem in validate_event(event)] == ["too_large"]


def test_validate_event_rejects_a_message_id_over_100_characters():
    assert validate_event(track(messageId="m" * 101)) == [
        Problem(
            "message_id_too_long",
            MESSAGE_ID_TOO_LONG.format(length=101, limit=100),
            "messageId",
        )
    ]
    assert MESSAGE_ID_TOO_LONG.format(length=101, limit=100) == (
        "messageId is 101 characters long; Segment accepts at most 100."
    )
    assert validate_event(track(messageId="m" * 100)) == []


def test_validate_event_rejects_a_message_id_that_is_not_a_string():
    assert validate_event(track(messageId=12345)) == [
        Problem(
            "wrong_type",
            WRONG_TYPE.format(path="messageId", expected="a string", kind="a number"),
            "messageId",
        )
    ]


def test_validate_event_rejects_properties_as_a_list():
    assert validate_event(track(properties=[1, 2])) == [
        Problem(
            "wrong_type", "properties must be an object, not an array.", "properties"
        )
    ]


def test_validate_event_rejects_a_numeric_user_id():
    assert validate_event(track(userId=42)) == [
        Problem("wrong_type", "userId must be a string, not a number.", "userId")
    ]


@pytest.mark.parametrize(
    ("fields", "path", "expected", "kind"),
    [
        ({"traits": "vip"}, "traits", "an object", "a string"),
        ({"context": []}, "context", "an object", "an array"),
        ({"integrations": True}, "integrations", "an object", "a boolean"),
        ({"anonymousId": 7}, "anonymousId", "a string", "a number"),
        ({"channel": 1}, "channel", "a string", "a number"),
        ({"version": {}}, "version", "a number or a string", "an object"),
        ({"version": True}, "version", "a number or a string", "a boolean"),
        ({"sentAt": 1717243200000}, "sentAt", "an ISO-8601 date string", "a number"),
    ],
)
def test_validate_event_names_the_wrong_type(fields, path, expected, kind):
    event = {"type": "identify", "userId": "u1"} | fields
    assert validate_event(event) == [
        Problem(
            "wrong_type",
            WRONG_TYPE.format(path=path, expected=expected, kind=kind),
            path,
        )
    ]


def test_validate_event_checks_page_and_screen_names():
    event = {"type": "page", "userId": "u1", "name": 3, "category": None}
    assert validate_event(event) == [
        Problem("wrong_type", "name must be a string, not a number.", "name")
    ]


def test_validate_event_checks_reserved_track_properties():
    event = track(properties={"revenue": "12.99", "currency": "USD", "value": None})
    assert validate_event(event) == [
        Problem(
            "wrong_type",
            "properties.revenue must be a number, not a string.",
            "properties.revenue",
        )
    ]


def test_validate_event_rejects_an_unparseable_timestamp():
    assert validate_event(track(timestamp="yesterday")) == [
        Problem(
            "bad_timestamp",
            BAD_TIMESTAMP.format(path="timestamp", value='"yesterday"'),
            "timestamp",
        )
    ]
    assert BAD_TIMESTAMP.format(path="timestamp", value='"yesterday"') == (
        'timestamp is not an ISO-8601 date: "yesterday". '
        "Use a form like 2025-01-31T12:00:00.000Z."
    )


def test_validate_event_rejects_go_time_outside_a_delete():
    codes = [p.code for p in validate_event(track(originalTimestamp=GO_TIME))]
    assert codes == ["bad_timestamp"]


def test_validate_event_reports_several_problems_at_once():
    problems = validate_event(
        {"type": "track", "properties": [], "messageId": "m" * 200}
    )
    assert [problem.code for problem in problems] == [
        "wrong_type",
        "no_identity",
        "no_event",
        "message_id_too_long",
    ]


def test_validate_event_accepts_what_analytics_python_sends():
    event = {
        "type": "track",
        "event": "Order Completed",
        "userId": "97980cfea0067",
        "anonymousId": None,
        "properties": {"revenue": 25},
        "context": {"library": {"name": "analytics-python", "version": "2.3.4"}},
        "integrations": {},
        "timestamp": "2025-01-01T00:00:00.123000+00:00",
        "sentAt": "2025-01-01T00:00:00.456789+00:00",
        "messageId": "0f5f4b5c-7a88-4f4a-9a5e-1b6d0f2ad8a1",
    }
    assert validate_event(event) == []


def test_validate_event_accepts_nulls_in_optional_fields():
    event = {
        "type": "page",
        "anonymousId": "a1",
        "userId": None,
        "name": None,
        "category": None,
        "properties": None,
        "context": None,
        "integrations": None,
        "messageId": None,
        "channel": None,
        "version": None,
        "timestamp": None,
        "sentAt": None,
    }
    assert validate_event(event) == []


def test_validate_event_accepts_version_as_number_or_string_and_a_channel():
    assert validate_event(track(version="1.1", channel="client")) == []
    assert validate_event(track(version=2, channel="server")) == []


def test_validate_event_accepts_unknown_top_level_fields():
    event = track(
        _metadata={"bundled": ["Segment.io"], "unbundled": []},
        writeKey="wk_123",
        projectId="P0OJ3CTID1",
        options={"integrations": {}},
    )
    assert validate_event(event) == []


@pytest.mark.parametrize("empty", [[], None])
def test_validate_event_accepts_segments_delete_shapes(empty):
    event = {
        "type": "delete",
        "channel": "server",
        "userId": "507f191e81",
        "context": empty,
        "integrations": empty,
        "messageId": "delete-reg-6543321::job-2-P0OJ3CTID1",
        "projectId": "P0OJ3CTID1",
        "timestamp": "2020-05-09T23:54:49.209Z",
        "receivedAt": "2020-05-09T23:54:49.209Z",
        "sentAt": "2020-05-09T17:49:00.000Z",
        "originalTimestamp": GO_TIME,
    }
    assert validate_event(event) == []


def test_validate_event_accepts_the_minimal_webhooks_delete():
    event = {"type": "delete", "userId": "u1", "timestamp": "2020-05-09T23:54:49.209Z"}
    assert validate_event(event) == []


def test_validate_event_rejects_a_non_empty_array_context_on_delete():
    event = {"type": "delete", "userId": "u1", "context": ["x"]}
    assert validate_event(event) == [
        Problem(
            "wrong_type",
            "context must be an object, an empty array or null, not an array.",
            "context",
        )
    ]


def test_validate_event_accepts_every_sample():
    for seed in range(3):
        for event_type in ("identify", "track", "delete"):
            event = sample_event(event_type, now=NOW, rng=random.Random(seed))
            assert validate_event(event) == []


def test_validate_event_accepts_a_numeric_group_id_with_a_warning():
    # analytics-python's group() and classic analytics-node send it as a number.
    event = {"type": "group", "userId": "u1", "groupId": 999, "traits": {}}
    assert validate_event(event) == []
    message = NUMERIC_ID.format(path="groupId", value="999")
    assert event_warnings(event) == [
        Problem("numeric_id", message, "groupId", "warning")
    ]
    assert message == (
        "groupId is the number 999, not a string. Segment accepts it and delivers "
        "it as it came (analytics-python and analytics-node send a numeric groupId "
        "as it is), but the Spec types groupId as a string, so an endpoint that "
        "expects one may trip over a number."
    )


def test_validate_event_accepts_a_numeric_previous_id_with_a_warning():
    # Both SDKs turn a numeric userId into a string, but not previousId.
    event = {"type": "alias", "userId": "u1", "previousId": 111}
    assert validate_event(event) == []
    assert event_warnings(event) == [
        Problem(
            "numeric_id",
            NUMERIC_ID.format(path="previousId", value="111"),
            "previousId",
            "warning",
        )
    ]
    assert event_warnings(event | {"previousId": 1.5})[0].message.startswith(
        "previousId is the number 1.5, not a string."
    )


@pytest.mark.parametrize(
    ("event", "path", "kind"),
    [
        ({"type": "group", "userId": "u", "groupId": True}, "groupId", "a boolean"),
        ({"type": "group", "userId": "u", "groupId": {}}, "groupId", "an object"),
        ({"type": "alias", "userId": "u", "previousId": [1]}, "previousId", "an array"),
    ],
)
def test_validate_event_refuses_an_id_that_is_neither_string_nor_number(
    event, path, kind
):
    assert validate_event(event) == [
        Problem(
            "wrong_type",
            WRONG_TYPE.format(path=path, expected="a string or a number", kind=kind),
            path,
        )
    ]
    assert event_warnings(event) == []


@pytest.mark.parametrize(
    "event",
    [
        {"type": "group", "userId": "u1", "groupId": "g1"},
        {"type": "alias", "userId": "u1", "previousId": "old"},
        {"type": "track", "userId": "u1", "event": "E", "groupId": 5},
        {"type": ["group"], "groupId": 5},
        {"type": "group", "groupId": None},
        "not an event",
    ],
)
def test_event_warnings_has_nothing_to_say_about_the_rest(event):
    assert event_warnings(event) == []


def test_validate_event_still_refuses_a_numeric_user_id_or_anonymous_id():
    # The SDKs turn these into strings before sending, so a number is a mistake.
    codes = [p.code for p in validate_event(track(userId=..., anonymousId=7))]
    assert codes == ["wrong_type"]


def _at_the_limit() -> dict:
    """A track of exactly 32 KB of compact JSON."""
    event = track(properties={"n": ""})
    event["properties"]["n"] = "x" * (32 * 1024 - json_size(event))
    assert json_size(event) == 32 * 1024
    return event


def test_validate_event_measures_what_the_client_sent_not_what_segment_adds():
    event = _at_the_limit()
    normalised = normalise(event, now=NOW)
    # messageId, receivedAt, originalTimestamp, timestamp, projectId, channel and
    # version add some 190 bytes on the way; Segment counts what it received.
    assert json_size(normalised) > 32 * 1024 + 150
    assert event_size(normalised) == event_size(event) == 32 * 1024
    assert validate_event(normalised) == validate_event(event) == []
    event["properties"]["n"] += "x"
    refused = [
        Problem(
            "too_large",
            TOO_LARGE.format(
                size_kb=32_769 / 1024, size=32_769, limit_kb=32, limit=32768
            ),
        )
    ]
    assert validate_event(event) == refused
    assert validate_event(normalise(event, now=NOW)) == refused
    assert validate_event(normalise(event, now=NOW, fresh=True)) == refused


def test_validate_event_does_not_count_a_sent_at_against_the_limit():
    # The server libraries send sentAt once per batch and measure each event
    # without it; Segment's API applies it to each event of the batch.
    event = _at_the_limit() | {"sentAt": "2025-06-01T11:59:59.123456+00:00"}
    assert json_size(event) == 32 * 1024 + len(
        ',"sentAt":"2025-06-01T11:59:59.123456+00:00"'
    )
    assert event_size(event) == 32 * 1024
    assert validate_event(event) == []
    assert validate_event(normalise(event, now=NOW)) == []


def test_event_size_leaves_out_only_a_top_level_sent_at():
    assert event_size({"sentAt": "2025-01-01T00:00:00.000Z"}) == len("{}")
    assert event_size({"a": 1, "sentAt": None}) == len('{"a":1}')
    assert event_size({"sentAt": "é", "a": "é"}) == len('{"a":"é"}'.encode())
    nested = {"properties": {"sentAt": "x"}}
    assert event_size(nested) == json_size(nested)


@pytest.mark.parametrize(
    ("value", "token"),
    [(float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf")],
)
def test_validate_event_refuses_what_json_has_no_number_for(value, token):
    # Built in code rather than parsed, where no door's parser has refused it.
    event = track(properties={"prices": [1.0, {"price": value}]})
    reason = NOT_A_NUMBER.format(token=token)
    assert validate_event(event) == [
        Problem("not_json", NOT_JSON.format(reason=reason))
    ]
    assert validate_event(normalise(event, now=NOW)) == validate_event(event)
    assert NOT_JSON.format(reason=reason).startswith(
        f"The event cannot travel as JSON: {token} is not a JSON number (JSON has "
        "no NaN or Infinity); use null or a finite number."
    )
