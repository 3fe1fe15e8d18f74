"""A replay from the page in a real browser: upload a file, start, pause,
resume, and watch the live progress finish."""

import json
import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import save_screenshot
from tests.replay.helpers import event

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_replay_is_uploaded_started_paused_resumed_and_finishes_live(
    server, page, receiver, tmp_path
):
    name = f"replay-{uuid.uuid4().hex[:8]}"
    server.shell(
        "from sandbox.subscriptions.services import subscription_create\n"
        f"subscription_create(name={name!r}, endpoint_url="
        f"{receiver.url('/ok')!r}, api_key='k', timeout_seconds=10)\n"
    )
    path = tmp_path / "export <b>.jsonl"
    lines = [json.dumps(event(n)) for n in range(300)] + ["not json"]
    path.write_text("\n".join(lines))

    page.goto(server.url + "/replays/")
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Replays")
    page.set_input_files("#replay-file", str(path))
    page.select_option("#replay-subscription", label=name)
    page.fill("#replay-rate", "100")
    page.click("button:has-text('Start the replay')")
    expect(page).to_have_url(re.compile(r"/replays/\d+/$"))
    expect(page.locator("h1")).to_contain_text("export <b>.jsonl")

    progress = page.locator("#replay-progress")
    expect(progress.locator("[data-figure=delivered]")).not_to_have_text(
        "0", timeout=10_000
    )
    page.click("#replay-progress button:has-text('Pause')")
    expect(progress).to_have_attribute("data-status", "paused")
    paused_at = len(receiver.received)
    page.wait_for_timeout(500)
    assert len(receiver.received) <= paused_at + 5
    page.click("#replay-progress button:has-text('Resume')")
    expect(progress).to_have_attribute("data-status", "finished", timeout=30_000)
    expect(progress.locator("progress")).to_have_attribute("value", "100")
    expect(progress.locator("[data-figure=delivered]")).to_contain_text("300")
    expect(progress.locator("[data-figure=read]")).to_contain_text(
        "300 events, 1 bad line"
    )
    expect(page.locator("text=not JSON")).to_be_visible()
    save_screenshot(page, "replay.png")
    # The figures came over the socket: the page was loaded once.
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert len({r.json["messageId"] for r in receiver.received}) == 300
