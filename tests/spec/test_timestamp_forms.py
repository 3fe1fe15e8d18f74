"""The timestamp forms nearly every event carries are read by a faster path: it
must read exactly what the general pattern reads, and refuse what it refuses."""

import random
import string
from datetime import UTC, datetime

import pytest

from sandbox.spec import parse_timestamp

CANONICAL = "2025-06-01T12:34:56.789Z"
# analytics-python's timestamp and sentAt.
PYTHON_FORMS = ("2025-06-01T12:34:56.789+00:00", "2025-06-01T12:34:56.789012+00:00")


def _by_the_pattern(text: str) -> datetime | None:
    # A trailing space takes the text past the fast path; the pattern strips it.
    return parse_timestamp(text + " ")


@pytest.mark.parametrize(
    "text",
    [
        CANONICAL,
        *PYTHON_FORMS,
        "0001-01-01T00:00:00.000Z",
        "0001-01-01T00:00:00.000+00:00",
        "2025-06-01T12:34:56.789-00:00",
        "2025-06-01T12:34:56.789+01:00",
        "2025-06-01T12:34:56.789+00:0Z",
        "2025-06-01T12:34:56.78901+00:00",
        "9999-12-31T23:59:59.999Z",
        "2024-02-29T00:00:00.000Z",
        "2025-02-29T00:00:00.000Z",
        "2025-13-01T00:00:00.000Z",
        "0000-01-01T00:00:00.000Z",
        "2025-06-01T24:00:00.000Z",
        "2025-06-01T12:60:00.000Z",
        "2025-06-01T12:00:60.000Z",
        "2025-06-01T12:00:00,000Z",
        "2025-06-01T12:00:00.0a0Z",
        "2025-06-01T12:00:00.000+",
        "\uff12\uff10\uff12\uff15-06-01T12:00:00.000Z",  # fullwidth digits
    ],
)
def test_parse_timestamp_reads_segments_form_as_the_pattern_does(text):
    assert parse_timestamp(text) == _by_the_pattern(text)


@pytest.mark.parametrize("form", [CANONICAL, *PYTHON_FORMS])
def test_parse_timestamp_fast_path_agrees_on_near_misses(form):
    rng = random.Random(20250601)
    alphabet = string.digits + "-:T.Zz+ ,t" + "\u0663\uff10"  # other digits
    for _ in range(20_000):
        chars = list(form)
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        text = "".join(chars)
        assert parse_timestamp(text) == _by_the_pattern(text), text


def test_parse_timestamp_fast_path_gives_utc():
    for text in (CANONICAL, *PYTHON_FORMS):
        parsed = parse_timestamp(text)
        assert parsed.replace(microsecond=789000) == datetime(
            2025, 6, 1, 12, 34, 56, 789000, tzinfo=UTC
        )
        assert parsed.tzinfo is UTC
