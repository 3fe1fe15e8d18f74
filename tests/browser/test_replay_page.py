"""A replay from the page in a real browser: upload a file, start, pause,
resume, and watch the live progress finish."""

import base64
import json
import re
import time
import urllib.request
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


def test_events_a_source_received_are_replayed_from_the_page(server, page, receiver):
    name = f"ingested-{uuid.uuid4().hex[:8]}"
    key = f"wk{uuid.uuid4().hex[:12]}"
    server.shell(
        "from sandbox.subscriptions.services import subscription_create\n"
        "from sandbox.sources.services import source_save\n"
        f"old = subscription_create(name={name + ' old'!r}, endpoint_url="
        f"{receiver.url('/ok')!r}, api_key='k', timeout_seconds=10)\n"
        f"subscription_create(name={name!r}, endpoint_url="
        f"{receiver.url('/status/200')!r}, api_key='k', timeout_seconds=10)\n"
        f"source_save(name={name + ' web'!r}, subscriptions=[old], write_key={key!r})\n"
    )
    ids = [f"{name}-{n}" for n in range(5)]
    batch = [{**event(n), "messageId": ids[n]} for n in range(5)]
    request = urllib.request.Request(
        server.url + "/v1/batch",
        data=json.dumps({"batch": batch}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200

    def forwarded() -> set[str]:
        return {r.json["messageId"] for r in receiver.received if r.path == "/ok"}

    # The source forwarded them to its own subscription: they were ingested.
    deadline = time.monotonic() + 10
    while not set(ids) <= forwarded() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(ids) <= forwarded()

    page.goto(server.url + "/replays/")
    filters = page.locator("details[data-history-filters]")
    expect(filters).not_to_have_attribute("open", "")
    page.get_by_label("Events your sources received").check()
    expect(filters).to_have_attribute("open", "")
    page.select_option("#replay-from_source", label=f"{name} web")
    page.select_option("#replay-subscription", label=name)
    page.click("button:has-text('Start the replay')")
    expect(page.locator("h1")).to_contain_text("ingested events")
    progress = page.locator("#replay-progress")
    expect(progress).to_have_attribute("data-status", "finished", timeout=30_000)
    expect(progress.locator("[data-figure=delivered]")).to_contain_text("5")
    replayed = [r.json for r in receiver.received if r.path == "/status/200"]
    assert sorted(r["messageId"] for r in replayed) == sorted(ids)
    assert all(r["timestamp"] == event(0)["timestamp"] for r in replayed)
