"""The streaming reader: JSON Lines or a JSON array, gzipped or not, with bad
lines reported by position and never stopping the rest."""

import gzip
import json
import os
import tracemalloc
from pathlib import Path

import pytest

from sandbox.replay import reading
from tests.replay.helpers import event, write_lines


def _items(path, **kwargs):
    return list(reading.EventFile(path).items(**kwargs))


def test_a_large_file_is_read_as_a_stream_in_little_memory(tmp_path):
    path = write_lines(tmp_path / "big.jsonl.gz", 200_000, gzipped=True)
    found = reading.EventFile(path)
    assert found.gzipped and found.format == reading.JSON_LINES
    tracemalloc.start()
    count, last = 0, None
    for item in found.items():
        count += 1
        last = item
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 200_000
    assert last.position == 200_000 and last.event["messageId"] == "replay-199999"
    assert found.bytes_read == path.stat().st_size
    # The whole file decompressed is about 40 MB.
    assert peak < 5 * 1024 * 1024


def test_bad_lines_are_reported_with_their_numbers_and_reading_goes_on(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                json.dumps(event(1)).encode(),
                b"",
                b"not json",
                b"[1, 2]",
                b'{"type": "track", "n": NaN}',
                b'{"type": "track", "text": "\\ud800"}',
                b"\xff\xfe",
                b'"a string"',
                json.dumps(event(2)).encode(),
            ]
        )
    )
    items = _items(path)
    assert [(i.position, i.event is not None) for i in items] == [
        (1, True),
        (3, False),
        (4, False),
        (5, False),
        (6, False),
        (7, False),
        (8, False),
        (9, True),
    ]
    problems = {i.position: i.problem for i in items if i.problem}
    assert problems[3].startswith("not JSON: ")
    assert problems[4] == reading.NOT_AN_OBJECT.format(kind="an array")
    assert problems[5] == reading.NOT_JSON.format(
        detail=reading.NOT_A_NUMBER.format(token="NaN")
    )
    assert "lone UTF-16 surrogate" in problems[6]
    assert problems[7] == reading.NOT_UTF8
    assert problems[8] == reading.NOT_AN_OBJECT.format(kind="a string")


def test_a_truncated_gzip_gives_what_it_holds_then_says_where_it_ends(tmp_path):
    lines = b"".join(json.dumps(event(n)).encode() + b"\n" for n in range(20_000))
    packed = gzip.compress(lines)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    items = _items(path)
    *events, end = items
    assert len(events) > 5_000
    assert all(item.event is not None for item in events)
    assert [item.position for item in events] == list(range(1, len(events) + 1))
    assert end.position == len(events) + 1
    assert end.problem.startswith("the file ends early")


def test_an_empty_file_holds_no_events(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert _items(path) == []
    (tmp_path / "empty.gz").write_bytes(gzip.compress(b""))
    assert _items(tmp_path / "empty.gz") == []


def test_a_json_array_is_read_element_by_element(tmp_path):
    path = tmp_path / "events.json.gz"
    with gzip.open(path, "wt") as out:
        json.dump([event(n) for n in range(1000)], out)
    found = reading.EventFile(path)
    assert found.format == reading.JSON_ARRAY and found.unit == "element"
    items = list(found.items(skip=10))
    assert len(items) == 990 and items[0].position == 11
    assert items[0].event == event(10)


def test_a_bad_element_of_an_array_is_skipped_and_a_broken_array_stops(tmp_path):
    path = tmp_path / "array.json"
    path.write_bytes(b'[{"a": 1}, 3, {"b": "\\ud800"}, {"c": "\\ud83d\\ude00"}]')
    items = _items(path)
    assert [i.position for i in items] == [1, 2, 3, 4]
    assert items[1].problem == reading.NOT_AN_OBJECT.format(kind="a number")
    assert "lone UTF-16 surrogate" in items[2].problem
    assert items[3].event == {"c": "\U0001f600"}
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'[{"a": 1}, {"b": NaN}, {"c": 2}]')
    first, second = _items(broken)
    assert first.event == {"a": 1}
    assert second.position == 2
    assert second.problem.startswith("the JSON array cannot be read past here")


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzipped"])
def test_an_integer_past_64_bits_is_read_in_an_array_as_in_lines(tmp_path, gzipped):
    # The fast array parser stops the whole array at such a number ("integer
    # overflow"); JSON Lines read it as the number it is.
    big = 2**64 + 1
    text = (
        f'[{{"type": "track", "properties": {{"id": {big}}}}},\n'
        f'{{"type": "track", "properties": {{"id": -{big}, "n": 1.5}}}}, {{"c": 3}}]'
    ).encode()
    path = tmp_path / ("array.json.gz" if gzipped else "array.json")
    path.write_bytes(gzip.compress(text) if gzipped else text)
    items = _items(path)
    assert [i.problem for i in items] == [None, None, None]
    assert items[0].event["properties"]["id"] == big
    assert items[1].event["properties"] == {"id": -big, "n": 1.5}
    assert items[2].event == {"c": 3}
    lines = tmp_path / "lines.jsonl"
    lines.write_text(f'{{"type": "track", "properties": {{"id": {big}}}}}\n')
    assert _items(lines)[0].event == items[0].event


def test_a_number_too_long_to_read_is_one_bad_line_in_plain_words(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text(
        '{"type": "track", "properties": {"n": 1'
        + "0" * 5000
        + "}}\n"
        + json.dumps(event(1))
        + "\n"
    )
    first, second = _items(path)
    assert first.problem == reading.NOT_JSON.format(
        detail="a number has more than 4,300 digits, more than the sandbox reads"
    )
    assert second.event == event(1)


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le", "utf-16-be"], ids=["bom", "le", "be"]
)
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzipped"])
def test_a_utf16_file_is_refused_with_what_to_do(tmp_path, encoding, gzipped):
    text = (json.dumps(event(1)) + "\n").encode(encoding)
    path = tmp_path / "events.jsonl"
    path.write_bytes(gzip.compress(text) if gzipped else text)
    with pytest.raises(reading.FileUnreadable) as refused:
        reading.EventFile(path)
    assert str(refused.value) == reading.UNREADABLE.format(
        path=path, detail=reading.UTF16
    )


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzipped"])
def test_runs_of_empty_lines_keep_the_line_numbers(tmp_path, gzipped):
    # Passed over a buffer at a time: 20 MB of newlines (a gzip bomb's shape)
    # once took a Python step per line.
    one = json.dumps(event(1))
    text = ("\n" * 5 + one + "\n" * 300_001 + one + "\n\n \n" + one).encode()
    path = tmp_path / ("blank.jsonl.gz" if gzipped else "blank.jsonl")
    path.write_bytes(gzip.compress(text) if gzipped else text)
    assert [i.position for i in _items(path)] == [6, 300_007, 300_010]
    assert [i.position for i in _items(path, skip=6)] == [300_007, 300_010]
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b"\n" * (20 << 20) + one.encode()))
    [last] = _items(bomb)
    assert last.position == (20 << 20) + 1 and last.event == event(1)


def test_resuming_skips_the_lines_already_read(tmp_path):
    path = write_lines(tmp_path / "e.jsonl", 100)
    items = _items(path, skip=60)
    assert [i.position for i in items] == list(range(61, 101))


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\x1f\x8bnot gzip at all", "not a readable gzip stream"),
        (None, "No such file"),
    ],
)
def test_an_unreadable_file_is_refused_at_once(tmp_path, content, words):
    path = tmp_path / "file.gz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(reading.FileUnreadable, match=words):
        reading.EventFile(path)


@pytest.mark.parametrize("kind", ["directory", "fifo", "device"])
def test_what_is_not_a_regular_file_is_refused_at_once(tmp_path, kind):
    # A pipe or a device would be read once for the format and again for the
    # events (/dev/zero never ended).
    path = tmp_path / kind
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    with pytest.raises(reading.FileUnreadable) as refused:
        reading.EventFile(path)
    detail = reading.A_DIRECTORY if kind == "directory" else reading.NOT_A_FILE
    assert refused.value.detail == detail


def test_deep_nesting_in_an_array_costs_no_memory_and_reading_goes_on(tmp_path):
    path = tmp_path / "deep.json"
    first, after = json.dumps(event(1)).encode(), json.dumps(event(2)).encode()
    too_deep = b"[" * 101 + b"]" * 101
    deepest_allowed = b"[" * 100 + b"]" * 100
    path.write_bytes(
        b"[" + first + b"," + too_deep + b"," + deepest_allowed + b"," + after
        + b"," + b"[" * 30_000
    )  # fmt: skip
    tracemalloc.start()
    try:
        items = list(reading.EventFile(path).items())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # ijson's items() held a prefix as long as the depth for every level: about
    # a gigabyte for this file.
    assert peak < 20 * 2**20
    assert [item.position for item in items] == [1, 2, 3, 4, 5]
    assert items[0].event["messageId"] == "replay-1"
    assert items[1].problem == "nested more than 100 levels deep: not an event"
    assert items[2].problem.startswith("not an event: a JSON object is needed")
    assert items[3].event["messageId"] == "replay-2"
    assert items[4].problem.startswith("the JSON array cannot be read past here")


@pytest.mark.parametrize(
    "name, gzipped, as_array",
    [
        ("lines.jsonl.gz", True, False),
        ("lines.jsonl", False, False),
        ("array.json", False, True),
        ("array.json.gz", True, True),
    ],
)
def test_progress_through_the_file_moves_with_each_event(
    tmp_path, name, gzipped, as_array
):
    """How far into the file reading has come follows the events taken, not
    the reader's 256 KiB reads: a replay's estimate of how many events the
    file holds (events read / share of the file read) stays near the truth
    from the first tenth on, for a gzipped export above all."""
    count = 40_000
    path = tmp_path / name
    if as_array:
        text = json.dumps([event(n) for n in range(count)]).encode()
        path.write_bytes(gzip.compress(text) if gzipped else text)
    else:
        write_lines(path, count, gzipped=gzipped)
    found = reading.EventFile(path)
    size = path.stat().st_size
    estimates, last = [], 0
    for number, _ in enumerate(found.items(), start=1):
        if number % 2_000 == 0:
            assert found.bytes_read >= last
            last = found.bytes_read
            if number >= count // 10:
                estimates.append(number * size / found.bytes_read)
    assert 0.95 * count <= min(estimates) and max(estimates) <= 1.05 * count
