"""The Event Tester in a real browser against a real server."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_send_a_generated_track_and_see_it_live_then_in_history(server, page):
    page.goto(server.url + "/")
    expect(page.locator("#live-dot.on")).to_be_attached(timeout=10_000)
    initial = page.input_value("#id_payload")
    page.select_option("#id_template", "")
    page.select_option("#id_event_type", "track")
    # The selects above asked for samples too: wait for Generate's own answer.
    with page.expect_response(
        lambda r: r.url.endswith("/sample/") and "changed" not in r.request.post_data
    ):
        page.click("#generate-sample")
    expect(page.locator("#id_payload")).not_to_have_value(initial)
    expect(page.locator("#event-problems")).to_contain_text("Valid Segment event")
    payload = page.input_value("#id_payload")
    assert '"type": "track"' in payload
    message_id = re.search(r'"messageId": "([^"]+)"', payload).group(1)

    event_name = re.search(r'"event": "([^"]+)"', payload).group(1)
    assert event_name != "Order Completed"
    page.select_option("#id_subscription", label="Demo subscription")
    page.click("#send-button")
    row = page.locator("#delivery-feed .delivery-row").first
    expect(row).to_contain_text(event_name)
    # Only the websocket updates a feed row: seeing 200 means it arrived live.
    expect(row).to_have_attribute("data-outcome", "green", timeout=10_000)
    expect(row.locator(".row-link .badge")).to_have_text("200")
    expect(page.locator("#delivery-detail")).to_contain_text("processed (200)")
    expect(page.locator("#delivery-detail")).to_contain_text("User-Agent")
    save_screenshot(page, "event-tester.png")

    page.click("text=All history")
    expect(page).to_have_url(re.compile(r"/history/"))
    page.fill("#id_q", message_id)
    page.press("#id_q", "Enter")
    history_row = page.locator("#history-results tbody tr")
    expect(history_row).to_have_count(1)
    expect(history_row.locator(".badge")).to_have_text("200")
    history_row.locator("a").first.click()
    expect(page.locator("#attempt-1")).to_contain_text("HTTP 200")
    expect(page.locator("#attempt-1")).to_contain_text("Basic ••••••••")


def test_a_delivery_sent_from_the_terminal_appears_live(server, page):
    page.goto(server.url + "/")
    expect(page.locator("#live-dot.on")).to_be_attached(timeout=10_000)
    before = page.locator("#delivery-feed .delivery-row").count()
    result = server.manage(
        "sendevent", "Product Viewed", "--to", "Demo subscription", check=False
    )
    assert result.returncode == 0, result.stderr
    rows = page.locator("#delivery-feed .delivery-row")
    expect(rows).to_have_count(before + 1, timeout=10_000)
    expect(rows.first).to_contain_text("Product Viewed")
    expect(rows.first).to_have_attribute("data-outcome", "green")


def test_invalid_json_is_pointed_at_and_bad_events_need_confirming(server, page):
    page.goto(server.url + "/")
    page.fill("#id_payload", '{\n  "type": "track",\n  "event": \n}')
    expect(page.locator("#event-problems")).to_contain_text(
        "Invalid JSON at line 4, column 1"
    )
    page.fill("#id_payload", '{"type": "track", "event": "No Identity"}')
    expect(page.locator("#event-problems")).to_contain_text(
        "neither a userId nor an anonymousId"
    )
    page.keyboard.press("Control+Enter")
    expect(page.locator("#send-anyway")).to_be_visible()
    page.click("#send-anyway")
    row = page.locator("#delivery-feed .delivery-row").first
    expect(row).to_contain_text("No Identity")
    expect(page.locator("#delivery-detail")).to_contain_text("Sent despite")


def _retry_story_setup(server) -> None:
    server.shell(
        "from sandbox.mock.services import mock_endpoint_create\n"
        "from sandbox.subscriptions.services import subscription_create\n"
        "from sandbox.mock.models import MockEndpoint\n"
        "if not MockEndpoint.objects.filter(slug='flaky').exists():\n"
        "    mock_endpoint_create(slug='flaky', name='Flaky', api_key='k-flaky',"
        " fail_first_n=3, fail_status=503)\n"
        f"    subscription_create(name='Retry story', endpoint_url='{server.url}"
        "/mock/flaky/', api_key='k-flaky', time_scale=48)\n"
        f"    subscription_create(name='Wrong key', endpoint_url='{server.url}"
        "/mock/flaky/', api_key='not-the-key', time_scale=24)\n"
    )


def test_retry_countdown_then_the_green_attempt(server, page):
    _retry_story_setup(server)
    page.goto(server.url + "/")
    expect(page.locator("#live-dot.on")).to_be_attached(timeout=10_000)
    page.select_option("#id_subscription", label="Retry story")
    page.click("#generate-sample")
    page.click("#send-button")
    detail = page.locator("#delivery-detail")
    expect(detail.locator("[data-countdown]")).to_contain_text(
        re.compile(r"next attempt in \d"), timeout=10_000
    )
    expect(detail.locator("#retry-now")).to_be_visible()
    row = page.locator("#delivery-feed .delivery-row").first
    expect(row).to_have_attribute("data-outcome", "green", timeout=30_000)
    expect(row).to_have_attribute("data-attempts", "4")
    timeline = page.locator("#attempt-timeline tbody tr")
    expect(timeline).to_have_count(4, timeout=5_000)
    expect(timeline.nth(3)).to_contain_text("200")
    for index in range(3):
        expect(timeline.nth(index)).to_contain_text("503")
    expect(detail.locator("#retry-now")).to_have_count(0)


def test_a_401_is_one_attempt_not_retried(server, page):
    _retry_story_setup(server)
    page.goto(server.url + "/")
    page.select_option("#id_subscription", label="Wrong key")
    page.click("#send-button")
    row = page.locator("#delivery-feed .delivery-row").first
    expect(row).to_have_attribute("data-state", "discarded", timeout=10_000)
    expect(row).to_have_attribute("data-attempts", "1")
    expect(page.locator("#delivery-detail")).to_contain_text(
        "not retried: the endpoint says the API key is invalid or expired (401)"
    )
