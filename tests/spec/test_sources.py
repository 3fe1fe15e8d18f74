"""Tests for the sources module: a fresh messageId keeps the library's format."""

import random
import re
from datetime import UTC, datetime

import pytest

from sandbox.spec import (
    SOURCES,
    fresh_message_id,
    message_id_like,
    normalise,
    sample_event,
)
from sandbox.spec.sources import LIBRARIES, epoch_ms
from tests.spec.test_samples import MESSAGE_ID as FORMATS
from tests.spec.test_samples import UUID4

NOW = datetime(2025, 6, 1, 12, 0, 0, 123000, tzinfo=UTC)
LATER = datetime(2025, 6, 2, 9, 30, 15, 456000, tzinfo=UTC)


@pytest.mark.parametrize("source", SOURCES)
def test_fresh_message_id_keeps_the_sources_format(source):
    event = sample_event("track", source=source, now=NOW, rng=random.Random(2))
    assert re.fullmatch(FORMATS[source], event["messageId"])
    fresh = fresh_message_id(event, now=LATER)
    assert re.fullmatch(FORMATS[source], fresh)
    assert fresh != event["messageId"]


@pytest.mark.parametrize("source", ["analytics.js", "node"])
def test_fresh_message_id_is_stamped_with_the_copys_creation_time(source):
    event = sample_event("track", source=source, now=NOW, rng=random.Random(2))
    copy = normalise(
        event, now=LATER, fresh=True, new_message_id=message_id_like(event, now=LATER)
    )
    stamp = int(copy["messageId"].split("-")[2])
    created = datetime.fromisoformat(copy["originalTimestamp"].replace("Z", "+00:00"))
    assert stamp == epoch_ms(created)


def test_fresh_message_id_keeps_the_delete_forms():
    regulation = {"type": "delete", "messageId": "delete-reg-6543321::job-2-P0OJ3CTID1"}
    fresh = fresh_message_id(regulation, now=LATER)
    assert re.fullmatch(r"delete-reg-\d{7}::job-2-P0OJ3CTID1", fresh)
    assert fresh != regulation["messageId"]
    plain = {
        "type": "delete",
        "messageId": "delete-022bb90c-8f3c-4b5e-9d0a-1c2e3f4a5b6c",
    }
    assert re.fullmatch(rf"delete-{UUID4}", fresh_message_id(plain, now=LATER))


def test_fresh_message_id_keeps_classic_analytics_js_ids():
    event = {"type": "track", "messageId": "ajs-" + "a" * 32}
    fresh = fresh_message_id(event, now=LATER)
    assert re.fullmatch(r"ajs-[0-9a-f]{32}", fresh)
    assert fresh != event["messageId"]


def test_fresh_message_id_replaces_the_uuid_inside_any_other_id():
    event = {"messageId": "order-7f3c2a1e-9b8d-4c6e-a5f4-3e2d1c0b9a87-retry"}
    fresh = fresh_message_id(event, now=LATER)
    assert re.fullmatch(rf"order-{UUID4}-retry", fresh)


# A UUID of version 7: its first 48 bits are the milliseconds since the epoch.
UUID7 = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def test_fresh_message_id_of_an_unknown_form_or_none_is_a_uuid():
    assert re.fullmatch(UUID7, fresh_message_id({"messageId": "same-id"}, now=LATER))
    assert re.fullmatch(UUID7, fresh_message_id({"type": "track"}, now=LATER))
    assert re.fullmatch(UUID7, fresh_message_id({"messageId": 42}, now=LATER))
    assert re.fullmatch(UUID7, fresh_message_id("not an event", now=LATER))


def test_fresh_message_ids_of_no_known_form_sort_in_the_order_made():
    made = [fresh_message_id({"messageId": "bench-1"}, now=LATER) for _ in range(500)]
    assert made == sorted(made)
    assert len(set(made)) == 500
    assert re.fullmatch(
        rf"delete-{UUID4}", fresh_message_id({"type": "delete"}, now=LATER)
    )


def test_message_id_like_makes_nothing_until_asked():
    event = {"messageId": "ajs-next-1-7f3c2a1e-9b8d-4c6e-a5f4-3e2d1c0b9a87"}
    make = message_id_like(event, now=LATER)
    assert make() != make()


def test_libraries_say_which_have_a_page_call():
    assert [key for key, library in LIBRARIES.items() if not library.has_page] == [
        "ios",
        "android",
    ]
