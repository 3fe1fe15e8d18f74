"""Variations of an event: the same event as other SDKs and customers shape it.

Segment tells partners that field casing varies by customer, and the real
libraries differ in what they send (segment-reference.md). A suite run "with
variations" sends, after each step, that step's event in each of these shapes
and reports where the endpoint answered a variant differently from the event
it came from. Section numbers below are those of segment-reference.md.
"""

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any

from sandbox.spec.catalogue import new_uuid
from sandbox.spec.constants import BROWSER_LIBRARIES, TRACKING_API_VERSION
from sandbox.spec.sources import (
    epoch_ms,
    javascript_json,
    library_sent_at,
    library_timestamp,
    md5_hex,
)
from sandbox.spec.timestamps import (
    as_utc,
    format_timestamp,
    parse_go_time,
    parse_timestamp,
)

Event = dict[str, Any]
Apply = Callable[[Event, random.Random], Event | None]

# What differences() says, one sentence per way a variant was handled differently.
ANSWERED_INSTEAD = "answered {variant} instead of {original}"
NO_ANSWER_INSTEAD = "got no answer instead of {original}"
OUTCOME_INSTEAD = "{variant} instead of {original}"
SAID_INSTEAD = 'said "{variant}" instead of "{original}"'
NO_ANSWER = "no answer"


@dataclass(frozen=True)
class Variation:
    """A named, reproducible change to an event.

    apply returns a new event and never touches its input, or None when the
    variation does not apply to that event (a delete's context on a track) or
    would leave it as it is.
    """

    name: str
    description: str  # one line, for the user
    apply: Apply
    # A variation about the messageId sets its own; every other variant gets a
    # fresh one from variants_of, so Segment's dedupe doesn't drop it as a repeat.
    sets_message_id: bool = False


def variants_of(event: Event, *, seed: int) -> list[tuple[str, Event]]:
    """Every variation that applies to event, in VARIATIONS order, as
    (name, variant) pairs. The same event and seed give the same variants.

    Each variant's messageId is new (but for the messageId variations, which
    make their own) and differs from every other step's variants too. A run
    repeated with the same seed makes the same ids, which dedupe drops within
    its window: give each run its own seed.
    """
    if not isinstance(event, dict):
        return []
    # The event is in each stream's seed, so two steps' variants never share ids.
    digest = md5_hex(_json_text(event))
    variants = []
    for variation in VARIATIONS.values():
        # One stream per variation: adding a variation changes no other's variant.
        rng = random.Random(f"{seed}:{digest}:{variation.name}")
        variant = variation.apply(event, rng)
        if variant is None:
            continue
        if not variation.sets_message_id:
            variant["messageId"] = _fresh_message_id(event, rng)
        variants.append((variation.name, variant))
    return variants


def differences(original_result: dict, variant_result: dict) -> list[str]:
    """How a variant's step result differs from the original's, as sentences;
    [] when the endpoint handled both the same.

    A result is {"status": int | None, "outcome": "green" | "yellow" | "red",
    "message": str}; status None means no HTTP answer (a timeout, a refused
    connection, a function that threw).
    """
    original_status = original_result.get("status")
    status = variant_result.get("status")
    original_outcome = original_result.get("outcome")
    outcome = variant_result.get("outcome")
    original_message = (original_result.get("message") or "").strip()
    message = (variant_result.get("message") or "").strip()
    sentences = []
    if status != original_status:
        original = NO_ANSWER if original_status is None else original_status
        if status is None:
            sentence = NO_ANSWER_INSTEAD.format(original=original)
        else:
            sentence = ANSWERED_INSTEAD.format(variant=status, original=original)
        sentences.append(_with_reason(sentence, message))
    if outcome != original_outcome:
        sentence = OUTCOME_INSTEAD.format(variant=outcome, original=original_outcome)
        # The reason is said once, with the status when that differs too.
        sentences.append(sentence if sentences else _with_reason(sentence, message))
    elif not sentences and outcome != "green" and message != original_message:
        # Two failures of the same kind for different reasons. A success's
        # message is the body's text, which may echo ids that differ anyway.
        sentences.append(
            SAID_INSTEAD.format(variant=message, original=original_message)
        )
    return sentences


def _with_reason(sentence: str, message: str) -> str:
    return f"{sentence}: {message}" if message else sentence


# The transformations. Each gets its own copy of the event (_changed makes it).


def _changed(transform: Apply) -> Apply:
    """Give transform a copy of the event, and say None when it changed nothing."""

    @wraps(transform)
    def apply(event: Event, rng: random.Random) -> Event | None:
        if not isinstance(event, dict):
            return None
        # A JSON round trip: a deep copy that is a plain JSON object, whatever
        # dict subclass came in.
        variant = transform(json.loads(json.dumps(event)), rng)
        if variant is None or _json_text(variant) == _json_text(event):
            return None
        return variant

    return apply


def _json_text(value: object) -> str:
    # As JSON, 3 and 3.0 differ (Python's == says they are equal), and so do a
    # list and a null: exactly the differences some variations are about.
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _is_delete(event: Event) -> bool:
    return event.get("type") == "delete"


def _custom_objects(event: Event) -> list[dict]:
    """The objects a customer fills in: properties, traits and context.traits."""
    found = [event.get("properties"), event.get("traits")]
    context = event.get("context")
    if isinstance(context, dict):
        found.append(context.get("traits"))
    return [value for value in found if isinstance(value, dict)]


@_changed
def _python_nulls(event: Event, rng: random.Random) -> Event | None:
    """As analytics-python sends a call: the id the caller didn't give as null
    (anonymousId null beside a userId), and a page's or screen's missing name and
    category as null. segment-reference.md §1.1 (notes: clean() keeps None), and
    the recorded analytics-python-2.4.0 payloads."""
    if _is_delete(event):
        return None
    if isinstance(event.get("userId"), str) and event["userId"]:
        event["anonymousId"] = None
    elif isinstance(event.get("anonymousId"), str) and event["anonymousId"]:
        event["userId"] = None
    if event.get("type") in ("page", "screen"):
        for name in ("name", "category"):
            event.setdefault(name, None)
    return event


_ISO_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z")


def _python_date(value: object) -> object:
    """A "Z" date as Python's isoformat() writes a datetime: "+00:00"."""
    if not isinstance(value, str) or not _ISO_Z.fullmatch(value):
        return value
    moment = parse_timestamp(value)
    return value if moment is None else as_utc(moment).isoformat()


def _python_dates(value: object) -> object:
    if isinstance(value, dict):
        return {key: _python_dates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_python_dates(item) for item in value]
    return _python_date(value)


@_changed
def _offset_plus_zero(event: Event, rng: random.Random) -> Event | None:
    """Times as analytics-python writes them: "+00:00" instead of "Z",
    milliseconds on the event's own time, microseconds on sentAt, and dates in
    traits and properties too (Segment's receivedAt and timestamp stay "Z").
    segment-reference.md §2 (input parsing warning) and the appendix, item 7."""
    if _is_delete(event):
        return None
    # The client's time; a delivered timestamp beside it is Segment's, in "Z".
    name = "originalTimestamp" if "originalTimestamp" in event else "timestamp"
    moment = _z_time(event.get(name))
    if moment is not None:
        event[name] = library_timestamp("server", moment)
    moment = _z_time(event.get("sentAt"))
    if moment is not None:
        event["sentAt"] = library_sent_at("server", moment)
    for custom in _custom_objects(event):
        custom.update(_python_dates(custom))
    return event


def _z_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not _ISO_Z.fullmatch(value):
        return None
    return parse_timestamp(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Beyond 2**53 a float can't hold every integer: 9007199254740993.0 is ...992.
_EXACT_IN_A_FLOAT = 2**53


def _floats(value: object) -> object:
    if isinstance(value, dict):
        return {key: _floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_floats(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value) if abs(value) <= _EXACT_IN_A_FLOAT else value
    return value


@_changed
def _integer_as_float(event: Event, rng: random.Random) -> Event | None:
    """Whole numbers in properties and traits written with a ".0" (19.0), as a
    Python caller's floats go out, where JavaScript writes 19.
    segment-reference.md §3 (revenue, price and the like are Numbers) and the
    recorded analytics-python-2.4.0 Order Completed ("shipping": 3.0)."""
    for custom in _custom_objects(event):
        custom.update(_floats(custom))
    return event


# Ids the SDKs pass on as numbers, by call.
_NUMERIC_ID_FIELDS = {"group": "groupId", "alias": "previousId"}


@_changed
def _numeric_ids(event: Event, rng: random.Random) -> Event | None:
    """A group's groupId or an alias's previousId as a JSON number, as every
    server library passes a numeric id on (a non-numeric id becomes a number
    drawn for the variant). segment-reference.md §1.1 (per-type fields) and the
    recorded payloads' groupId 999 and previousId 111."""
    name = _NUMERIC_ID_FIELDS.get(event.get("type"))
    value = event.get(name) if name else None
    if not isinstance(value, str):
        return None
    numeric = value.isascii() and value.isdigit() and str(int(value)) == value
    event[name] = int(value) if numeric else rng.randint(100, 999_999)
    return event


@_changed
def _version_as_string(event: Event, rng: random.Random) -> Event | None:
    """version as a string ("2") where Segment's examples also show a number.
    segment-reference.md §1.1 (version: "accept either")."""
    if _is_delete(event):
        return None
    version = event.get("version", TRACKING_API_VERSION)
    if not _is_number(version):
        return None
    event["version"] = str(version)
    return event


@_changed
def _channel_browser(event: Event, rng: random.Random) -> Event | None:
    """A browser event's channel as "browser", the value common.md lists, where
    Segment's delivered examples say "client". segment-reference.md §1.1
    (channel: observed values)."""
    channel = event.get("channel")
    context = event.get("context")
    library = context.get("library") if isinstance(context, dict) else None
    name = library.get("name") if isinstance(library, dict) else None
    if channel == "client" or (channel is None and name in BROWSER_LIBRARIES):
        event["channel"] = "browser"
        return event
    return None


# The Spec's reserved traits written in camelCase, and the snake_case a customer
# may send instead. address.postalCode is reserved inside address.
_RESERVED_CAMEL_TRAITS = ("createdAt", "firstName", "lastName")


def _rename(values: dict, old: str, new: str) -> None:
    # Keep the key's place, so the variant reads like the original.
    if old in values and new not in values:
        renamed = {(new if key == old else key): item for key, item in values.items()}
        values.clear()
        values.update(renamed)


@_changed
def _snake_case_traits(event: Event, rng: random.Random) -> Event | None:
    """The reserved traits in snake_case: first_name, last_name, created_at,
    address.postal_code. segment-reference.md §3 ("Reserved traits may be sent in
    camelCase or snake_case"; group traits are case-insensitive)."""
    context = event.get("context")
    for traits in (
        event.get("traits"),
        context.get("traits") if isinstance(context, dict) else None,
    ):
        if not isinstance(traits, dict):
            continue
        for camel in _RESERVED_CAMEL_TRAITS:
            _rename(traits, camel, _snake(camel))
        if isinstance(traits.get("address"), dict):
            _rename(traits["address"], "postalCode", "postal_code")
    return event


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _snake(key: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", key).lower()


def _camel(key: str) -> str:
    first, *rest = key.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _other_casing(key: str) -> str:
    """snake_case as camelCase and camelCase as snake_case; other keys stay."""
    if key.startswith("_"):
        return key
    if "_" in key:
        return _camel(key)
    if _CAMEL_BOUNDARY.search(key):
        return _snake(key)
    return key


def _recased(value: object) -> object:
    if isinstance(value, list):
        return [_recased(item) for item in value]
    if not isinstance(value, dict):
        return value
    recased: dict = {}
    for key, item in value.items():
        new = _other_casing(key)
        # Two keys that meet in one name both stay as they were.
        if new in value or new in recased:
            new = key
        recased[new] = _recased(item)
    return recased


@_changed
def _casing_of_keys(event: Event, rng: random.Random) -> Event | None:
    """Every property and trait name in the other convention: snake_case as
    camelCase (order_id → orderId) and camelCase as snake_case (firstName →
    first_name), nested objects too. segment-reference.md §6.3 ("Field casing
    varies by customer; accept any casing")."""
    for custom in _custom_objects(event):
        recased = _recased(custom)
        custom.clear()
        custom.update(recased)
    return event


@_changed
def _employees_as_string(event: Event, rng: random.Random) -> Event | None:
    """A group's traits.employees as a string ("329"), as the group doc types it,
    where every example sends a number. segment-reference.md §3 (group reserved
    traits)."""
    traits = event.get("traits")
    if event.get("type") != "group" or not isinstance(traits, dict):
        return None
    if not _is_number(traits.get("employees")):
        return None
    traits["employees"] = json.dumps(traits["employees"])
    return event


@_changed
def _missing_optional_context(event: Event, rng: random.Random) -> Event | None:
    """context with only context.library, as a server library sends it: no page,
    userAgent, device, locale, timezone, ip or traits. segment-reference.md §1.2
    (auto-collection: "Server libraries collect only context.library")."""
    context = event.get("context")
    if _is_delete(event) or not isinstance(context, dict):
        return None
    event["context"] = {key: context[key] for key in ("library",) if key in context}
    return event


@_changed
def _no_context(event: Event, rng: random.Random) -> Event | None:
    """No context at all, as a direct HTTP API caller may send an event.
    segment-reference.md §1.1 (context is optional) and §5."""
    if _is_delete(event) or "context" not in event:
        return None
    del event["context"]
    return event


@_changed
def _no_integrations(event: Event, rng: random.Random) -> Event | None:
    """No integrations object, as classic analytics-node sends an event unless
    the caller names some. segment-reference.md §1.1 (integrations is optional)
    and the recorded analytics-node-classic-6.2.0 payloads."""
    if _is_delete(event) or "integrations" not in event:
        return None
    del event["integrations"]
    return event


@_changed
def _page_properties_bare(event: Event, rng: random.Random) -> Event | None:
    """A page whose name and category are only at the top level, as a server
    library sends them, where analytics.js also copies them into properties.
    segment-reference.md §1.1 (notes: page as sent by analytics.js)."""
    properties = event.get("properties")
    if event.get("type") != "page" or not isinstance(properties, dict):
        return None
    for name in ("name", "category"):
        properties.pop(name, None)
    return event


def _delete_context(event: Event, value: list | None) -> Event | None:
    if not _is_delete(event):
        return None
    event["context"] = value
    event["integrations"] = None if value is None else list(value)
    return event


@_changed
def _delete_context_empty_list(event: Event, rng: random.Random) -> Event | None:
    """A delete whose context and integrations are empty arrays, as in the
    build-functions guide's example. segment-reference.md §8."""
    return _delete_context(event, [])


@_changed
def _delete_context_null(event: Event, rng: random.Random) -> Event | None:
    """A delete whose context and integrations are null, as in partners/spec.md's
    example. segment-reference.md §8."""
    return _delete_context(event, None)


@_changed
def _delete_original_timestamp_iso(event: Event, rng: random.Random) -> Event | None:
    """A delete whose originalTimestamp is ISO-8601, as in the build-functions
    guide's example, where partners/spec.md's has Go's time.String().
    segment-reference.md §8."""
    moment = parse_go_time(event.get("originalTimestamp"))
    if not _is_delete(event) or moment is None:
        return None
    event["originalTimestamp"] = format_timestamp(moment)
    return event


# messageIds. Formats from segment-reference.md §5.6 and §8, and sandbox.spec.sources.


def _uuid_pattern(hex_digit: str) -> str:
    return "-".join(f"{hex_digit}{{{n}}}" for n in (8, 4, 4, 4, 12))


_UUID = _uuid_pattern("[0-9a-fA-F]")
_LOWER_UUID = _uuid_pattern("[0-9a-f]")
_UPPER_UUID = _uuid_pattern("[0-9A-F]")
_ANY_UUID = re.compile(_UUID)
_DELETE_REGULATION = re.compile(r"delete-reg-(?P<regulation>\d+)(?P<job>::job-.*)")
_MD5 = re.compile(r"[0-9a-f]{32}")


def _uuid(rng: random.Random) -> str:
    return str(new_uuid(rng))


def _fresh_message_id(event: Event, rng: random.Random) -> str:
    """A new messageId in the form of the event's own: its UUIDs (or its
    regulation number, or its digest) drawn again from rng, in the same case."""
    old = event.get("messageId")
    if isinstance(old, str):
        if _ANY_UUID.search(old):
            return _ANY_UUID.sub(lambda found: _uuid_like(found[0], rng), old)
        match = _DELETE_REGULATION.fullmatch(old)
        if match:
            regulation = int(match["regulation"])
            while regulation == int(match["regulation"]):
                regulation = rng.randint(1_000_000, 9_999_999)
            return f"delete-reg-{regulation}{match['job']}"
        if _MD5.search(old):
            return _MD5.sub(lambda found: f"{rng.getrandbits(128):032x}", old)
    if _is_delete(event):
        return f"delete-{_uuid(rng)}"
    return _uuid(rng)


def _uuid_like(old: str, rng: random.Random) -> str:
    new = _uuid(rng)
    return new.upper() if old.isupper() else new


def _event_ms(event: Event) -> int | None:
    # The id's time is when the library made the event: its own time.
    original = event.get("originalTimestamp")
    moment = parse_timestamp(event.get("timestamp") if original is None else original)
    return None if moment is None else epoch_ms(moment)


def _without_id(event: Event) -> str:
    return javascript_json({k: v for k, v in event.items() if k != "messageId"})


def _ajs_next_id(event: Event, rng: random.Random) -> str | None:
    ms = _event_ms(event)
    return None if ms is None else f"ajs-next-{ms}-{_uuid(rng)}"


def _ajs_classic_id(event: Event, rng: random.Random) -> str | None:
    return f"ajs-{md5_hex(_without_id(event) + _uuid(rng))}"


def _swift_id(event: Event, rng: random.Random) -> str | None:
    return _uuid(rng).upper()


def _python_id(event: Event, rng: random.Random) -> str | None:
    return _uuid(rng)


def _node_next_id(event: Event, rng: random.Random) -> str | None:
    ms = _event_ms(event)
    return None if ms is None else f"node-next-{ms}-{_uuid(rng)}"


def _node_classic_id(event: Event, rng: random.Random) -> str | None:
    return f"node-{md5_hex(_without_id(event))}-{_uuid(rng)}"


def _delete_uuid_id(event: Event, rng: random.Random) -> str | None:
    return f"delete-{_uuid(rng)}"


@dataclass(frozen=True)
class _MessageIdForm:
    name: str
    description: str
    pattern: re.Pattern
    make: Callable[[Event, random.Random], str | None]
    for_delete: bool = False  # Segment makes a delete's id; libraries make the rest


_MESSAGE_ID_FORMS = (
    _MessageIdForm(
        "messageid-analytics.js",
        'messageId as analytics.js makes it: "ajs-next-<epoch ms>-<uuid>".',
        re.compile(rf"ajs-next-\d+-{_UUID}"),
        _ajs_next_id,
    ),
    _MessageIdForm(
        "messageid-analytics.js-classic",
        'messageId as classic analytics.js made it: "ajs-<md5>".',
        re.compile(r"ajs-[0-9a-f]{32}"),
        _ajs_classic_id,
    ),
    _MessageIdForm(
        "messageid-analytics-swift",
        "messageId as analytics-swift makes it: an upper-case UUID.",
        re.compile(_UPPER_UUID),
        _swift_id,
    ),
    _MessageIdForm(
        "messageid-analytics-python",
        "messageId as analytics-python and analytics-kotlin make it: a bare UUID.",
        re.compile(_LOWER_UUID),
        _python_id,
    ),
    _MessageIdForm(
        "messageid-analytics-node-next",
        'messageId as @segment/analytics-node makes it: "node-next-<epoch ms>-<uuid>".',
        re.compile(rf"node-next-\d+-{_UUID}"),
        _node_next_id,
    ),
    _MessageIdForm(
        "messageid-analytics-node-classic",
        'messageId as classic analytics-node makes it: "node-<md5>-<uuid>".',
        re.compile(rf"node-[0-9a-f]{{32}}-{_UUID}"),
        _node_classic_id,
    ),
    _MessageIdForm(
        "messageid-delete-uuid",
        "A delete's messageId as \"delete-<uuid>\", the build-functions guide's form.",
        re.compile(rf"delete-{_UUID}"),
        _delete_uuid_id,
        for_delete=True,
    ),
)


def _message_id_variation(form: _MessageIdForm) -> Apply:
    @_changed
    def apply(event: Event, rng: random.Random) -> Event | None:
        old = event.get("messageId")
        if _is_delete(event) != form.for_delete:
            return None
        if isinstance(old, str) and form.pattern.fullmatch(old):
            return None
        made = form.make(event, rng)
        if made is None:
            return None
        event["messageId"] = made
        return event

    section = "§8 (the delete's messageId)" if form.for_delete else "§5.6"
    apply.__doc__ = f"{form.description} segment-reference.md {section}."
    return apply


VARIATIONS: dict[str, Variation] = {
    variation.name: variation
    for variation in (
        Variation(
            "python-nulls",
            "Ids and page or screen fields the caller didn't give sent as null, "
            "as analytics-python sends them.",
            _python_nulls,
        ),
        Variation(
            "offset-plus-zero",
            'Times written with "+00:00" instead of "Z", as Python writes them.',
            _offset_plus_zero,
        ),
        Variation(
            "integer-as-float",
            "Whole numbers in properties and traits written as 19.0, as Python "
            "floats go out.",
            _integer_as_float,
        ),
        Variation(
            "numeric-ids",
            "groupId or previousId as a number, as the server libraries pass it on.",
            _numeric_ids,
        ),
        Variation(
            "version-as-string",
            'version as a string ("2") instead of a number.',
            _version_as_string,
        ),
        Variation(
            "channel-browser",
            'channel "browser" instead of "client" on a browser event.',
            _channel_browser,
        ),
        Variation(
            "snake-case-traits",
            "Reserved traits in snake_case: first_name, last_name, created_at.",
            _snake_case_traits,
        ),
        Variation(
            "casing-of-keys",
            "Property and trait names in the other casing: order_id as orderId, "
            "firstName as first_name.",
            _casing_of_keys,
        ),
        Variation(
            "employees-as-string",
            'A group\'s employees trait as a string ("329"), as the group doc '
            "types it.",
            _employees_as_string,
        ),
        Variation(
            "missing-optional-context",
            "context with only library in it, as a server library sends it.",
            _missing_optional_context,
        ),
        Variation(
            "no-context",
            "No context at all, as a direct HTTP API call may send.",
            _no_context,
        ),
        Variation(
            "no-integrations",
            "No integrations object, as classic analytics-node sends.",
            _no_integrations,
        ),
        Variation(
            "page-properties-bare",
            "A page's name and category only at the top level, not in properties.",
            _page_properties_bare,
        ),
        Variation(
            "delete-context-empty-list",
            "A delete whose context and integrations are [].",
            _delete_context_empty_list,
        ),
        Variation(
            "delete-context-null",
            "A delete whose context and integrations are null.",
            _delete_context_null,
        ),
        Variation(
            "delete-original-timestamp-iso",
            "A delete whose originalTimestamp is ISO-8601 rather than Go's format.",
            _delete_original_timestamp_iso,
        ),
        *(
            Variation(
                form.name,
                form.description,
                _message_id_variation(form),
                sets_message_id=True,
            )
            for form in _MESSAGE_ID_FORMS
        ),
    )
}
