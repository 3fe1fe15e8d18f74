"""Tests for the variations a suite run sends after each step, and how it compares
the endpoint's answers."""

import json
import random
import re
from datetime import UTC, datetime

import pytest

from sandbox.spec import SOURCES, parse_timestamp, sample_event, validate_event
from sandbox.suites.variations import (
    VARIATIONS,
    differences,
    variants_of,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
PLUS_ZERO_MS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00"
PLUS_ZERO_AUTO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00"
DELETE_ONLY = {
    "delete-context-empty-list",
    "delete-context-null",
    "delete-original-timestamp-iso",
    "messageid-delete-uuid",
}


def sample(event_type, source="analytics.js", template=None, seed=1):
    return sample_event(
        event_type,
        source=source,
        template=template,
        now=NOW,
        rng=random.Random(seed),
    )


def apply(name, event, seed=0):
    return VARIATIONS[name].apply(event, random.Random(seed))


def json_text(event):
    return json.dumps(event, sort_keys=True)


def every_sample():
    events = []
    for source in SOURCES:
        for event_type in ("identify", "track", "page", "screen", "group", "alias"):
            if event_type == "page" and source in ("ios", "android"):
                continue
            events.append(sample(event_type, source))
        events.append(sample("track", source, template="Order Completed"))
    # Both documented delete shapes: context [] (seed 1) and null (seed 2).
    events += [sample("delete", seed=1), sample("delete", seed=2)]
    return events


SAMPLES = every_sample()


def test_variations_are_named_described_and_cite_the_reference():
    assert len(VARIATIONS) >= 20
    for name, variation in VARIATIONS.items():
        assert variation.name == name
        assert re.fullmatch(r"[a-z0-9.-]+", name)
        assert variation.description
        assert "\n" not in variation.description
        assert "segment-reference.md §" in variation.apply.__doc__
        assert variation.sets_message_id == name.startswith("messageid-")


@pytest.mark.parametrize("name", list(VARIATIONS))
def test_variation_never_touches_its_input(name):
    for event in SAMPLES:
        before = json_text(event)
        variant = apply(name, event)
        assert json_text(event) == before
        if variant is not None:
            assert variant is not event
            assert json_text(variant) != before


def test_python_nulls_sends_the_missing_id_as_null():
    event = sample("identify")
    variant = apply("python-nulls", event)
    assert variant["userId"] == event["userId"]
    assert variant["anonymousId"] is None
    assert {k: v for k, v in variant.items() if k != "anonymousId"} == {
        k: v for k, v in event.items() if k != "anonymousId"
    }


def test_python_nulls_gives_a_server_page_null_name_and_category():
    event = sample("page", "node")
    del event["name"], event["category"]
    variant = apply("python-nulls", event)
    assert variant["name"] is None
    assert variant["category"] is None


def test_python_nulls_does_not_apply_to_what_python_sent():
    assert apply("python-nulls", sample("identify", "server")) is None
    assert apply("python-nulls", sample("delete")) is None


def test_offset_plus_zero_writes_times_as_python_does():
    event = sample("identify")
    variant = apply("offset-plus-zero", event)
    assert re.fullmatch(PLUS_ZERO_MS, variant["originalTimestamp"])
    assert re.fullmatch(PLUS_ZERO_AUTO, variant["sentAt"])
    assert variant["traits"]["createdAt"] == "2025-01-01T17:57:43+00:00"
    for name in ("originalTimestamp", "sentAt"):
        assert parse_timestamp(variant[name]) == parse_timestamp(event[name])
    # Segment's own times are written with "Z".
    assert variant["receivedAt"] == event["receivedAt"]
    assert variant["timestamp"] == event["timestamp"]


def test_offset_plus_zero_rewrites_the_time_a_client_sent():
    event = sample("track")
    del event["originalTimestamp"], event["receivedAt"]
    variant = apply("offset-plus-zero", event)
    assert re.fullmatch(PLUS_ZERO_MS, variant["timestamp"])
    assert parse_timestamp(variant["timestamp"]) == parse_timestamp(event["timestamp"])
    assert apply("offset-plus-zero", sample("delete")) is None


def test_integer_as_float_writes_whole_numbers_with_a_point():
    event = sample("track", "node", template="Order Completed")
    variant = apply("integer-as-float", event)
    product = variant["properties"]["products"][0]
    assert product["quantity"] == event["properties"]["products"][0]["quantity"]
    assert isinstance(product["quantity"], float)
    assert '"quantity": 1.0' in json.dumps(variant)
    # Context is the library's, not the customer's.
    assert variant["context"] == event["context"]
    assert variant["version"] == 2
    assert apply("integer-as-float", sample("delete")) is None


def test_numeric_ids_makes_group_id_and_previous_id_numbers():
    group = sample("group", "node")
    group["groupId"] = "999"
    assert apply("numeric-ids", group)["groupId"] == 999
    alias = apply("numeric-ids", sample("alias"))
    assert isinstance(alias["previousId"], int)
    assert apply("numeric-ids", sample("track")) is None


def test_version_as_string():
    assert apply("version-as-string", sample("track"))["version"] == "2"
    event = sample("track")
    event["version"] = "1.1"
    assert apply("version-as-string", event) is None
    assert apply("version-as-string", sample("delete")) is None


def test_channel_browser_applies_to_browser_events_only():
    assert apply("channel-browser", sample("page"))["channel"] == "browser"
    unnormalised = sample("page")
    del unnormalised["channel"]
    assert apply("channel-browser", unnormalised)["channel"] == "browser"
    assert apply("channel-browser", sample("page", "node")) is None


def test_snake_case_traits_renames_the_reserved_traits_in_place():
    event = sample("identify")
    traits = apply("snake-case-traits", event)["traits"]
    assert traits["first_name"] == event["traits"]["firstName"]
    assert traits["last_name"] == event["traits"]["lastName"]
    assert traits["created_at"] == event["traits"]["createdAt"]
    assert traits["address"]["postal_code"] == event["traits"]["address"]["postalCode"]
    assert "firstName" not in traits
    # Renamed where they stood, and custom traits are left alone.
    assert list(traits)[:3] == ["email", "first_name", "last_name"]
    assert traits["company"] == event["traits"]["company"]
    assert apply("snake-case-traits", sample("track")) is None


def test_casing_of_keys_flips_property_names_both_ways():
    track = apply("casing-of-keys", sample("track", "node"))
    assert list(track["properties"]) == ["buttonText", "buttonId", "location"]
    identify = apply("casing-of-keys", sample("identify"))
    assert identify["traits"]["first_name"] == "Priya"
    assert identify["traits"]["company"]["employeeCount"] == 1800
    order = apply("casing-of-keys", sample("track", template="Order Completed"))
    assert "productId" in order["properties"]["products"][0]
    # The Spec's own fields keep their names.
    assert "userId" in identify and "messageId" in identify
    assert apply("casing-of-keys", sample("delete")) is None


def test_casing_of_keys_keeps_both_keys_that_would_meet():
    event = sample("track", "node")
    event["properties"] = {"order_id": "a", "orderId": "b"}
    assert apply("casing-of-keys", event) is None


def test_employees_as_string():
    event = sample("group", "ios")
    assert apply("employees-as-string", event)["traits"]["employees"] == "1800"
    assert apply("employees-as-string", sample("identify")) is None


def test_missing_optional_context_keeps_only_the_library():
    event = sample("screen", "android")
    variant = apply("missing-optional-context", event)
    assert variant["context"] == {"library": event["context"]["library"]}
    assert apply("missing-optional-context", sample("track", "node")) is None


def test_no_context_and_no_integrations():
    event = sample("track", "node")
    assert "context" not in apply("no-context", event)
    assert "integrations" not in apply("no-integrations", event)
    assert apply("no-integrations", sample("track", "node-classic")) is None
    assert apply("no-context", sample("delete")) is None


def test_page_properties_bare_leaves_name_and_category_at_the_top():
    event = sample("page")
    variant = apply("page-properties-bare", event)
    assert "name" not in variant["properties"]
    assert "category" not in variant["properties"]
    assert variant["name"] == event["name"]
    assert variant["category"] == event["category"]
    assert apply("page-properties-bare", sample("page", "server")) is None


def test_delete_context_variations_give_both_documented_shapes():
    empty, null = sample("delete", seed=1), sample("delete", seed=2)
    assert empty["context"] == [] and null["context"] is None
    variant = apply("delete-context-null", empty)
    assert variant["context"] is None and variant["integrations"] is None
    variant = apply("delete-context-empty-list", null)
    assert variant["context"] == [] and variant["integrations"] == []
    assert apply("delete-context-empty-list", empty) is None
    assert apply("delete-context-null", null) is None
    assert apply("delete-context-null", sample("track")) is None


def test_delete_original_timestamp_iso():
    event = sample("delete")
    variant = apply("delete-original-timestamp-iso", event)
    assert variant["originalTimestamp"] == "2025-06-01T12:00:00.000Z"
    assert apply("delete-original-timestamp-iso", variant) is None
    assert apply("delete-original-timestamp-iso", sample("track")) is None


# Each messageId variation, the form it makes, and a source already sending it.
MESSAGE_ID_FORMS = {
    "messageid-analytics.js": (rf"ajs-next-\d{{13}}-{UUID}", "analytics.js"),
    "messageid-analytics.js-classic": (r"ajs-[0-9a-f]{32}", None),
    "messageid-analytics-swift": (UUID.upper(), "ios"),
    "messageid-analytics-python": (UUID, "server"),
    "messageid-analytics-node-next": (rf"node-next-\d{{13}}-{UUID}", "node"),
    "messageid-analytics-node-classic": (
        rf"node-[0-9a-f]{{32}}-{UUID}",
        "node-classic",
    ),
}


@pytest.mark.parametrize("name", list(MESSAGE_ID_FORMS))
def test_message_id_variation_makes_its_library_form(name):
    form, own_source = MESSAGE_ID_FORMS[name]
    other = "ios" if own_source != "ios" else "node"
    event = sample("track", other)
    variant = apply(name, event)
    assert re.fullmatch(form, variant["messageId"])
    assert {k: v for k, v in variant.items() if k != "messageId"} == {
        k: v for k, v in event.items() if k != "messageId"
    }
    if own_source is not None:
        assert apply(name, sample("track", own_source)) is None
    assert apply(name, sample("delete")) is None


def test_stamped_message_ids_carry_the_event_time():
    event = sample("track", "node")
    variant = apply("messageid-analytics.js", event)
    stamp = event["messageId"].split("-")[2]
    assert variant["messageId"].startswith(f"ajs-next-{stamp}-")


def test_message_id_delete_uuid_applies_to_deletes_only():
    variant = apply("messageid-delete-uuid", sample("delete"))
    assert re.fullmatch(rf"delete-{UUID}", variant["messageId"])
    assert apply("messageid-delete-uuid", variant) is None
    assert apply("messageid-delete-uuid", sample("track")) is None


def test_variants_are_the_same_for_a_seed():
    event = sample("identify")
    assert variants_of(event, seed=7) == variants_of(event, seed=7)
    other = dict(variants_of(event, seed=8))
    for name, variant in variants_of(event, seed=7):
        assert variant["messageId"] != other[name]["messageId"]


def test_variants_skip_what_does_not_apply():
    track = [name for name, _ in variants_of(sample("track"), seed=1)]
    assert not DELETE_ONLY & set(track)
    assert "messageid-analytics.js" not in track  # it is one already
    assert "channel-browser" in track
    delete = [name for name, _ in variants_of(sample("delete"), seed=1)]
    assert set(delete) == DELETE_ONLY - {"delete-context-empty-list"}
    assert variants_of(["not", "an", "event"], seed=1) == []


def test_variants_follow_the_registry_order():
    names = [name for name, _ in variants_of(sample("identify"), seed=1)]
    assert names == [name for name in VARIATIONS if name in names]


def test_every_variant_is_json_keeps_its_type_and_stays_spec_valid():
    for event in SAMPLES:
        for name, variant in variants_of(event, seed=3):
            text = json.dumps(variant, allow_nan=False)
            assert json.loads(text) == variant
            assert variant["type"] == event["type"], name
            assert validate_event(variant) == [], (name, validate_event(variant))


def test_every_variant_has_a_fresh_message_id_of_the_event_form():
    for event in SAMPLES:
        variants = variants_of(event, seed=3)
        ids = [variant["messageId"] for _, variant in variants]
        assert event["messageId"] not in ids
        assert len(set(ids)) == len(ids)
        for name, variant in variants:
            if VARIATIONS[name].sets_message_id:
                continue
            old, new = event["messageId"], variant["messageId"]
            assert message_id_form(new) == message_id_form(old), name
            assert new.isupper() == old.isupper()


def message_id_form(message_id):
    """The id with its random parts masked: UUIDs, digests and numbers."""
    masked = re.sub(UUID, "<uuid>", message_id, flags=re.IGNORECASE)
    return re.sub(r"[0-9a-f]{32}|\d+", "<n>", masked)


def test_variants_of_different_events_never_share_a_message_id():
    ids = [
        variant["messageId"]
        for event in SAMPLES
        for _, variant in variants_of(event, seed=1)
    ]
    assert len(set(ids)) == len(ids)


def test_message_id_without_a_known_form_becomes_a_uuid():
    event = sample("track")
    event["messageId"] = "my-own-id"
    (_, variant), *_ = variants_of(event, seed=1)
    assert re.fullmatch(UUID, variant["messageId"])
    del event["messageId"]
    (_, variant), *_ = variants_of(event, seed=1)
    assert re.fullmatch(UUID, variant["messageId"])


def result(status, outcome, message=""):
    return {"status": status, "outcome": outcome, "message": message}


def test_differences_empty_when_handled_the_same():
    assert differences(result(200, "green"), result(200, "green")) == []
    # A success's text may echo the event: it is not a difference.
    assert differences(result(200, "green", "ok 1"), result(200, "green", "ok 2")) == []
    assert differences(result(400, "red", "Bad"), result(400, "red", "Bad")) == []


def test_differences_another_status():
    assert differences(result(200, "green"), result(400, "red", "Missing email")) == [
        "answered 400 instead of 200: Missing email",
        "red instead of green",
    ]
    assert differences(result(200, "green"), result(202, "green")) == [
        "answered 202 instead of 200"
    ]


def test_differences_no_answer():
    assert differences(
        result(200, "green"), result(None, "red", "Timed out after 5 s")
    ) == ["got no answer instead of 200: Timed out after 5 s", "red instead of green"]
    assert differences(result(None, "red", "Timed out"), result(200, "green")) == [
        "answered 200 instead of no answer",
        "green instead of red",
    ]


def test_differences_another_outcome_with_the_same_status():
    original = result(None, "green", "ok")
    variant = result(None, "yellow", "EventNotSupported: identify is not supported")
    assert differences(original, variant) == [
        "yellow instead of green: EventNotSupported: identify is not supported"
    ]


def test_differences_another_reason_for_the_same_failure():
    original = result(400, "red", "Missing email")
    variant = result(400, "red", "Unknown field first_name")
    assert differences(original, variant) == [
        'said "Unknown field first_name" instead of "Missing email"'
    ]
