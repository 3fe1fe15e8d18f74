"""A suite run in a real browser: the step table fills in live while the run
goes, then the report inside the app's layout, printable and downloadable."""

import asyncio
import contextlib
import json
import re
import uuid
from dataclasses import dataclass

import pytest
from aiohttp import web
from playwright.sync_api import expect

from tests.receiver import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HELD = "Held"
API_KEY = "browser-suite-key-13579"


@dataclass
class Gate(Receiver):
    """Answers at once, but holds each "Held" event until the test releases it."""

    _opened: asyncio.Event | None = None

    def _gate(self) -> asyncio.Event:
        if self._opened is None:
            self._opened = asyncio.Event()
        return self._opened

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if self.received[-1].json.get("event") == HELD:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gate().wait(), 20)
        return web.json_response({"success": True})

    def release(self) -> None:
        self._loop.call_soon_threadsafe(lambda: self._gate().set())


@pytest.fixture
def gate():
    server = Gate().start()
    yield server
    server.release()
    server.stop()


def _prepare(server, endpoint_url: str) -> tuple[str, str]:
    name = f"live-{uuid.uuid4().hex[:8]}"
    suite = {
        "format": "subscription-sandbox/suite@1",
        "name": f"Live steps {name}",
        "steps": [
            {"name": "Quick", "event": {"type": "track", "event": "Quick"}},
            {"name": HELD, "event": {"type": "track", "event": HELD}},
            {"name": "Last", "type": "identify"},
        ],
    }
    server.shell(
        f"""
from sandbox.subscriptions.services import subscription_create
from sandbox.suites.services import suite_import
subscription_create(name={name!r}, endpoint_url={endpoint_url!r},
                    api_key={API_KEY!r}, timeout_seconds=30)
suite_import(text={json.dumps(suite)!r})
"""
    )
    return name, suite["name"]


def test_the_step_table_fills_in_live_then_becomes_the_report(server, page, gate):
    subscription, suite = _prepare(server, gate.url("/gate"))
    page.goto(server.url + "/suites/")
    page.select_option("#run-suite", suite)
    page.select_option("#id_subscription", label=subscription)
    expect(page.locator("text=With variations")).to_be_visible()
    page.check("#id_variations")
    page.click("button:has-text('Run')")
    expect(page).to_have_url(re.compile(r"/suites/runs/\d+/$"))

    # Step 1 and its variants are done; step 2 is held at the endpoint.
    steps = page.locator("#suite-run-steps")
    expect(steps).to_contain_text(f"Step 2 of 3: {HELD}", timeout=20_000)
    first = page.locator("#step-row-1")
    expect(first).to_contain_text("200")
    expect(first).to_contain_text("green")
    expect(first).to_contain_text("pass")
    expect(first).to_contain_text(re.compile(r"\d+ ms"))
    expect(first).to_contain_text("each handled like the step")
    expect(page.locator("#step-row-2")).to_contain_text("sending")
    expect(page.locator("#step-row-3")).to_contain_text("pending")
    # The page was not reloaded to get there: the table came over the socket.
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1

    gate.release()
    body = page.locator("body")
    expect(body).to_contain_text("Every expectation held (3 steps)", timeout=30_000)
    # The report is a page of the app: its nav, and the report's own sections.
    expect(page.locator("header.topbar nav")).to_be_visible()
    expect(page.locator("#suite-report")).to_contain_text("with variations")
    expect(page.locator("#step-3")).to_be_visible()
    assert API_KEY not in page.content()
    # Printed, the nav and the buttons are left out.
    page.emulate_media(media="print")
    expect(page.locator("header.topbar")).to_be_hidden()
    expect(page.locator("a:has-text('Download report')")).to_be_hidden()
    expect(page.locator("#suite-report")).to_be_visible()
    page.emulate_media(media="screen")

    href = page.locator("a:has-text('Download report')").get_attribute("href")
    downloaded = page.request.get(server.url + href)
    assert downloaded.ok
    assert downloaded.headers["content-disposition"].startswith("attachment;")
    file = downloaded.text()
    assert "<script" not in file
    assert "/static/" not in file
    assert "Every expectation held (3 steps)" in file
    assert API_KEY not in file
