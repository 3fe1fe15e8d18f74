"""Bad input at the tracking API, answered as Segment answers it, nothing
forwarded that Segment would not forward, and every event visible as dropped
with its reason."""

import base64
import gzip
import json
import uuid

import pytest

from sandbox.sources import tracking
from tests.sources.conftest import (
    SDK_WRITE_KEY,
    ingested,
    post,
    received_by_user,
    wait_for,
)

pytestmark = pytest.mark.slow

SUCCESS = {"success": True}


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _track(user: str, **fields) -> dict:
    return {"type": "track", "event": "Bad Input", "userId": user, **fields}


def _dropped(live, user: str, count: int = 1) -> list[tuple]:
    rows = wait_for(
        lambda: (
            rows
            if len(rows := ingested(live, "e.user_id = ?", user)) >= count
            else None
        )
    )
    assert rows, f"no ingested event for {user}"
    return rows


def _refused_rows(live, marker: str) -> list[tuple]:
    """Requests refused at the door are stored with what could be read of them."""
    return wait_for(
        lambda: ingested(live, "e.payload LIKE ?", f"%{marker}%"), timeout=20
    )


def _body(answer: tuple) -> dict:
    return json.loads(answer[2])


def test_unknown_write_key_is_answered_200_and_dropped(live, live_receiver):
    user = f"unknown-key-{uuid.uuid4()}"
    answer = post(live.url + "/v1/track", _track(user, writeKey="nobody-has-this"))
    assert answer[0] == 200
    assert _body(answer) == SUCCESS
    [(status, reason, payload)] = _dropped(live, user)
    assert status == "dropped"
    assert reason.startswith("Unknown write key")
    # The key is not echoed in full, and not kept in the event.
    assert "nobody-has-this" not in reason
    assert "writeKey" not in payload
    assert received_by_user(live_receiver, user) == []


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"writeKey": ""}, {}),
        ({}, {}),
        ({"writeKey": "   "}, {}),
        ({}, _basic("")),
    ],
    ids=["empty", "missing", "blank", "empty-basic"],
)
def test_empty_write_key_is_400(live, live_receiver, body, headers):
    user = f"no-key-{uuid.uuid4()}"
    answer = post(live.url + "/v1/track", {**_track(user), **body}, headers=headers)
    assert answer[0] == 400
    assert _body(answer) == {
        "code": tracking.NO_WRITE_KEY,
        "message": tracking.WRITE_KEY_MISSING,
        "error": tracking.WRITE_KEY_MISSING,
    }
    [(status, reason, _)] = _refused_rows(live, user)
    assert (status, reason) == ("dropped", tracking.WRITE_KEY_MISSING)
    assert received_by_user(live_receiver, user) == []


def test_basic_auth_alone_is_enough(live, live_receiver):
    user = f"basic-{uuid.uuid4()}"
    answer = post(live.url + "/v1/t", _track(user), headers=_basic(SDK_WRITE_KEY))
    assert answer[0] == 200
    assert wait_for(lambda: received_by_user(live_receiver, user))


def test_event_over_32_kb_is_400(live, live_receiver):
    user = f"big-{uuid.uuid4()}"
    event = _track(user, writeKey=SDK_WRITE_KEY, properties={"blob": "x" * 40_000})
    answer = post(live.url + "/v1/track", event)
    assert answer[0] == 400
    assert _body(answer)["code"] == tracking.EVENT_TOO_LARGE
    [(status, reason, _)] = _refused_rows(live, user)
    assert status == "dropped"
    assert "32 KB" in reason
    assert received_by_user(live_receiver, user) == []


def test_event_over_32_kb_inside_a_batch_is_400(live, live_receiver):
    user = f"big-in-batch-{uuid.uuid4()}"
    body = {
        "writeKey": SDK_WRITE_KEY,
        "batch": [_track(user), _track(user, properties={"blob": "x" * 40_000})],
    }
    answer = post(live.url + "/v1/batch", body)
    assert answer[0] == 400
    assert _body(answer)["code"] == tracking.EVENT_TOO_LARGE
    assert "Event 2 of the batch" in _body(answer)["message"]
    assert received_by_user(live_receiver, user) == []


def test_batch_over_500_kb_is_400(live, live_receiver):
    user = f"huge-batch-{uuid.uuid4()}"
    events = [_track(user, properties={"blob": "x" * 20_000}) for _ in range(30)]
    body = json.dumps({"batch": events})
    assert len(body) > 600_000
    answer = post(live.url + "/v1/batch", body, headers=_basic(SDK_WRITE_KEY))
    assert answer[0] == 400
    assert _body(answer)["code"] == tracking.BATCH_TOO_LARGE
    # Shown with the start of what arrived, on the source its key names.
    [(status, reason, _)] = _refused_rows(live, user)
    assert (status, reason) == (
        "dropped",
        tracking.BATCH_OVER_LIMIT.format(limit=tracking.MAX_BATCH_BYTES),
    )
    assert received_by_user(live_receiver, user) == []


def test_batch_of_2501_events_is_answered_200_and_every_event_dropped(
    live, live_receiver
):
    user = f"many-{uuid.uuid4()}"
    events = [{"type": "track", "event": "e", "userId": user} for _ in range(2_501)]
    answer = post(live.url + "/v1/batch", {"writeKey": SDK_WRITE_KEY, "batch": events})
    assert answer[0] == 200
    assert _body(answer) == SUCCESS
    rows = _dropped(live, user, count=2_501)
    assert len(rows) == 2_501
    assert {status for status, _, _ in rows} == {"dropped"}
    assert {reason for _, reason, _ in rows} == {
        tracking.TOO_MANY_EVENTS.format(count=2_501)
    }
    assert received_by_user(live_receiver, user) == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"writeKey": "k", "type": "track", ', "Invalid JSON at line 1"),
        ('{"writeKey": "k", "event": NaN, "userId": "MARK"}', "NaN is not a JSON"),
        ('{"writeKey": "k", "event": "\\ud800", "userId": "MARK"}', "surrogate"),
        ('["MARK"]', "must be a JSON object"),
    ],
    ids=["truncated", "nan", "lone-surrogate", "array"],
)
def test_invalid_json_is_400(live, live_receiver, text, fragment):
    mark = f"invalid-{uuid.uuid4()}"
    text = text.replace("MARK", mark) if "MARK" in text else text + f'"{mark}"'
    answer = post(live.url + "/v1/track", text, headers={"Content-Type": "text/plain"})
    assert answer[0] == 400
    body = _body(answer)
    assert body["code"] == tracking.INVALID_JSON
    assert fragment in body["message"]
    assert body["error"] == body["message"]
    [(status, reason, _)] = _refused_rows(live, mark)
    assert status == "dropped"
    assert fragment in reason


def test_unknown_type_inside_a_batch_drops_that_event_only(live, live_receiver):
    user = f"mixed-{uuid.uuid4()}"
    body = {
        "writeKey": SDK_WRITE_KEY,
        "batch": [
            _track(user, event="First"),
            {"type": "explode", "userId": user},
            "not an event",
            {"type": "identify"},
            _track(user, event="Last"),
        ],
    }
    answer = post(live.url + "/v1/batch", body)
    assert answer[0] == 200
    assert wait_for(lambda: len(received_by_user(live_receiver, user)) == 2)
    names = sorted(r.json["event"] for r in received_by_user(live_receiver, user))
    assert names == ["First", "Last"]
    request_rows = wait_for(
        lambda: (
            rows
            if len(
                rows := ingested(
                    live,
                    "e.request_number = (SELECT request_number FROM "
                    "sources_ingestedevent WHERE user_id = ? LIMIT 1)",
                    user,
                )
            )
            == 5
            else None
        )
    )
    statuses = [(status, reason.split(".")[0]) for status, reason, _ in request_rows]
    assert statuses == [
        ("accepted", ""),
        (
            "dropped",
            "Unknown type 'explode': the tracking API takes identify, track, page, "
            "screen, group, alias",
        ),
        ("dropped", "Not an event: a batch item must be a JSON object, not a string"),
        ("dropped", "The event has neither a userId nor an anonymousId"),
        ("accepted", ""),
    ]


def test_gzip_bomb_is_refused_without_unpacking_it(live, live_receiver):
    bomb = gzip.compress(b'{"batch": [' + b" " * (100 * 1024 * 1024) + b"]}")
    assert len(bomb) < 500 * 1024
    answer = post(
        live.url + "/v1/batch",
        bomb,
        headers={"Content-Encoding": "gzip", **_basic(SDK_WRITE_KEY)},
    )
    assert answer[0] == 400
    assert _body(answer)["code"] == tracking.BATCH_TOO_LARGE
    assert "unpacks to more than" in _body(answer)["message"]


def test_metrics_are_accepted_and_ignored(live):
    answer = post(
        live.url + "/v1/m",
        '{"series": [{"type": "Counter", "metric": "analytics_js.invoke"}]}',
        headers={"Content-Type": "text/plain"},
    )
    assert answer[0] == 200
    assert _body(answer) == SUCCESS
    assert live.query(
        "SELECT count(*) FROM sources_ingestedevent WHERE endpoint = 'metrics'"
    ) == [(0,)]


def test_cors_preflight_is_answered_for_any_origin(live):
    status, headers, _ = post(
        live.url + "/v1/t",
        b"",
        method="OPTIONS",
        headers={
            "Origin": "http://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "http://shop.example"
    allowed = headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert "POST" in headers["Access-Control-Allow-Methods"]


def test_the_api_sets_no_cookies_while_the_site_keeps_csrf(live):
    user = f"cookies-{uuid.uuid4()}"
    status, headers, _ = post(
        live.url + "/v1/track",
        _track(user, writeKey=SDK_WRITE_KEY),
        headers={"Cookie": "sessionid=abc; csrftoken=abc"},
    )
    assert status == 200
    assert "Set-Cookie" not in headers
    # The Event Tester's send still needs its CSRF token.
    status, _, _ = post(live.url + "/send/", b"payload=%7B%7D")
    assert status == 403


def test_an_analytics_js_request_is_enriched_with_the_callers_ip(live, live_receiver):
    """As analytics.js 1.84 sends: text/plain, Basic auth and writeKey in the body,
    a one-letter path, its own sentAt and _metadata."""
    user = f"ajs-{uuid.uuid4()}"
    event = {
        "type": "page",
        "name": "Pricing",
        "anonymousId": user,
        "userId": None,
        "writeKey": SDK_WRITE_KEY,
        "messageId": f"ajs-next-1767225600000-{uuid.uuid4()}",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "sentAt": "2026-01-01T00:00:00.250Z",
        "context": {"library": {"name": "analytics.js", "version": "npm:next-1.84.3"}},
        "_metadata": {"bundled": ["Segment.io"], "unbundled": []},
    }
    answer = post(
        live.url + "/v1/p",
        json.dumps(event),
        headers={"Content-Type": "text/plain", **_basic(SDK_WRITE_KEY)},
    )
    assert answer[0] == 200
    [request] = wait_for(lambda: received_by_user(live_receiver, user))
    delivered = request.json
    assert delivered["context"]["ip"] == "127.0.0.1"
    assert delivered["channel"] == "client"
    assert delivered["messageId"] == event["messageId"]
    assert delivered["_metadata"] == event["_metadata"]
    assert delivered["originalTimestamp"] == "2026-01-01T00:00:00.000Z"
    assert "writeKey" not in delivered


def test_a_clients_delete_is_dropped_and_never_forwarded(live, live_receiver):
    user = f"client-delete-{uuid.uuid4()}"
    body = {
        "writeKey": SDK_WRITE_KEY,
        "batch": [
            {"type": "delete", "userId": user, "messageId": f"del-{user}"},
            {"userId": user, "event": "No Type"},
            _track(user, event="Kept"),
        ],
    }
    answer = post(live.url + "/v1/batch", body)
    assert answer[0] == 200
    assert wait_for(lambda: received_by_user(live_receiver, user))
    rows = _dropped(live, user, count=3)
    assert [(status, reason) for status, reason, _ in rows] == [
        ("dropped", tracking.ITEM_DELETE),
        ("dropped", tracking.ITEM_NO_TYPE),
        ("accepted", ""),
    ]
    # What the source's debugger shows of a dropped item holds no write key.
    assert all("writeKey" not in payload for _, _, payload in rows)
    [received] = received_by_user(live_receiver, user)
    assert received.json["event"] == "Kept"


def test_a_single_event_over_the_read_limit_is_an_event_too_large(live):
    user = f"huge-single-{uuid.uuid4()}"
    event = _track(user, writeKey=SDK_WRITE_KEY, properties={"blob": "x" * 600_000})
    answer = post(live.url + "/v1/track", event)
    assert answer[0] == 400
    body = _body(answer)
    assert body["code"] == tracking.EVENT_TOO_LARGE
    assert body["message"] == tracking.EVENT_OVER_READ.format(
        read=tracking.MAX_BATCH_BYTES, limit=tracking.MAX_EVENT_BYTES
    )


def test_a_refused_body_is_filed_under_the_source_its_key_names(live):
    mark = f"refused-keyed-{uuid.uuid4()}"
    text = json.dumps({"writeKey": SDK_WRITE_KEY, "userId": mark, "event": "Sur"})
    text = text.replace('"Sur"', '"\\ud800"')
    answer = post(live.url + "/v1/track", text)
    assert answer[0] == 400
    assert _refused_rows(live, mark)
    [(event_id, source_name)] = live.query(
        "SELECT e.id, s.name FROM sources_ingestedevent e "
        "JOIN sources_source s ON s.id = e.source_id WHERE e.payload LIKE ?",
        f"%{mark}%",
    )
    assert source_name
    # Its page shows the start of the body with the write key masked.
    page = post(live.url + f"/sources/events/{event_id}/", b"", method="GET")
    assert page[0] == 200
    assert mark in page[2].decode()
    assert SDK_WRITE_KEY not in page[2].decode()


def test_an_event_dropped_before_it_is_read_keeps_the_type_its_path_names(live):
    user = f"untyped-unknown-key-{uuid.uuid4()}"
    answer = post(live.url + "/v1/t", {"writeKey": "nobody-has-this", "userId": user})
    assert answer[0] == 200
    [(status, _, payload)] = _dropped(live, user)
    assert status == "dropped"
    assert payload["type"] == "track"


@pytest.mark.parametrize("sent_at", ["", "garbage"], ids=["empty", "garbage"])
def test_a_sent_at_that_is_no_date_means_no_correction_not_a_dropped_batch(
    live, live_receiver, sent_at
):
    user = f"sent-at-{sent_at or 'empty'}-{uuid.uuid4()}"
    when = "2024-03-04T05:06:07.000Z"
    body = {
        "writeKey": SDK_WRITE_KEY,
        "sentAt": sent_at,
        "batch": [_track(user, timestamp=when), _track(user, timestamp=when)],
    }
    assert post(live.url + "/v1/batch", body)[0] == 200
    received = wait_for(
        lambda: r if len(r := received_by_user(live_receiver, user)) == 2 else None
    )
    for request in received:
        assert request.json["timestamp"] == when
        assert request.json["originalTimestamp"] == when
        assert "sentAt" not in request.json


def test_a_refused_body_never_shows_its_write_key(live):
    mark = f"truncated-{uuid.uuid4()}"
    text = '{"writeKey": "' + SDK_WRITE_KEY + '", "userId": "' + mark + '", "event"'
    answer = post(live.url + "/v1/track", text)
    assert answer[0] == 400
    assert _refused_rows(live, mark)
    [(event_id, event_type)] = live.query(
        "SELECT id, event_type FROM sources_ingestedevent WHERE payload LIKE ?",
        f"%{mark}%",
    )
    # Refused on its own path: a track, though it could not be read.
    assert event_type == "track"
    page = post(live.url + f"/sources/events/{event_id}/", b"", method="GET")
    assert page[0] == 200
    shown = page[2].decode()
    assert mark in shown
    assert SDK_WRITE_KEY not in shown


def test_a_gzipped_single_event_over_the_read_limit_is_an_event_too_large(live):
    event = _track("gzip-huge", writeKey=SDK_WRITE_KEY, properties={"x": "y" * 600_000})
    answer = post(
        live.url + "/v1/track",
        gzip.compress(json.dumps(event).encode()),
        headers={"Content-Encoding": "gzip"},
    )
    assert answer[0] == 400
    assert _body(answer)["code"] == tracking.EVENT_TOO_LARGE
