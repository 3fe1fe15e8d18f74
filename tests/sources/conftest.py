"""A real sandbox server with sources wired to a real local receiver, shared by
the tracking API tests (each test tells its events apart by their own ids)."""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from tests.receiver import Receiver
from tests.server import Server

SDK_WRITE_KEY = "sdk-write-key-0001"
TWO_WRITE_KEY = "two-subscriptions-write-key"
RECEIVER_API_KEY = "receiver-api-key"
RECEIVER_SETTINGS = {"region": "eu", "sendRevenue": True}


@pytest.fixture(scope="session")
def live_receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def live(tmp_path_factory, live_receiver):
    """The server, a subscription to the receiver, and two sources."""
    server = Server(tmp_path_factory.mktemp("sources-live"))
    server.prepare()
    server.manage(
        "subscription",
        "create",
        "Receiver",
        "--endpoint",
        live_receiver.url("/ok"),
        "--api-key",
        RECEIVER_API_KEY,
        "--settings",
        json.dumps(RECEIVER_SETTINGS),
    )
    server.manage(
        "subscription",
        "create",
        "Receiver two",
        "--endpoint",
        live_receiver.url("/ok"),
        "--api-key",
        "second-key",
    )
    made = server.manage(
        "source",
        "create",
        "SDK source",
        "--to",
        "Receiver",
        "--write-key",
        SDK_WRITE_KEY,
    )
    assert made.stdout.splitlines()[-1] == SDK_WRITE_KEY
    server.manage(
        "source",
        "create",
        "Two subscriptions",
        "--to",
        "Receiver",
        "--to",
        "Receiver two",
        "--write-key",
        TWO_WRITE_KEY,
    )
    server.start()
    yield server
    server.stop()


def post(
    url: str,
    body: bytes | str | dict,
    *,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request: (status, headers, body), errors included."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    request = urllib.request.Request(
        url,
        data=body,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def received_by_user(receiver: Receiver, user_id: str) -> list:
    return [
        r
        for r in list(receiver.received)
        if json.loads(r.body).get("userId") == user_id
        or json.loads(r.body).get("anonymousId") == user_id
    ]


def ingested(server: Server, where: str, *params) -> list[tuple]:
    """(status, reason, payload) of the server's ingested events, oldest first."""
    rows = server.query(
        "SELECT e.status, e.reason, e.payload FROM sources_ingestedevent e "
        f"WHERE {where} ORDER BY e.id",
        *params,
    )
    return [(status, reason, json.loads(payload)) for status, reason, payload in rows]
