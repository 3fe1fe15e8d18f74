"""Tests for parsing and formatting Segment's timestamps."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sandbox.spec import format_timestamp, parse_timestamp
from sandbox.spec.timestamps import format_go_time, parse_go_time

MOMENT = datetime(2025, 1, 31, 12, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2025-01-31T12:00:00.123Z",
        "2025-01-31T12:00:00.123+00:00",
        "2025-01-31T12:00:00.123000+00:00",
        "2025-01-31T13:00:00.123+01:00",
        "2025-01-31T07:00:00.123-0500",
        "2025-01-31T12:00:00.123456789Z",
        "2025-01-31 12:00:00.123Z",
        "2025-01-31T12:00:00.123",
    ],
)
def test_parse_timestamp_reads_iso_forms_as_utc(text):
    assert parse_timestamp(text).replace(microsecond=123000) == MOMENT
    assert parse_timestamp(text).tzinfo == UTC


def test_parse_timestamp_keeps_microseconds():
    parsed = parse_timestamp("2025-01-01T00:00:00.123456+00:00")
    assert parsed.microsecond == 123456


@pytest.mark.parametrize(
    "value",
    ["", "yesterday", "2025-13-01T00:00:00Z", "2025-01-31x12:00:00Z", 1738324800, None],
)
def test_parse_timestamp_returns_none_for_anything_else(value):
    assert parse_timestamp(value) is None


def test_format_timestamp_uses_milliseconds_and_z():
    moment = datetime(
        2025, 1, 31, 13, 0, 0, 123999, tzinfo=timezone(timedelta(hours=1))
    )
    assert format_timestamp(moment) == "2025-01-31T12:00:00.123Z"


def test_format_timestamp_reads_naive_as_utc():
    assert format_timestamp(datetime(2025, 1, 31)) == "2025-01-31T00:00:00.000Z"


def test_go_time_round_trips():
    text = "2020-05-09 23:54:49.209808489 +0000 UTC m=+70366.298768264"
    parsed = parse_go_time(text)
    assert parsed == datetime(2020, 5, 9, 23, 54, 49, 209808, tzinfo=UTC)
    assert format_go_time(parsed, nanosecond=489, monotonic=70366.298768264) == text
    assert parse_timestamp(text) is None


def test_format_go_time_trims_zeros_like_go():
    assert format_go_time(MOMENT) == "2025-01-31 12:00:00.123 +0000 UTC"
    assert format_go_time(MOMENT.replace(microsecond=0)) == (
        "2025-01-31 12:00:00 +0000 UTC"
    )


def test_a_local_time_whose_utc_leaves_the_calendar_is_no_timestamp():
    assert parse_timestamp("0001-01-01T00:00:00+23:59") is None
    assert parse_timestamp("9999-12-31T23:59:59-23:59") is None
    assert parse_timestamp("0001-01-01T23:59:00+23:59") is not None


def test_years_before_1000_keep_four_digits():
    moment = parse_timestamp("0042-03-04T05:06:07.890Z")
    assert format_timestamp(moment) == "0042-03-04T05:06:07.890Z"
