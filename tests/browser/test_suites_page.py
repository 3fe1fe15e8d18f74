"""The suites page in a real browser: run Segment's test suite, read the verdict."""

import re

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
    # The server's engine sends the steps one after another while the page shows
    # the run's progress live; once every step has settled it becomes the report.
    expect(page.locator("body")).to_contain_text("Ready for review", timeout=60_000)
    expect(page.locator("body")).to_contain_text("18. Signed Up")
    assert page.locator("text=pass").count() >= 18
    page.goto(server.url + "/suites/")
    expect(page.locator("a:has-text('Download report')").first).to_be_visible()
