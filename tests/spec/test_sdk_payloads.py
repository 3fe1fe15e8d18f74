"""Events recorded from Segment's real server libraries pass the Spec check clean.

The files under sdk_payloads/ were recorded by sdk_payloads/record/record.py
(see sdk_payloads/README.md); each is one event as the library sent it, its
batch's context and sentAt applied as Segment's API applies them.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandbox.spec import (
    MAX_EVENT_BYTES,
    event_size,
    event_warnings,
    json_size,
    normalise,
    validate_event,
)
from sandbox.tester.composer import check_text

NOW = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
CORPUS = Path(__file__).parent / "sdk_payloads"
# One folder per library and version; record/ holds the script that made them.
PAYLOADS = sorted(p for p in CORPUS.glob("*/*.json") if p.parent.name != "record")
LIBRARIES = sorted({path.parent.name for path in PAYLOADS})
# The only warnings a recorded event may carry (sdk_payloads/README.md): the
# numeric groupId and previousId that analytics-python and analytics-node pass on.
DOCUMENTED_WARNINGS = {
    ("group", "numeric_id", "groupId"),
    ("alias", "numeric_id", "previousId"),
}
# What Segment's pipeline sets whatever the client sent (README, "What the
# sandbox adds on the way").
SET_BY_SEGMENT = {"receivedAt", "timestamp", "originalTimestamp"}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_corpus_holds_every_call_of_three_libraries():
    assert [name.rsplit("-", 1)[0] for name in LIBRARIES] == [
        "analytics-node-classic",
        "analytics-node-next",
        "analytics-python",
    ]
    for library in LIBRARIES:
        types = {_load(path)["type"] for path in CORPUS.glob(f"{library}/*.json")}
        assert types == {"identify", "track", "page", "screen", "group", "alias"}


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_recorded_event_passes_the_spec_check_clean(path):
    event = _load(path)
    assert validate_event(event) == []
    assert validate_event(normalise(event, now=NOW)) == []
    warnings = {(event["type"], w.code, w.path) for w in event_warnings(event)}
    assert warnings <= DOCUMENTED_WARNINGS


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_composer_and_the_send_agree_on_a_recorded_event(path):
    text = path.read_text(encoding="utf-8")
    check = check_text(text)
    assert check.json_error is None
    assert check.problems == validate_event(normalise(_load(path), now=NOW)) == []


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_normalise_keeps_what_the_library_sent(path):
    event = _load(path)
    delivered = normalise(event, now=NOW)
    for name, value in event.items():
        if name not in SET_BY_SEGMENT:
            assert delivered[name] == value, name
    assert delivered["channel"] == "server"
    assert delivered["version"] == 2


@pytest.mark.parametrize("library", LIBRARIES)
def test_each_library_sent_ids_as_the_issue_says(library):
    events = {path.name: _load(path) for path in CORPUS.glob(f"{library}/*.json")}
    [group] = [e for e in events.values() if e["type"] == "group"]
    [alias] = [e for e in events.values() if e["type"] == "alias"]
    assert group["groupId"] == 999
    assert alias["previousId"] == 111
    anonymous = [e for e in events.values() if e.get("anonymousId")]
    assert [e["userId"] for e in anonymous] == [None]


@pytest.mark.parametrize("library", LIBRARIES)
def test_each_library_sent_an_event_just_under_32_kb(library):
    sizes = {
        path.name: (event_size(event), json_size(normalise(event, now=NOW)))
        for path in CORPUS.glob(f"{library}/*.json")
        for event in [_load(path)]
    }
    as_sent, delivered = max(sizes.values())
    # Just under the limit as the library sent it, over it with what Segment adds.
    assert MAX_EVENT_BYTES - 64 < as_sent <= MAX_EVENT_BYTES
    assert delivered > MAX_EVENT_BYTES
