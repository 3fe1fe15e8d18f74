"""Tests for the sample events: Spec-valid, realistic per source, deterministic."""

import random
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.spec import (
    EVENT_TYPES,
    SOURCES,
    format_timestamp,
    parse_timestamp,
    sample_event,
    validate_event,
)
from sandbox.spec.samples import (
    TEMPLATE_NEEDS_TRACK,
    UNKNOWN_EVENT_TYPE,
    UNKNOWN_SOURCE,
    UNKNOWN_TEMPLATE,
)
from sandbox.spec.timestamps import parse_go_time

NOW = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
ISO_MS_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
TIMESTAMPS = ("originalTimestamp", "sentAt", "receivedAt", "timestamp")
NON_DELETE_TYPES = [t for t in EVENT_TYPES if t != "delete"]


def sample(event_type, source="analytics.js", seed=7, **kwargs):
    return sample_event(
        event_type, source=source, now=NOW, rng=random.Random(seed), **kwargs
    )


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_sample_event_is_spec_valid_for_every_type_and_source(event_type, source):
    for seed in range(5):
        event = sample(event_type, source, seed)
        assert validate_event(event) == []
        assert event["type"] == event_type


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("event_type", NON_DELETE_TYPES)
def test_sample_event_timestamps_follow_segments_formula(event_type, source):
    for seed in range(5):
        event = sample(event_type, source, seed)
        moments = {name: parse_timestamp(event[name]) for name in TIMESTAMPS}
        expected = moments["receivedAt"] - (
            moments["sentAt"] - moments["originalTimestamp"]
        )
        assert moments["timestamp"] == expected


@pytest.mark.parametrize("source", SOURCES)
def test_sample_event_timestamps_are_ordered_like_a_real_send(source):
    for seed in range(20):
        event = sample("track", source, seed)
        moments = {name: parse_timestamp(event[name]) for name in TIMESTAMPS}
        send_delay = moments["sentAt"] - moments["originalTimestamp"]
        assert timedelta(milliseconds=50) <= send_delay <= timedelta(milliseconds=900)
        assert moments["sentAt"] < moments["receivedAt"]
        assert moments["receivedAt"] - moments["sentAt"] < timedelta(seconds=3)
        assert moments["receivedAt"] == datetime(2025, 6, 1, 12, 0, 0, 123000, UTC)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_sample_event_timestamps_are_iso_utc_with_milliseconds(event_type):
    event = sample(event_type)
    names = TIMESTAMPS if event_type != "delete" else ("sentAt", "receivedAt")
    for name in names:
        assert ISO_MS_Z.fullmatch(event[name]), (name, event[name])


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("event_type", NON_DELETE_TYPES)
def test_sample_event_has_the_common_fields(event_type, source):
    event = sample(event_type, source)
    assert event["integrations"] == {}
    assert event["version"] == 2
    assert (
        event["channel"]
        == {
            "analytics.js": "browser",
            "ios": "mobile",
            "android": "mobile",
            "server": "server",
        }[source]
    )
    assert isinstance(event["context"], dict)
    assert event.get("userId") or event.get("anonymousId")
    assert "projectId" not in event


def test_sample_event_message_ids_look_like_each_library_makes_them():
    browser = sample("track", "analytics.js")["messageId"]
    ios = sample("track", "ios")["messageId"]
    android = sample("track", "android")["messageId"]
    server = sample("track", "server")["messageId"]
    assert re.fullmatch(rf"ajs-next-\d{{13}}-{UUID4}", browser)
    assert re.fullmatch(UUID4.upper(), ios)
    assert re.fullmatch(UUID4, android)
    assert re.fullmatch(UUID4, server)


def test_sample_event_ios_ids_are_upper_case_like_swifts_uuid_string():
    event = sample("track", "ios")
    for value in (
        event["messageId"],
        event["anonymousId"],
        event["context"]["device"]["id"],
    ):
        assert value == value.upper()
        assert uuid.UUID(value).version == 4


def test_sample_event_browser_message_id_carries_the_creation_time():
    event = sample("track", "analytics.js")
    epoch_ms = int(event["messageId"].split("-")[2])
    created = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    assert format_timestamp(created) == event["originalTimestamp"]


def test_sample_event_gives_a_fresh_message_id_each_time():
    ids = {sample_event("track", now=NOW)["messageId"] for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize("event_type", NON_DELETE_TYPES)
def test_sample_event_server_source_adds_only_context_library(event_type):
    event = sample(event_type, "server")
    assert event["context"] == {
        "library": {"name": "analytics-python", "version": "2.3.4"}
    }
    assert event["userId"]
    assert event["channel"] == "server"
    assert uuid.UUID(event["messageId"]).version == 4


def test_sample_event_server_sends_missing_anonymous_id_as_null():
    event = sample("track", "server")
    assert event["anonymousId"] is None


def test_sample_event_browser_context_has_what_analytics_js_collects():
    for seed in range(10):
        event = sample("track", "analytics.js", seed)
        context = event["context"]
        assert context["library"] == {
            "name": "analytics.js",
            "version": "npm:next-1.84.1",
        }
        assert set(context["page"]) == {"path", "referrer", "search", "title", "url"}
        assert context["userAgent"].startswith("Mozilla/5.0")
        assert {"brands", "mobile", "platform"} <= set(context["userAgentData"])
        assert context["locale"]
        assert context["timezone"]
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", context["ip"])
        assert event["anonymousId"]


def test_sample_event_browser_campaign_matches_the_page_query_string():
    campaigns = 0
    for seed in range(40):
        context = sample("track", "analytics.js", seed)["context"]
        if "campaign" in context:
            campaigns += 1
            assert (
                f"utm_source={context['campaign']['source']}"
                in context["page"]["search"]
            )
            assert context["page"]["url"].endswith(context["page"]["search"])
        else:
            assert context["page"]["search"] == ""
    assert 0 < campaigns < 40


@pytest.mark.parametrize("source", ["ios", "android"])
def test_sample_event_mobile_context_has_what_the_sdks_collect(source):
    event = sample("track", source)
    context = event["context"]
    ios = source == "ios"
    assert set(context["app"]) == {"name", "version", "build", "namespace"}
    device = context["device"]
    assert {"id", "advertisingId", "adTrackingEnabled", "manufacturer", "model"} <= set(
        device
    )
    assert device["type"] == source
    assert (device["manufacturer"] == "Apple") is ios
    assert context["os"]["name"] == ("iOS" if ios else "Android")
    assert set(context["network"]) == {"wifi", "cellular", "carrier", "bluetooth"}
    assert set(context["screen"]) == {"width", "height", "density"}
    assert context["library"]["name"] == (
        "analytics-swift" if ios else "analytics-kotlin"
    )
    assert isinstance(context["traits"], dict)
    assert context["locale"]
    assert context["timezone"]
    assert context["ip"]
    assert event["channel"] == "mobile"


def test_sample_event_mobile_identify_copies_traits_into_context():
    event = sample("identify", "ios")
    assert event["context"]["traits"] == event["traits"]


def test_sample_event_delete_has_the_partner_shape():
    for seed in range(10):
        event = sample("delete", seed=seed)
        assert set(event) == {
            "type",
            "channel",
            "messageId",
            "projectId",
            "userId",
            "context",
            "integrations",
            "originalTimestamp",
            "sentAt",
            "receivedAt",
            "timestamp",
        }
        assert event["channel"] == "server"
        assert event["context"] in ([], None)
        assert event["integrations"] == event["context"]
        match = re.fullmatch(r"delete-reg-\d+::job-\d+-(\w+)", event["messageId"])
        assert match
        assert match[1] == event["projectId"]
        assert event["userId"]


def test_sample_event_delete_uses_both_documented_empty_forms():
    forms = {repr(sample("delete", seed=seed)["context"]) for seed in range(20)}
    assert forms == {"[]", "None"}


def test_sample_event_delete_timestamps_are_as_segment_sends_them():
    event = sample("delete")
    original = parse_go_time(event["originalTimestamp"])
    assert parse_timestamp(event["originalTimestamp"]) is None
    assert format_timestamp(original) == event["receivedAt"]
    assert event["timestamp"] == event["receivedAt"]
    assert parse_timestamp(event["sentAt"]) < parse_timestamp(event["receivedAt"])


def test_sample_event_delete_is_the_same_for_every_source():
    events = [sample("delete", source) for source in SOURCES]
    assert all(event == events[0] for event in events)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_sample_event_is_deterministic_with_a_seeded_rng(event_type, source):
    assert sample(event_type, source, 42) == sample(event_type, source, 42)


def test_sample_event_differs_between_seeds():
    assert sample("identify", seed=1) != sample("identify", seed=2)


def test_sample_event_defaults_to_now_in_utc():
    before = datetime.now(UTC) - timedelta(seconds=1)
    event = sample_event("track")
    assert before <= parse_timestamp(event["receivedAt"]) <= datetime.now(UTC)


def test_sample_event_reads_a_naive_now_as_utc():
    naive = sample_event("track", now=NOW.replace(tzinfo=None), rng=random.Random(1))
    aware = sample_event("track", now=NOW, rng=random.Random(1))
    assert naive == aware


def test_sample_event_identify_has_reserved_traits():
    traits = sample("identify", "server")["traits"]
    for name in ("email", "firstName", "lastName", "name", "phone", "createdAt"):
        assert isinstance(traits[name], str)
    assert traits["name"] == f"{traits['firstName']} {traits['lastName']}"
    assert set(traits["address"]) == {
        "street",
        "city",
        "state",
        "postalCode",
        "country",
    }
    assert {"name", "id", "industry", "employee_count", "plan"} == set(
        traits["company"]
    )
    assert parse_timestamp(traits["createdAt"]) < NOW


def test_sample_event_track_without_template_is_a_generic_click():
    event = sample("track")
    assert event["event"] == "Button Clicked"
    assert event["properties"]["button_text"]


def test_sample_event_browser_page_repeats_the_page_everywhere():
    event = sample("page", "analytics.js")
    properties = event["properties"]
    assert properties["category"] == event["category"]
    assert properties["name"] == event["name"]
    for name in ("path", "referrer", "search", "title", "url"):
        assert properties[name] == event["context"]["page"][name]


def test_sample_event_screen_has_a_top_level_category():
    event = sample("screen", "android")
    assert event["name"]
    assert event["category"]
    assert event["properties"]["name"] == event["name"]


def test_sample_event_group_has_account_traits():
    event = sample("group", "server")
    traits = event["traits"]
    assert event["groupId"]
    assert isinstance(traits["employees"], int)
    for name in ("name", "industry", "plan", "website"):
        assert isinstance(traits[name], str)


@pytest.mark.parametrize("source", SOURCES)
def test_sample_event_alias_links_previous_id_to_user_id(source):
    event = sample("alias", source)
    assert event["previousId"]
    assert event["userId"]
    assert event["previousId"] != event["userId"]


def test_sample_event_anonymous_browser_visitors_send_a_null_user_id():
    events = [sample("track", "analytics.js", seed) for seed in range(20)]
    anonymous = [event for event in events if event["userId"] is None]
    assert anonymous
    assert all(event["anonymousId"] for event in anonymous)


def test_sample_event_rejects_an_unknown_type():
    with pytest.raises(ValueError) as error:
        sample_event("signup")
    assert str(error.value) == UNKNOWN_EVENT_TYPE.format(value="signup")
    assert str(error.value) == (
        "Unknown event type 'signup'. Use one of identify, track, page, screen, "
        "group, alias, delete."
    )


def test_sample_event_rejects_an_unknown_source():
    with pytest.raises(ValueError) as error:
        sample_event("track", source="ruby")
    assert str(error.value) == UNKNOWN_SOURCE.format(value="ruby")
    assert "analytics.js, ios, android, server" in str(error.value)


def test_sample_event_rejects_an_unknown_template():
    with pytest.raises(ValueError) as error:
        sample_event("track", template="Order Teleported")
    assert str(error.value) == UNKNOWN_TEMPLATE.format(value="Order Teleported")


def test_sample_event_rejects_a_template_on_a_non_track_type():
    with pytest.raises(ValueError) as error:
        sample_event("page", template="Order Completed")
    assert str(error.value) == TEMPLATE_NEEDS_TRACK.format(
        template="Order Completed", event_type="page"
    )
