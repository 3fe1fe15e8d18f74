"""Telling JSON Lines from a JSON array: a byte-order mark before an array, and
a JSON Lines file whose first line is an array."""

import codecs
import gzip
import json

import pytest

from sandbox.replay import reading
from tests.replay.helpers import event

BOM = codecs.BOM_UTF8


def _read(path):
    found = reading.EventFile(path)
    return found.format, list(found.items())


@pytest.mark.parametrize("gzipped", [False, True])
def test_an_array_after_a_byte_order_mark_is_read_whole(tmp_path, gzipped):
    data = BOM + json.dumps([event(0), event(1)]).encode()
    path = tmp_path / ("bom.json.gz" if gzipped else "bom.json")
    path.write_bytes(gzip.compress(data) if gzipped else data)
    form, items = _read(path)
    assert form == reading.JSON_ARRAY
    assert [item.problem for item in items] == [None, None]
    assert [item.event["messageId"] for item in items] == ["replay-0", "replay-1"]


@pytest.mark.parametrize("first", ["[]", "[1, 2]", '[{"type": "track"}]'])
def test_json_lines_whose_first_line_is_an_array_are_read_line_by_line(tmp_path, first):
    path = tmp_path / "lines.jsonl"
    path.write_text("\n".join([first, json.dumps(event(1)), json.dumps(event(2))]))
    form, items = _read(path)
    assert form == reading.JSON_LINES
    assert [item.position for item in items] == [1, 2, 3]
    assert items[0].event is None and "array" in items[0].problem
    assert [item.event["messageId"] for item in items[1:]] == ["replay-1", "replay-2"]


@pytest.mark.parametrize(
    "text",
    [
        json.dumps([event(0), event(1)]),
        json.dumps([event(0), event(1)]) + "\n",
        json.dumps([event(0), event(1)], indent=2),
        "[\n" + ",\n".join(json.dumps(event(n)) for n in range(2)) + "\n]\n",
    ],
    ids=["one line", "one line and a newline", "indented", "an element a line"],
)
def test_an_array_stays_an_array(tmp_path, text):
    path = tmp_path / "array.json"
    path.write_text(text)
    form, items = _read(path)
    assert form == reading.JSON_ARRAY
    assert [item.event["messageId"] for item in items] == ["replay-0", "replay-1"]
