"""The suites page in a real browser: run Segment's test suite, read the verdict."""

import re
import time

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_segment_test_suite_runs_from_the_page_to_a_verdict(server, page):
    page.goto(server.url + "/")
    page.click("nav >> text=Suites")
    expect(page).to_have_url(re.compile(r"/suites/$"))
    page.select_option("#run-suite", "Segment test suite")
    page.click("button:has-text('Run')")
    expect(page).to_have_url(re.compile(r"/suites/runs/\d+/$"))
    # The server's engine sends the steps one after another; the report is read
    # once the run has settled.
    deadline = time.monotonic() + 60
    while "Ready for review" not in page.content():
        assert time.monotonic() < deadline, "the run did not settle in 60 s"
        time.sleep(0.5)
        page.reload()
    expect(page.locator("body")).to_contain_text("18. Signed Up")
    assert page.locator("text=pass").count() >= 18
    page.goto(server.url + "/suites/")
    expect(page.locator("a:has-text('Download report')").first).to_be_visible()
