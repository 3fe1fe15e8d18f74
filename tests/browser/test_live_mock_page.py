"""A mock endpoint's page shows each request it records as it arrives: no polling."""

import base64
import json
import time
import urllib.parse
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

API_KEY = "live-mock-key"
REQUESTS = 3
# Longer than two periods of the 2 s poll this page used to make.
WATCHED_SECONDS = 4.5


def _mock_endpoint(server) -> str:
    slug = f"live-{uuid.uuid4().hex[:8]}"
    server.shell(
        "from sandbox.mock.services import mock_endpoint_create\n"
        f"mock_endpoint_create(slug={slug!r}, name={slug!r}, api_key={API_KEY!r})"
    )
    return slug


def _deliver(server, slug: str, message_id: str) -> None:
    credentials = base64.b64encode(f"{API_KEY}:".encode()).decode()
    event = {"type": "track", "event": "Live", "messageId": message_id}
    request = urllib.request.Request(
        f"{server.url}/mock/{slug}/",
        data=json.dumps(event).encode(),
        headers={
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def test_recorded_requests_appear_live_and_open_details_stay_open(server, page):
    slug = _mock_endpoint(server)
    gets: list[str] = []
    page.on(
        "request",
        lambda request: (
            gets.append(urllib.parse.urlsplit(request.url).path)
            if request.method == "GET" and request.resource_type == "xhr"
            else None
        ),
    )
    opened = time.monotonic()
    page.goto(f"{server.url}/mocks/{slug}/")
    expect(page.locator("#mock-requests-empty")).to_be_visible()
    # The one catch-up once the socket is open: nothing changed, so 204.
    deadline = time.monotonic() + 10
    while not gets and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert gets == [f"/mocks/{slug}/"]

    articles = page.locator("#mock-request-list .mock-request")
    latencies = []
    for number in range(REQUESTS):
        sent = time.monotonic()
        _deliver(server, slug, f"live-{number}")
        expect(articles).to_have_count(number + 1)
        latencies.append(time.monotonic() - sent)
        expect(articles.first).to_contain_text(f"live-{number}")
        if number == 0:
            articles.first.locator("details summary").first.click()
    expect(page.locator("#mock-requests-empty")).to_have_count(0)
    expect(page.locator("#mock-requests-summary")).to_contain_text(
        f"{REQUESTS} recorded"
    )
    # The first request's headers, opened by the user, stayed open as others came.
    assert articles.last.locator("details").first.get_attribute("open") is not None
    assert max(latencies) < 1.0, latencies

    page.wait_for_timeout(max(0, WATCHED_SECONDS - (time.monotonic() - opened)) * 1000)
    assert gets == [f"/mocks/{slug}/"]
