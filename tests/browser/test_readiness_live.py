"""A replay readiness check followed in a real browser: its page shows the phase
and the probes so far while it runs, and turns into the report when it is done,
without a reload."""

import re
import uuid

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COUNT_SWAPS = """
window.readinessSwaps = 0;
document.addEventListener("htmx:afterSwap", () => { window.readinessSwaps += 1; });
"""


def test_a_readiness_check_page_follows_the_check_to_its_report(server, page, receiver):
    name = f"readiness-{uuid.uuid4().hex[:8]}"
    # At most 11 answers a second: the rate steps pass at 10/s and are refused
    # above, so the check takes a few steps and ends on its own.
    server.shell(
        "from sandbox.subscriptions.services import subscription_create\n"
        f"subscription_create(name={name!r}, endpoint_url="
        f"{receiver.url('/limited/11')!r}, api_key='k', timeout_seconds=10)\n"
    )
    page.add_init_script(COUNT_SWAPS)
    page.goto(server.url + "/replays/")
    page.select_option("#readiness-subscription", label=name)
    page.click("button:has-text('Check replay readiness')")
    expect(page).to_have_url(re.compile(r"/replays/readiness/\d+/$"))

    live = page.locator("#readiness-live")
    expect(live).to_have_attribute("data-status", "running")
    expect(live).to_have_attribute("hx-trigger", "every 1s")
    progress = live.locator("#readiness-progress")
    expect(progress).to_have_attribute("data-phase", "rate", timeout=30_000)
    expect(progress.locator("[data-probe='timestamps'] td").nth(2)).to_have_text("5")
    expect(progress.locator("[data-probe='10 events/s']")).to_be_visible()

    expect(live).to_have_attribute("data-status", "done", timeout=90_000)
    report = live.locator("#readiness-report")
    expect(report).to_have_attribute("data-status", "done")
    expect(report.locator("[data-verdict=timestamps]")).to_have_text("yes")
    expect(report.locator("[data-verdict=rate]")).to_contain_text("events/s")
    expect(live.locator("a:has-text('Download report')")).to_be_visible()
    expect(progress).to_have_count(0)
    # The finished part has no trigger: the polling stopped.
    assert live.get_attribute("hx-trigger") is None
    swaps = page.evaluate("window.readinessSwaps")
    page.wait_for_timeout(1500)
    assert page.evaluate("window.readinessSwaps") == swaps
    # The page was loaded once: every change came from the polled part.
    assert swaps >= 2
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
