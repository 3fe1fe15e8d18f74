"""Checking an event against Segment's Spec, with specific, human problem messages."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sandbox.spec.constants import EVENT_TYPES, MAX_EVENT_BYTES, MAX_MESSAGE_ID_LENGTH
from sandbox.spec.json_text import member_size, value_problem
from sandbox.spec.normalisation import NormalisedEvent
from sandbox.spec.timestamps import is_iso_shaped, parse_go_time, parse_timestamp

NOT_AN_OBJECT = "An event must be a JSON object, not {kind}."
MISSING_TYPE = "The event has no type. Use one of " + ", ".join(EVENT_TYPES) + "."
UNKNOWN_TYPE = "Unknown type {value!r}. Use one of " + ", ".join(EVENT_TYPES) + "."
MISSING_IDENTITY = (
    "The event has neither a userId nor an anonymousId. Segment needs at least one "
    "to know who the event is about."
)
MISSING_EVENT_NAME = (
    "A track needs an event: a non-empty string naming the action, "
    'such as "Order Completed".'
)
MISSING_PREVIOUS_ID = (
    "An alias needs a previousId: the old id being merged into userId."
)
MISSING_ALIAS_USER_ID = "An alias needs a userId: the new id that previousId becomes."
MISSING_GROUP_ID = "A group needs a groupId: the id of the account the user belongs to."
MISSING_DELETE_USER_ID = "A delete needs the userId whose data must be deleted."
TOO_LARGE = (
    "The event is {size_kb:.1f} KB ({size:,} bytes); Segment accepts at most "
    "{limit_kb} KB ({limit:,} bytes) per event."
)
MESSAGE_ID_TOO_LONG = (
    "messageId is {length} characters long; Segment accepts at most {limit}."
)
WRONG_TYPE = "{path} must be {expected}, not {kind}."
OFF_THE_CALENDAR = (
    "{path} is {value}, which falls outside the calendar in UTC (years 0001 to "
    "9999). Use a date inside it."
)
CORRECTION_OFF_THE_CALENDAR = (
    "sentAt and the event's time are too far apart: Segment's correction "
    "timestamp = receivedAt - (sentAt - originalTimestamp) would fall outside the "
    "calendar (years 0001 to 9999). Bring sentAt closer to the event's time."
)
BAD_TIMESTAMP = (
    "{path} is not an ISO-8601 date: {value}. Use a form like 2025-01-31T12:00:00.000Z."
)
NOT_JSON = "The event cannot travel as JSON: {reason}."
NUMERIC_ID = (
    "{path} is the number {value}, not a string. Segment accepts it and delivers it "
    "as it came (analytics-python and analytics-node send a numeric {path} as it "
    "is), but the Spec types {path} as a string, so an endpoint that expects one "
    "may trip over a number."
)

ERROR = "error"
WARNING = "warning"

AN_OBJECT = "an object"
A_STRING = "a string"
A_NUMBER = "a number"
NUMBER_OR_STRING = "a number or a string"
# groupId and previousId: the Spec says string; Segment and the SDKs take numbers.
STRING_OR_NUMBER = "a string or a number"
OBJECT_ARRAY_OR_NULL = "an object, an empty array or null"
A_DATE_STRING = "an ISO-8601 date string"

TIMESTAMP_FIELDS = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")
# Which optional top-level fields each call carries, and the JSON type they must have.
_TYPED_FIELDS = {
    "identify": {"traits": AN_OBJECT},
    "track": {"event": A_STRING, "properties": AN_OBJECT},
    "page": {"name": A_STRING, "category": A_STRING, "properties": AN_OBJECT},
    "screen": {"name": A_STRING, "category": A_STRING, "properties": AN_OBJECT},
    "group": {"groupId": STRING_OR_NUMBER, "traits": AN_OBJECT},
    "alias": {"previousId": STRING_OR_NUMBER},
    "delete": {},
}
_COMMON_FIELDS = {
    "userId": A_STRING,
    "anonymousId": A_STRING,
    "messageId": A_STRING,
    "channel": A_STRING,
    "context": AN_OBJECT,
    "integrations": AN_OBJECT,
}
# The Spec's reserved track properties; destinations count on these types.
_RESERVED_PROPERTIES = {"revenue": A_NUMBER, "value": A_NUMBER, "currency": A_STRING}
# Ids the SDKs pass on as numbers: Segment accepts them, with a warning here.
_NUMERIC_IDS = {"group": "groupId", "alias": "previousId"}


def _expected_types(event_type: str | None) -> dict[str, str]:
    expected = dict(_COMMON_FIELDS)
    expected["version"] = NUMBER_OR_STRING
    if event_type == "delete":
        # Segment's delete messages carry context and integrations as [] or null.
        expected.update(context=OBJECT_ARRAY_OR_NULL, integrations=OBJECT_ARRAY_OR_NULL)
    if event_type is not None:
        expected.update(_TYPED_FIELDS[event_type])
    return expected


# Built once: validate_event runs for every event enqueued, bulk doors included.
_EXPECTED_TYPES = {
    event_type: _expected_types(event_type) for event_type in (*EVENT_TYPES, None)
}


@dataclass(frozen=True)
class Problem:
    code: str  # stable and machine-readable, e.g. "no_identity"
    message: str  # one of this module's message constants, filled in
    path: str = ""  # where in the event, e.g. "properties.revenue"; "" for all of it
    # ERROR: Segment's API would not take the event as it is (sendable only after
    # confirming). WARNING: Segment takes it, but an endpoint may trip over it.
    severity: str = ERROR


def validate_event(
    payload: object, *, sent: bytes | None = None, sent_size: int | None = None
) -> list[Problem]:
    """List what stops payload from being a Spec-valid event; [] when it is one.

    Lenient where real SDKs are: nulls, "+00:00" offsets, a string version, a
    top-level channel, numeric groupId and previousId (see event_warnings) and
    unknown extra fields are all fine. The size is what the client sent (see
    event_size), so an event checked before and after normalise() gets the
    same answer. `sent`, when the caller has it, is what the client sent as
    encoded_or_problem encodes it, so it is not encoded again to be measured;
    or `sent_size`, its length, when the caller measured it another way.
    """
    if not isinstance(payload, dict):
        return [Problem("not_an_object", NOT_AN_OBJECT.format(kind=json_kind(payload)))]
    problems: list[Problem] = []
    event_type = payload.get("type")
    if event_type is None:
        problems.append(Problem("no_type", MISSING_TYPE, "type"))
    elif not isinstance(event_type, str):
        problems.append(_wrong_type("type", A_STRING, event_type))
    elif event_type not in EVENT_TYPES:
        problems.append(
            Problem("unknown_type", UNKNOWN_TYPE.format(value=event_type), "type")
        )
    known_type = event_type if event_type in EVENT_TYPES else None
    problems += _field_types(payload, known_type)
    problems += _required_fields(payload, known_type)
    problems += _timestamps(payload, known_type)
    problems += _message_id(payload)
    problems += _size(payload, sent, sent_size)
    return problems


def json_kind(value: object) -> str:
    """Name a value's JSON type the way a message reads: "an array", "a number"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return A_NUMBER
    if isinstance(value, str):
        return A_STRING
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return AN_OBJECT
    return f"a {type(value).__name__}"


def _wrong_type(path: str, expected: str, value: object) -> Problem:
    message = WRONG_TYPE.format(path=path, expected=expected, kind=json_kind(value))
    return Problem("wrong_type", message, path)


def _has_type(value: object, expected: str) -> bool:
    if expected == AN_OBJECT:
        return isinstance(value, dict)
    if expected == A_STRING:
        return isinstance(value, str)
    if expected == A_NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected in (NUMBER_OR_STRING, STRING_OR_NUMBER):
        return isinstance(value, str) or _has_type(value, A_NUMBER)
    if expected == OBJECT_ARRAY_OR_NULL:
        return value is None or value == [] or isinstance(value, dict)
    raise AssertionError(expected)


def event_warnings(payload: object) -> list[Problem]:
    """What Segment accepts in an event but a partner's endpoint may trip over.

    Kept apart from validate_event, whose every problem stops a send until the
    user confirms: a warning never does.
    """
    if not isinstance(payload, dict):
        return []
    event_type = payload.get("type")
    name = _NUMERIC_IDS.get(event_type) if isinstance(event_type, str) else None
    value = payload.get(name) if name else None
    if not _has_type(value, A_NUMBER):
        return []
    message = NUMERIC_ID.format(path=name, value=json.dumps(value))
    return [Problem("numeric_id", message, name, WARNING)]


def event_size(
    event: object, *, sent: bytes | None = None, sent_size: int | None = None
) -> int:
    """Bytes the event counts against Segment's 32 KB limit.

    What the client sent for it (for a normalised event, the event before
    normalise() added Segment's fields), as compact UTF-8 JSON, without a
    top-level sentAt: the server libraries send sentAt once per batch, outside
    the event, and measure each event without it, as Segment's per-event limit
    in a batch does. Raises ValueError for what JSON cannot carry (NaN,
    infinity) and RecursionError for absurd nesting. `sent` is that encoding,
    when the caller has made it already (json_text.encoded_or_problem), and
    `sent_size` its length.
    """
    if isinstance(event, NormalisedEvent):
        event = event.as_sent
    if sent_size is not None:
        size = sent_size
    elif sent is not None:
        size = len(sent)
    else:
        size = len(
            json.dumps(
                event,
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
                default=str,
            ).encode("utf-8")
        )
    if isinstance(event, dict) and "sentAt" in event:
        # Its "name":value, and the comma that joined it.
        size -= member_size("sentAt", event["sentAt"], default=str) + (len(event) > 1)
    return size


def _field_types(payload: dict, event_type: str | None) -> list[Problem]:
    problems = [
        _wrong_type(name, expected, payload[name])
        for name, expected in _EXPECTED_TYPES[event_type].items()
        # null is accepted anywhere: analytics-python sends the fields it lacks as null.
        if payload.get(name) is not None and not _has_type(payload[name], expected)
    ]
    properties = payload.get("properties")
    if event_type == "track" and isinstance(properties, dict):
        problems += [
            _wrong_type(f"properties.{name}", expected, properties[name])
            for name, expected in _RESERVED_PROPERTIES.items()
            if properties.get(name) is not None
            and not _has_type(properties[name], expected)
        ]
    return problems


def _present(payload: dict, name: str) -> bool:
    # A wrongly typed value is reported as a wrong type, not as missing.
    value = payload.get(name)
    return value is not None and not (isinstance(value, str) and not value.strip())


def _required_fields(payload: dict, event_type: str | None) -> list[Problem]:
    if event_type == "alias":
        problems = []
        if not _present(payload, "previousId"):
            problems.append(
                Problem("no_previous_id", MISSING_PREVIOUS_ID, "previousId")
            )
        if not _present(payload, "userId"):
            problems.append(Problem("no_user_id", MISSING_ALIAS_USER_ID, "userId"))
        return problems
    if event_type == "delete":
        if _present(payload, "userId"):
            return []
        return [Problem("no_user_id", MISSING_DELETE_USER_ID, "userId")]
    problems = []
    if not (_present(payload, "userId") or _present(payload, "anonymousId")):
        problems.append(Problem("no_identity", MISSING_IDENTITY))
    if event_type == "track" and not _present(payload, "event"):
        problems.append(Problem("no_event", MISSING_EVENT_NAME, "event"))
    if event_type == "group" and not _present(payload, "groupId"):
        problems.append(Problem("no_group_id", MISSING_GROUP_ID, "groupId"))
    return problems


def _timestamps(payload: dict, event_type: str | None) -> list[Problem]:
    problems = []
    parsed: dict[str, datetime] = {}
    for name in TIMESTAMP_FIELDS:
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(_wrong_type(name, A_DATE_STRING, value))
            continue
        moment = parse_timestamp(value)
        if moment is not None:
            parsed[name] = moment
            continue
        # Segment itself sends Go's time.String() as a delete's originalTimestamp.
        if (
            event_type == "delete"
            and name == "originalTimestamp"
            and parse_go_time(value)
        ):
            continue
        shown = json.dumps(value if len(value) <= 60 else value[:57] + "...")
        template = OFF_THE_CALENDAR if is_iso_shaped(value) else BAD_TIMESTAMP
        problems.append(
            Problem("bad_timestamp", template.format(path=name, value=shown), name)
        )
    if event_type != "delete" and not problems:
        problems += _correction(payload, parsed)
    return problems


def _correction(payload: dict, parsed: dict[str, datetime]) -> list[Problem]:
    """Whether Segment's skew correction of the event's time stays on the calendar.

    parsed holds the event's timestamps, every one present having parsed.
    """
    # A manually set timestamp is the client time when there is no originalTimestamp.
    has_original = payload.get("originalTimestamp") is not None
    original = parsed.get("originalTimestamp" if has_original else "timestamp")
    sent = parsed.get("sentAt")
    if original is None or sent is None:
        return []
    received = parsed.get("receivedAt") or datetime.now(UTC)
    try:
        received - (sent - original)
    except OverflowError:
        return [
            Problem("timestamp_out_of_range", CORRECTION_OFF_THE_CALENDAR, "sentAt")
        ]
    return []


def _message_id(payload: dict) -> list[Problem]:
    message_id = payload.get("messageId")
    if isinstance(message_id, str) and len(message_id) > MAX_MESSAGE_ID_LENGTH:
        message = MESSAGE_ID_TOO_LONG.format(
            length=len(message_id), limit=MAX_MESSAGE_ID_LENGTH
        )
        return [Problem("message_id_too_long", message, "messageId")]
    return []


def _size(payload: dict, sent: bytes | None, sent_size: int | None) -> list[Problem]:
    try:
        size = event_size(payload, sent=sent, sent_size=sent_size)
    except (ValueError, RecursionError) as error:
        reason = value_problem(payload) or str(error) or type(error).__name__
        return [Problem("not_json", NOT_JSON.format(reason=reason))]
    if size <= MAX_EVENT_BYTES:
        return []
    message = TOO_LARGE.format(
        size_kb=size / 1024,
        size=size,
        limit_kb=MAX_EVENT_BYTES // 1024,
        limit=MAX_EVENT_BYTES,
    )
    return [Problem("too_large", message)]
