"""The tracking API's reading and enrichment rules, without a server (pure)."""

import base64
import gzip
import json
from datetime import UTC, datetime

import pytest

from sandbox.sources import tracking
from sandbox.sources.api import endpoint_of
from sandbox.spec import json_text

RECEIVED = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _read(body, *, endpoint="track", encoding="", authorization=""):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return tracking.read_body(
        raw, endpoint=endpoint, content_encoding=encoding, authorization=authorization
    )


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/v1/track", "track"),
        ("/v1/t", "track"),
        ("/v1/i", "identify"),
        ("/v1/p", "page"),
        ("/v1/s", "screen"),
        ("/v1/g", "group"),
        ("/v1/a", "alias"),
        ("/v1/b", tracking.BATCH),
        ("/v1/batch", tracking.BATCH),
        ("/v1/import", tracking.BATCH),
        ("/v1/import/", tracking.BATCH),
        ("/v1/m", tracking.METRICS),
        ("/v1/projects/abc/settings", None),
        ("/v1/", None),
        ("/send/", None),
    ],
)
def test_endpoint_of_knows_every_path_the_sdks_use(path, endpoint):
    assert endpoint_of(path) == endpoint


def test_basic_auth_user_is_the_write_key_with_or_without_the_colon():
    assert (
        tracking.basic_auth_user("Basic " + base64.b64encode(b"wk:").decode()) == "wk"
    )
    assert tracking.basic_auth_user("Basic " + base64.b64encode(b"wk").decode()) == "wk"
    assert tracking.basic_auth_user("Bearer token") == ""
    assert tracking.basic_auth_user("Basic not base64!") == ""


def test_read_body_takes_the_key_from_the_body_or_basic_auth():
    assert _read({"writeKey": "body-key"}).write_key == "body-key"
    basic = "Basic " + base64.b64encode(b"auth-key:").decode()
    assert _read({}, authorization=basic).write_key == "auth-key"
    # Both given: either is enough; Basic is read first.
    assert _read({"writeKey": "body-key"}, authorization=basic).write_key == "auth-key"
    assert _read({}).refusal.code == tracking.NO_WRITE_KEY


def test_read_body_unpacks_gzip():
    raw = gzip.compress(json.dumps({"writeKey": "k", "event": "x"}).encode())
    read = _read(raw, encoding="gzip")
    assert read.refusal is None
    assert json.loads(read.text)["event"] == "x"


def test_read_body_refuses_a_gzip_bomb_without_unpacking_it_all():
    bomb = gzip.compress(b" " * (50 * 1024 * 1024))
    read = _read(bomb, endpoint=tracking.BATCH, encoding="gzip")
    assert read.refusal.code == tracking.BATCH_TOO_LARGE


def test_read_body_refuses_broken_gzip_and_unknown_encodings():
    assert _read(b"not gzip", encoding="gzip").refusal.code == tracking.INVALID_JSON
    assert _read({"writeKey": "k"}, encoding="br").refusal.code == tracking.INVALID_JSON


@pytest.mark.parametrize(
    "text",
    [
        b'{"writeKey": "k", "n": NaN}',
        b'{"writeKey": "k", "n": Infinity}',
        b'{"writeKey": "k", "n": 1e400}',
        b'{"writeKey": "k", "s": "\\ud800"}',
        b'{"writeKey": "k", "s": "\\udc00x"}',
        b'{"writeKey": "k", "n": ' + b"9" * 400 + b"}",
        b'{"writeKey": "k", "deep": ' + b"[" * 150 + b"]" * 150 + b"}",
        b'{"writeKey": "k"',
        b"\xff\xfe",
    ],
)
def test_read_body_refuses_what_json_or_the_sandbox_cannot_carry(text):
    assert _read(text).refusal.code == tracking.INVALID_JSON


def test_read_body_accepts_paired_surrogates_and_ordinary_numbers():
    read = _read(b'{"writeKey": "k", "s": "\\ud83d\\ude00", "n": 1.5e3, "i": 7}')
    assert read.refusal is None


def test_read_body_size_limits():
    assert _read({"writeKey": "k", "p": "x" * 33_000}).refusal.code == (
        tracking.EVENT_TOO_LARGE
    )
    batch = {"writeKey": "k", "batch": [{"p": "x" * 20_000} for _ in range(30)]}
    read = _read(batch, endpoint=tracking.BATCH)
    assert read.refusal.code == tracking.BATCH_TOO_LARGE
    within = {"writeKey": "k", "batch": [{"p": "x" * 20_000} for _ in range(3)]}
    assert _read(within, endpoint=tracking.BATCH).refusal is None


def test_read_body_counts_but_does_not_refuse_over_2500_events():
    batch = {"writeKey": "k", "batch": [{}] * 2_501}
    read = _read(batch, endpoint=tracking.BATCH)
    assert read.refusal is None
    assert read.event_count == 2_501


def test_prepared_applies_the_batch_fields_and_drops_the_write_key():
    event = tracking.prepared(
        {
            "type": "track",
            "writeKey": "k",
            "context": {"locale": "fr-FR"},
            "integrations": {"All": False},
        },
        endpoint=tracking.BATCH,
        shared={
            "context": {"locale": "en-US", "library": {"name": "x"}},
            "integrations": {"All": True, "Mixpanel": False},
            "sentAt": "2026-01-01T00:00:00.000Z",
        },
        client_ip="127.0.0.1",
    )
    assert "writeKey" not in event
    assert event["context"] == {"locale": "fr-FR", "library": {"name": "x"}}
    assert event["integrations"] == {"All": False, "Mixpanel": False}
    assert event["sentAt"] == "2026-01-01T00:00:00.000Z"


def test_prepared_keeps_the_events_own_sent_at():
    event = tracking.prepared(
        {"type": "track", "sentAt": "2026-01-01T00:00:05.000Z"},
        endpoint=tracking.BATCH,
        shared={"sentAt": "2026-01-01T00:00:00.000Z"},
        client_ip="",
    )
    assert event["sentAt"] == "2026-01-01T00:00:05.000Z"


def test_prepared_takes_the_type_from_the_path():
    event = tracking.prepared({}, endpoint="page", shared={}, client_ip="")
    assert event["type"] == "page"


@pytest.mark.parametrize(
    ("context", "ip", "expected"),
    [
        ({"library": {"name": "analytics.js"}}, "10.0.0.7", "10.0.0.7"),
        ({"library": {"name": "analytics-ios"}}, "10.0.0.7", "10.0.0.7"),
        ({"library": {"name": "analytics-python"}}, "10.0.0.7", None),
        ({"direct": True}, "10.0.0.7", "10.0.0.7"),
        ({"library": {"name": "analytics.js"}, "ip": "1.2.3.4"}, "10.0.0.7", "1.2.3.4"),
        ({"library": {"name": "analytics.js"}}, "::1", None),
    ],
    ids=["browser", "mobile", "server", "direct", "kept", "ipv6"],
)
def test_prepared_adds_the_callers_ip_where_segment_does(context, ip, expected):
    event = tracking.prepared(
        {"type": "track", "context": context},
        endpoint=tracking.BATCH,
        shared={},
        client_ip=ip,
    )
    assert event["context"].get("ip") == expected


def test_enrich_keeps_the_message_id_and_corrects_the_timestamp():
    event = tracking.enrich(
        {
            "type": "track",
            "messageId": "m-1",
            "timestamp": "2025-06-01T10:00:00.000Z",
            "sentAt": "2025-06-01T10:00:10.000Z",
        },
        received_at=RECEIVED,
        project_id="Proj",
    )
    assert event["messageId"] == "m-1"
    assert event["receivedAt"] == "2026-01-01T12:00:00.000Z"
    assert event["originalTimestamp"] == "2025-06-01T10:00:00.000Z"
    # receivedAt - (sentAt - originalTimestamp)
    assert event["timestamp"] == "2026-01-01T11:59:50.000Z"
    assert event["projectId"] == "Proj"


def test_enrich_makes_a_message_id_only_when_missing():
    event = tracking.enrich({"type": "track"}, received_at=RECEIVED, project_id="P")
    assert event["messageId"]
    assert event["timestamp"] == event["receivedAt"]


@pytest.mark.parametrize(
    ("depth", "refused"),
    [(json_text.MAX_DEPTH, False), (json_text.MAX_DEPTH + 1, True)],
    ids=["at-the-limit", "past-it"],
)
def test_nesting_is_read_to_the_limit_and_refused_past_it(depth, refused):
    # writeKey and batch are the top level's; the rest nests under one item.
    nested = "1"
    for _ in range(depth - 3):
        nested = '{"a": ' + nested + "}"
    raw = '{"writeKey": "k", "batch": [{"type": "track", "p": ' + nested + "}]}"
    read = tracking.read_body(
        raw.encode(), endpoint=tracking.BATCH, content_encoding="", authorization=""
    )
    assert (read.refusal is not None) is refused
