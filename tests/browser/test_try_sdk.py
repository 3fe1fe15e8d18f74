"""The real analytics.js on "Try the SDK": its calls reach a subscription."""

import json
import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.receiver import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WRITE_KEY = "try-the-sdk-write-key"
API_KEY = "try-the-sdk-api-key"


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def source(server, receiver):
    server.manage(
        "subscription",
        "create",
        "SDK receiver",
        "--endpoint",
        receiver.url("/sdk"),
        "--api-key",
        API_KEY,
    )
    server.manage(
        "source",
        "create",
        "Browser source",
        "--to",
        "SDK receiver",
        "--write-key",
        WRITE_KEY,
    )
    return WRITE_KEY


def _received(receiver: Receiver, message_id: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in list(receiver.received):
            if request.path == "/sdk" and request.json.get("messageId") == message_id:
                return request
        time.sleep(0.1)
    raise AssertionError(f"{message_id} did not reach the receiver")


def test_page_track_and_identify_reach_the_subscription(server, page, source, receiver):
    sent_to = []
    page.on("request", lambda request: sent_to.append(request.url))
    page.goto(server.url + "/sources/try/")
    page.select_option("#try-sdk-source", label="Browser source")
    expect(page.locator("[data-sdk-status]")).to_contain_text("ready", timeout=15_000)

    page.fill("#track-event", "Checkout Started")
    page.fill("#track-properties", '{"order_id": "o-1", "value": 12.5}')
    page.click("form[data-call=track] button")
    page.click("form[data-call=page] button")
    page.fill("#identify-user", "browser-user-1")
    page.click("form[data-call=identify] button")
    expect(page.locator("[data-sent]")).to_have_count(3, timeout=15_000)

    ids = page.locator("[data-message-id]").evaluate_all(
        "links => links.map(link => link.dataset.messageId)"
    )
    # Newest first: identify, page, track.
    identify, page_call, track = (_received(receiver, m) for m in ids)
    assert track.json["type"] == "track"
    assert track.json["event"] == "Checkout Started"
    assert track.json["properties"] == {"order_id": "o-1", "value": 12.5}
    assert page_call.json["type"] == "page"
    assert page_call.json["name"] == "Getting Started"
    assert identify.json["type"] == "identify"
    assert identify.json["userId"] == "browser-user-1"
    for request in (track, page_call, identify):
        event = request.json
        # The real library's own fields, and Segment's enrichment on the way.
        assert event["context"]["library"]["name"] == "analytics.js"
        assert event["messageId"].startswith("ajs-next-")
        assert event["context"]["ip"] == "127.0.0.1"
        assert "writeKey" not in event
        assert event["receivedAt"].endswith("Z")
        assert request.header("Authorization").startswith("Basic ")
    # The library took its settings and sent its calls to this sandbox only.
    assert server.url + f"/v1/projects/{WRITE_KEY}/settings" in sent_to
    assert {url.rsplit("/", 1)[-1] for url in sent_to if "/v1/" in url} >= {
        "t",
        "p",
        "i",
        "settings",
    }


def test_a_call_with_invalid_json_is_not_sent_and_says_why(server, page, source):
    page.goto(server.url + "/sources/try/")
    page.select_option("#try-sdk-source", label="Browser source")
    expect(page.locator("[data-sdk-status]")).to_contain_text("ready", timeout=15_000)
    page.fill("#track-properties", "{not json")
    page.press("#track-event", "Enter")
    expect(page.locator("[data-sdk-log] li").first).to_contain_text(
        "not sent: Properties (JSON):"
    )
    expect(page.locator("[data-sent]")).to_have_count(0)


def test_the_settings_answer_analytics_js_loads(server, source):
    with urllib.request.urlopen(
        server.url + f"/v1/projects/{WRITE_KEY}/settings"
    ) as response:
        document = json.load(response)
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    segment_io = document["integrations"]["Segment.io"]
    assert list(document["integrations"]) == ["Segment.io"]
    assert segment_io["apiKey"] == WRITE_KEY
    host = server.url.removeprefix("http://")
    assert (segment_io["protocol"], segment_io["apiHost"]) == ("http", host + "/v1")
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(server.url + "/v1/projects/nobody-has-this/settings")
    with unknown.value as answer:
        assert answer.code == 404
        assert "python manage.py source create" in json.load(answer)["message"]


def test_only_the_library_s_own_bundles_are_served(server):
    with urllib.request.urlopen(
        server.url + "/analytics-next/bundles/407.bundle.61efa1acb302134c434b.js"
    ) as response:
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert b"webpackChunk" in response.read()
    for name in ("index.js", "..%2F..%2Fsettings.py", "README.md"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(server.url + "/analytics-next/bundles/" + name)
        with refused.value as answer:
            assert answer.code == 404
