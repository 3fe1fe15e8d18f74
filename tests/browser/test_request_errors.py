"""A failed request is told in the page's banner and leaves the page as it was."""

import pytest
from playwright.sync_api import expect

from sandbox.middleware import BODY_TOO_LARGE

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_oversized_send_is_told_in_the_banner_and_the_event_is_kept(server, page):
    page.goto(server.url + "/")
    huge = '{"type": "track", "event": "' + "x" * (3 * 1024 * 1024) + '"}'
    page.evaluate(
        "(text) => { document.getElementById('id_payload').value = text }", huge
    )
    page.click("#send-button")
    banner = page.locator("#request-error")
    expect(banner).to_be_visible(timeout=10_000)
    expect(banner.locator("[data-request-error-text]")).to_have_text(
        BODY_TOO_LARGE.format(size="3 MB", limit="2.5 MB")
    )
    assert page.input_value("#id_payload") == huge
    page.click("[data-dismiss-request-error]")
    expect(banner).to_be_hidden()


def test_a_missing_page_asked_for_by_htmx_is_told_not_swapped_in(server, page):
    page.goto(server.url + "/")
    before = page.inner_html("#composer-result")
    page.evaluate("htmx.ajax('GET', '/no/such/page/', {target: '#composer-result'})")
    expect(page.locator("#request-error [data-request-error-text]")).to_have_text(
        "There is no page at /no/such/page/"
    )
    assert page.inner_html("#composer-result") == before
