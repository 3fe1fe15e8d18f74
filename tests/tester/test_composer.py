"""What the composer tells about the text in its editor (pure, no database)."""

import json

import pytest

from sandbox import spec
from sandbox.tester import composer
from sandbox.tester.composer import DuplicateKey, Position


def test_duplicate_keys_are_found_with_their_path_in_text_order():
    text = (
        '{"userId": "a", "properties": {"x": 1, "x": 2, "items": '
        '[{"sku": 1}, {"sku": 2, "sku": 3, "sku": 4}]}, "userId": "b"}'
    )
    assert composer.duplicate_keys(text) == [
        DuplicateKey("", "userId", 2),
        DuplicateKey("properties", "x", 2),
        DuplicateKey("properties.items[1]", "sku", 3),
    ]


def test_duplicate_key_messages_say_where_and_how_often():
    assert (
        DuplicateKey("properties", "x", 2).message
        == 'key "x" appears twice in properties; Segment keeps only one, the last'
    )
    assert DuplicateKey("", "userId", 3).message.startswith(
        'key "userId" appears 3 times in the event;'
    )
    long = DuplicateKey("", "k" * 500, 2).message
    assert len(long) < 160
    assert DuplicateKey("", 'say "hi"', 2).message.startswith(r'key "say \"hi\""')


def test_a_key_written_twice_is_a_warning_not_a_problem():
    event = spec.sample_event("identify")
    text = json.dumps(event)[:-1] + ', "userId": "last"}'
    check = composer.check_text(text)
    assert check.ok
    assert check.duplicates == [DuplicateKey("", "userId", 2)]


def test_thousands_of_repeated_keys_list_the_first_few():
    pairs = ", ".join(f'"k{i}": 1, "k{i}": 2' for i in range(500))
    check = composer.check_text('{"type": "identify", "userId": "u", ' + pairs + "}")
    assert len(check.duplicates) == composer.MAX_DUPLICATE_WARNINGS
    assert check.more_duplicates == 500 - composer.MAX_DUPLICATE_WARNINGS
    assert check.more_duplicates_message == "…and 490 more repeated keys"


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ('{\n  "type": "track",\n  "event": \n}', Position(4, 1)),
        ('{"a": "\U0001f600", x}', Position(1, 13)),
        ("", Position(1, 1)),
        ('{\n  "x": NaN\n}', Position(2, 8)),
        ('{"x": [1, -Infinity]}', Position(1, 11)),
        ('{"x": 1e400}', Position(1, 7)),
        ('{"x": ' + "9" * 5000 + "}", Position(1, 7)),
        ('{"ok": "\\ud83d\\ude00",\n "x": "a\\udfff"}', Position(2, 7)),
        ('{"ok": "\\\\ud800", "x": "\\ud800z"}', Position(1, 24)),
        ("[" * 150 + "]" * 150, Position(1, 101)),
    ],
    ids=[
        "grammar",
        "after-an-emoji",
        "empty",
        "nan",
        "minus-infinity",
        "overflowing-float",
        "huge-integer",
        "lone-low-surrogate",
        "escaped-backslash-is-not-a-surrogate",
        "too-deep",
    ],
)
def test_the_json_error_is_placed_where_the_editor_marks_it(text, position):
    check = composer.check_text(text)
    assert check.json_error is not None
    assert check.error_at == position


def test_the_selects_follow_the_events_own_type_source_and_name():
    event = spec.sample_event("track", source="ios", template="Order Completed")
    assert composer.event_selects(event) == {
        "event_type": "track",
        "source": "ios",
        "template": "Order Completed",
    }
    event = spec.sample_event("page", source="server")
    assert composer.event_selects(event) == {
        "event_type": "page",
        "source": "server",
        "template": "",
    }
    odd = {"type": "purchase", "context": {"library": {"name": "mystery"}}}
    assert composer.event_selects(odd) == {
        "event_type": None,
        "source": None,
        "template": "",
    }
    assert composer.event_selects([1]) == dict.fromkeys(
        ("event_type", "source", "template")
    )


def test_a_numeric_group_id_is_a_warning_and_the_size_is_what_the_send_checks():
    text = json.dumps(
        {
            "type": "group",
            "groupId": 999,
            "userId": "u",
            "sentAt": "2024-01-01T00:00:00Z",
        }
    )
    check = composer.check_text(text)
    assert check.ok
    assert [w.code for w in check.warnings] == ["numeric_id"]
    assert check.size_bytes == spec.event_size(json.loads(text))
