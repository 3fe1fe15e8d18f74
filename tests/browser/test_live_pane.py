"""A delivery's pane follows its attempts over the websocket: no HTTP polling."""

import json
import re
import urllib.parse
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect

from tests.server import composer_send

pytestmark = [pytest.mark.browser, pytest.mark.slow]

API_KEY = "flaky-key-1234"
# 28 s and 56 s of Segment's backoff, twenty times faster: three attempts over
# about four seconds, long enough for a 1 s poll to have shown itself several times.
TIME_SCALE = 20
ATTEMPTS_TIMEOUT_MS = 20_000


def _flaky_subscription(server) -> tuple[int, str]:
    """A subscription whose mock fails each event's first two attempts."""
    name = f"flaky-{uuid.uuid4().hex[:8]}"
    code = f"""
from sandbox.mock.services import mock_endpoint_create
from sandbox.subscriptions.services import subscription_create
mock_endpoint_create(slug={name!r}, name={name!r}, api_key={API_KEY!r},
                     fail_first_n=2, fail_status=500)
subscription = subscription_create(
    name={name!r}, endpoint_url={server.url + "/mock/" + name + "/"!r},
    api_key={API_KEY!r}, time_scale={TIME_SCALE})
print(subscription.pk)
"""
    return int(server.shell(code).split()[-1]), name


def _send(url: str, subscription: int) -> int:
    """A send through the composer, without a browser; returns the delivery's id."""
    event = {"type": "track", "event": "Flaky", "userId": "pane-1"}
    _, html = composer_send(url, subscription, event)
    return int(re.search(r'id="delivery-row-(\d+)"', html).group(1))


def _record_gets(page) -> list[str]:
    """The paths of the page's own GETs: navigations and htmx or fetch requests."""
    gets: list[str] = []

    def record(request):
        if request.method == "GET" and request.resource_type in {
            "document",
            "xhr",
            "fetch",
        }:
            gets.append(urllib.parse.urlsplit(request.url).path)

    page.on("request", record)
    return gets


def _expect_three_attempts(page) -> None:
    pane = page.locator("#delivery-detail")
    expect(pane.locator("#attempt-3")).to_contain_text(
        "HTTP 200", timeout=ATTEMPTS_TIMEOUT_MS
    )
    # The latest attempt is the one opened; the earlier ones are in the timeline.
    timeline = pane.locator("#attempt-timeline tbody tr[data-attempt]")
    expect(timeline).to_have_count(3)
    expect(timeline.nth(1)).to_contain_text("500")
    expect(timeline.nth(0)).to_contain_text("500")
    expect(pane.locator(".attempt-head")).to_contain_text("delivered")


def test_the_delivery_page_follows_its_attempts_without_polling(server, page):
    subscription, _ = _flaky_subscription(server)
    gets = _record_gets(page)
    pk = _send(server.url, subscription)
    page.goto(f"{server.url}/deliveries/{pk}/")
    # Opened while the delivery still had attempts to make.
    assert page.locator("#attempt-3").count() == 0

    _expect_three_attempts(page)
    assert gets == [f"/deliveries/{pk}/"]


def test_the_event_testers_pane_follows_its_attempts_without_polling(server, page):
    _, name = _flaky_subscription(server)
    page.goto(server.url + "/")
    expect(page.locator("#live-dot.on")).to_be_attached(timeout=10_000)
    gets = _record_gets(page)
    page.select_option("#id_subscription", label=name)
    page.fill(
        "#id_payload", json.dumps({"type": "track", "event": "Flaky", "userId": "u"})
    )
    page.click("#send-button")
    link = page.locator("#composer-result a").first
    expect(link).to_have_attribute("href", re.compile(r"/deliveries/\d+/"))
    pk = int(re.search(r"\d+", link.get_attribute("href")).group())

    _expect_three_attempts(page)
    row = page.locator(f"#delivery-row-{pk}")
    expect(row).to_have_attribute("data-attempts", "3")
    expect(row).to_have_attribute("data-state", "delivered")
    # The pane's one load, and the feed's catch-up when the pane's socket opened;
    # nothing while the attempts went on.
    assert gets.count(f"/deliveries/{pk}/") == 1
    assert set(gets) <= {f"/deliveries/{pk}/", "/deliveries/feed/"}
    assert gets.count("/deliveries/feed/") <= 1


def test_a_runs_progress_is_shown_live_in_the_send_result(server, page):
    page.goto(server.url + "/")
    expect(page.locator("#live-dot.on")).to_be_attached(timeout=10_000)
    page.select_option("#id_subscription", label="Demo subscription")
    page.fill(
        "#id_payload", json.dumps({"type": "track", "event": "Run", "userId": "u"})
    )
    page.click("#delivery-conditions summary")
    page.fill("#id_copies", "10")
    page.fill("#id_concurrency", "5")
    page.click("#send-button")
    expect(page.locator("#conditions-applied")).to_be_visible()
    progress = page.locator("#run-progress")
    expect(progress).to_contain_text("10 of 10 settled", timeout=20_000)
    expect(progress.locator('[data-state="delivered"]')).to_have_text("10 delivered")
