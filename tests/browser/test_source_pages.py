"""Sources in a real browser: create one, watch its debugger fill live as an SDK
sends, open an event, and load it into the Event Tester."""

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _post(url: str, body: dict, write_key: str) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps({**body, "writeKey": write_key}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return response.status


def test_a_new_source_s_debugger_shows_events_as_they_arrive(server, page):
    page.goto(server.url + "/")
    page.click("nav >> text=Sources")
    page.click("text=New source")
    page.fill("#id_name", "Checkout web")
    page.check("label:has-text('Demo subscription') input")
    page.click("button:has-text('Create source')")
    expect(page).to_have_url(re.compile(r"/sources/\d+/$"))
    expect(page.locator(".flash")).to_contain_text("Source “Checkout web” created")
    # The key is masked until asked for.
    page.click("#write-key >> text=Reveal")
    expect(page.locator("#write-key code")).not_to_contain_text("•")
    write_key = page.locator("#write-key code").inner_text()
    assert len(write_key) == 32
    expect(page.locator("#source-events-empty")).to_be_visible()

    assert (
        _post(
            server.url + "/v1/track",
            {"type": "track", "event": "Cart Viewed", "userId": "shopper-7"},
            write_key,
        )
        == 200
    )
    row = page.locator(".source-event", has_text="Cart Viewed")
    expect(row).to_be_visible(timeout=5_000)
    expect(row).to_contain_text("accepted")
    expect(page.locator("#source-events-empty")).to_have_count(0)

    assert (
        _post(
            server.url + "/v1/batch",
            {"batch": [{"type": "launch", "userId": "shopper-7"}]},
            write_key,
        )
        == 200
    )
    dropped = page.locator(".source-event", has_text="dropped")
    expect(dropped).to_contain_text("Unknown type 'launch'", timeout=5_000)

    row.locator(".row-link").click()
    pane = page.locator("#event-pane")
    expect(pane).to_contain_text("As forwarded")
    expect(pane).to_contain_text('"receivedAt"')
    expect(pane.locator("a", has_text="to Demo subscription")).to_be_visible()

    page.click("text=Edit and send in the Event Tester")
    expect(page).to_have_url(re.compile(r"\?from_event=\d+$"))
    expect(page.locator("#loaded-from")).to_contain_text("Checkout web: Cart Viewed")
    editor = page.locator(".cm-content")
    expect(editor).to_contain_text('"event": "Cart Viewed"')
    page.click("#load-from-source summary")
    expect(page.locator(".load-from-source-list")).to_contain_text("Cart Viewed")


def test_a_filtered_debugger_takes_only_its_own_kind_of_event(server, page):
    server.manage(
        "source",
        "create",
        "Filtered",
        "--to",
        "Demo subscription",
        "--write-key",
        "filtered-key-01",
    )
    page.goto(server.url + "/sources/")
    page.click("text=Filtered")
    page.click("#source-events >> text=Dropped")
    expect(page).to_have_url(re.compile(r"status=dropped"))
    _post(
        server.url + "/v1/batch",
        {
            "batch": [
                {"type": "track", "event": "Kept Out", "userId": "u"},
                {"type": "bogus", "userId": "u"},
            ]
        },
        "filtered-key-01",
    )
    expect(page.locator(".source-event", has_text="bogus")).to_be_visible(timeout=5_000)
    expect(page.locator(".source-event", has_text="Kept Out")).to_have_count(0)


def test_events_with_a_key_no_source_has_are_listed_as_dropped(server, page):
    page.goto(server.url + "/sources/unknown/")
    assert (
        _post(
            server.url + "/v1/track",
            {"type": "track", "event": "Typo Key", "userId": "u"},
            "no-source-has-this-key",
        )
        == 200
    )
    row = page.locator(".source-event", has_text="Typo Key")
    expect(row).to_contain_text("dropped", timeout=5_000)
    row.locator(".row-link").click()
    expect(page.locator("#event-pane")).to_contain_text("Unknown write key")
    expect(page.locator("#event-pane")).not_to_contain_text("no-source-has-this-key")
