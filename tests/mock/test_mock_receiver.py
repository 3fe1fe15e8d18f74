"""The mock endpoint as a real server answers it: the plain ASGI front ahead of
Django (sandbox.mock.receiver), which must record and answer exactly as the
Django view does (tests/mock/test_mock_receive.py covers the view)."""

import base64
import http.client
import io
import json
import time

import pytest
from django.core.handlers.asgi import ASGIRequest

from sandbox.mock.answers import (
    API_KEY_MISMATCH,
    BODY_TOO_LARGE,
    METHOD_NOT_ALLOWED,
    SUCCESS_BODY,
    UNKNOWN_ENDPOINT,
)
from sandbox.mock.receiver import DISALLOWED_HOST
from sandbox.mock.services import OVERSIZED_BODY_NOTE
from tests.hostile.corpus import EVENTS
from tests.server import Server

pytestmark = pytest.mark.slow

API_KEY = "receiver-key"
BASIC = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()
EVENT = b'{"type":"track","event":"Signed Up","userId":"u","messageId":"m-1"}'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("receiver"))
    running.env["SANDBOX_ENGINE"] = "off"
    running.prepare()
    running.query(
        "UPDATE mock_mockendpoint SET api_key = ? WHERE slug = 'demo'", API_KEY
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def stored(server):
    """The requests the demo mock records from here on: (method, headers, body,
    status, response body) of each, oldest first."""
    [(start,)] = server.query("SELECT coalesce(max(id), 0) FROM mock_mockrequest")

    def stored():
        rows = server.query(
            "SELECT method, headers, body, response_status, response_body "
            "FROM mock_mockrequest WHERE id > ? ORDER BY id",
            start,
        )
        return [(m, json.loads(h), b, s, r) for m, h, b, s, r in rows]

    return stored


def _request(server, method, path, body=b"", headers=()):
    """One request with exactly these headers (http.client adds Host and, for a
    body, Content-Length, unless given): status, headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        names = {name.lower() for name, _ in headers}
        connection.putrequest(
            method, path, skip_host="host" in names, skip_accept_encoding=True
        )
        for name, value in headers:
            connection.putheader(name, value)
        if body and "content-length" not in names:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _deliver(server, headers, path="/mock/demo/"):
    """POST the event to the demo mock with exactly these headers."""
    return _request(server, "POST", path, EVENT, headers)


def test_a_delivery_is_recorded_and_answered(server, stored):
    status, headers, body = _deliver(
        server, [("Content-Type", "application/json"), ("Authorization", BASIC)]
    )
    assert status == 200
    assert body.decode() == SUCCESS_BODY
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    [(method, _, recorded_body, recorded_status, answer)] = stored()
    assert (method, recorded_body, recorded_status, answer) == (
        "POST",
        EVENT.decode(),
        200,
        SUCCESS_BODY,
    )


def test_the_url_without_its_slash_is_the_same_endpoint(server, stored):
    status, _, _ = _deliver(server, [("Authorization", BASIC)], path="/mock/demo")
    assert status == 200
    assert len(stored()) == 1


def _django_headers(raw) -> list[tuple[str, str]]:
    """What Django's own request object lists as these headers."""
    scope = {"type": "http", "method": "POST", "path": "/", "headers": raw}
    return list(ASGIRequest(scope, io.BytesIO()).headers.items())


def test_headers_are_recorded_as_sent_in_django_s_words(server, stored):
    sent = [
        ("Host", f"127.0.0.1:{server.port}"),
        ("user-agent", "Segment.io/1.0"),
        ("X-Segment-Settings", "e30="),
        ("Authorization", BASIC),
        ("x-repeated", "one"),
        ("Content-Type", "application/json"),
        ("X-Repeated", "two"),
        ("X_Spoofed", "dropped, as Django drops it"),
    ]
    assert _deliver(server, sent)[0] == 200
    [(_, recorded, _, _, _)] = stored()
    raw = [(n.lower().encode(), v.encode()) for n, v in sent]
    raw.append((b"content-length", str(len(EVENT)).encode()))
    assert [tuple(pair) for pair in recorded] == _django_headers(raw)
    assert ["X-Repeated", "one,two"] in recorded
    assert not any(name.startswith("X_") or name == "X-Spoofed" for name, _ in recorded)


def test_a_wrong_key_is_answered_401_and_recorded(server, stored):
    status, _, body = _deliver(server, [("Authorization", "Basic d3Jvbmc6")])
    assert status == 401
    assert json.loads(body) == {"message": API_KEY_MISMATCH}
    assert [row[3] for row in stored()] == [401]


def test_other_methods_are_refused_in_json(server, stored):
    for method in ("GET", "PUT", "DELETE"):
        status, headers, body = _request(server, method, "/mock/demo/")
        assert status == 405
        assert headers["Allow"] == "POST"
        assert json.loads(body) == {"message": METHOD_NOT_ALLOWED.format(method=method)}
    assert stored() == []


def test_an_unknown_slug_is_answered_404_in_json(server, stored):
    status, _, body = _request(server, "POST", "/mock/nobody/", EVENT)
    assert status == 404
    assert json.loads(body) == {"message": UNKNOWN_ENDPOINT.format(slug="nobody")}
    assert stored() == []


def test_a_path_that_is_no_slug_is_left_to_django(server, stored):
    status, headers, _ = _request(server, "POST", "/mock/not.a.slug/", EVENT)
    assert status == 404
    assert headers["Content-Type"].startswith("text/html")
    assert stored() == []


def test_another_host_name_is_refused_and_nothing_recorded(server, stored):
    """As Django refuses its pages to a name it does not serve (DNS rebinding)."""
    status, _, body = _deliver(
        server, [("Host", "attacker.example:8000"), ("Authorization", BASIC)]
    )
    assert status == 400
    assert json.loads(body) == {
        "message": DISALLOWED_HOST.format(host="attacker.example:8000")
    }
    assert stored() == []


@pytest.mark.parametrize("announced", [True, False], ids=["announced", "chunked"])
def test_an_oversized_body_is_refused_413_and_its_size_recorded(
    server, stored, announced
):
    size = 3 * 1024 * 1024
    if announced:
        status, _, body = _request(
            server, "POST", "/mock/demo/", b"x" * size, [("Authorization", BASIC)]
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        chunks = (b"x" * (256 * 1024) for _ in range(12))
        connection.request(
            "POST",
            "/mock/demo/",
            body=chunks,
            headers={"Authorization": BASIC},
            encode_chunked=True,
        )
        response = connection.getresponse()
        status, body = response.status, response.read()
        connection.close()
    assert status == 413
    assert json.loads(body) == {
        "message": BODY_TOO_LARGE.format(size=size, limit="2.5 MB")
    }
    [(_, _, recorded_body, recorded_status, _)] = stored()
    assert (recorded_body, recorded_status) == (
        OVERSIZED_BODY_NOTE.format(size=size),
        413,
    )


def test_the_configured_delay_is_kept(server, stored):
    server.query("UPDATE mock_mockendpoint SET delay_ms = 400 WHERE slug = 'demo'")
    try:
        started = time.monotonic()
        status, _, _ = _deliver(server, [("Authorization", BASIC)])
        assert status == 200
        assert time.monotonic() - started >= 0.4
    finally:
        server.query("UPDATE mock_mockendpoint SET delay_ms = 0 WHERE slug = 'demo'")


def test_every_hostile_body_is_answered_in_json_and_recorded(server, stored):
    for case in EVENTS:
        status, _, body = _request(
            server,
            "POST",
            "/mock/demo/",
            case.text.encode("utf-8", "surrogatepass"),
            [("Authorization", BASIC), ("Content-Type", "application/json")],
        )
        assert status < 500, case.name
        answer = json.loads(body)
        assert "message" in answer or answer == {"success": True}, case.name
    assert len(stored()) == len(EVENTS)
