"""Live benchmark: from the engine's commit to the row in a real browser's DOM.

Over N stored deliveries (benchmarks/fixtures.py, cached under /tmp), starts
`manage.py runserver --noreload` with the engine on, points the demo
subscription at this server's demo mock endpoint, opens the Event Tester in
Debian's chromium (Playwright) and records, with a MutationObserver, when each
feed row first shows each state (performance.timeOrigin + performance.now()).
Then sends K events one at a time (POST /send/ with the page's session and CSRF
token, as the composer form does) and, for each, takes the delivery's stored
`updated_at` of its final state as the moment of the commit: the live latency is
the time from it to the row showing that state.

Usage: .venv/bin/python benchmarks/live.py [--deliveries N] [--sends K]
"""

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import fixtures
from common import Server, line, percentile

CHROMIUM = "/usr/bin/chromium"
FINAL = ("delivered", "failed", "discarded", "unsupported", "deduplicated")
TARGET_P95_MS = 100.0
WAIT_SECONDS = 15

# Runs in the page: the first moment each (row, state) is in the feed's DOM.
OBSERVE = """() => {
  window.__seen = {};
  const record = () => {
    const now = performance.timeOrigin + performance.now();
    for (const row of document.querySelectorAll('#delivery-feed .delivery-row')) {
      const key = row.id + ':' + row.dataset.state;
      if (!(key in window.__seen)) window.__seen[key] = now;
    }
  };
  record();
  new MutationObserver(record).observe(document.body, {
    childList: true, subtree: true, attributes: true,
    attributeFilter: ['data-state'],
  });
}"""


def stored_ms(stamp: str) -> float:
    """A stored (UTC, offset-less) datetime as milliseconds since the epoch."""
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp() * 1000


async def main(deliveries: int, sends: int) -> None:
    print(
        f"Live: commit → row in chromium's DOM over {deliveries:,} stored"
        f" deliveries, {sends} sends one at a time, {os.cpu_count()} cores"
    )
    if not Path(CHROMIUM).exists():
        line("live latency", f"not measured ({CHROMIUM} missing)")
        return
    with tempfile.TemporaryDirectory(prefix="sandbox-live-") as data_dir:
        started = time.perf_counter()
        cached = fixtures.cached_path(deliveries).exists()
        fixtures.fill(data_dir, deliveries)
        how = "copied from the cache" if cached else "generated"
        line("stored deliveries", f"{how} in {time.perf_counter() - started:.1f} s")
        server = Server(Path(data_dir), engine=True)
        demo = point_demo_at(server)
        server.start()
        try:
            await measure(server, demo, sends)
        finally:
            server.stop()


def point_demo_at(server: Server) -> int:
    """The demo subscription, sending to this server's mock endpoint."""
    server.query(
        "UPDATE subscriptions_subscription SET endpoint_url = ? WHERE name = ?",
        f"{server.url}/mock/demo/",
        fixtures.DEMO_NAME,
    )
    [(pk,)] = server.query(
        "SELECT id FROM subscriptions_subscription WHERE name = ?", fixtures.DEMO_NAME
    )
    return pk


async def measure(server: Server, subscription: int, sends: int) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            await page.goto(server.url + "/")
            await page.wait_for_selector("#live-dot.on", state="attached")
            await page.evaluate(OBSERVE)
            latencies, missed, answered = await send_all(
                server, page, subscription, sends
            )
        finally:
            await browser.close()
    ordered = sorted(answered)
    line("sends answered (POST /send/) p50", f"{percentile(ordered, 0.5):.0f} ms")
    ordered = sorted(latencies)
    line("rows seen in their final state", f"{len(ordered)} of {sends}")
    if ordered:
        p95 = percentile(ordered, 0.95)
        verdict = "pass" if p95 < TARGET_P95_MS and not missed else "FAIL"
        line("live latency p50", f"{percentile(ordered, 0.5):.1f} ms")
        line(
            "live latency p95",
            f"{p95:.1f} ms (target < {TARGET_P95_MS:.0f} ms: {verdict})",
        )
        line("live latency max", f"{ordered[-1]:.1f} ms")
    if missed:
        line("not shown within 15 s", ", ".join(missed))


async def send_all(server: Server, page, subscription: int, sends: int):
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    latencies, missed, answered = [], [], []
    for number in range(sends):
        event = {
            "type": "track",
            "event": "Live Benchmark",
            "userId": f"live-{number}",
            "properties": {"number": number},
        }
        started = time.perf_counter()
        response = await page.request.post(
            server.url + "/send/",
            form={
                "subscription": str(subscription),
                "event_type": "track",
                "source": "analytics.js",
                "template": "",
                "payload": json.dumps(event),
            },
            headers={"X-CSRFToken": cookies["csrftoken"]},
            max_redirects=0,
        )
        answered.append((time.perf_counter() - started) * 1000)
        location = response.headers.get("location", "")
        [pk] = parse_qs(urlparse(location).query).get("sent", ["?"])
        if not pk.isdigit():
            missed.append(f"send {number}: HTTP {response.status}")
            continue
        final = await final_state(server, int(pk))
        if final is None:
            missed.append(f"#{pk} (never final)")
            continue
        state, updated_at = final
        shown = await shown_at(page, f"delivery-row-{pk}:{state}")
        if shown is None:
            missed.append(f"#{pk} {state}")
            continue
        latencies.append(shown - stored_ms(updated_at))
        # Sends land at any moment of the watcher's cycle, as a person's do.
        await asyncio.sleep(random.uniform(0.05, 0.3))
    return latencies, missed, answered


async def final_state(server: Server, pk: int) -> tuple[str, str] | None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        [(state, updated_at)] = server.query(
            "SELECT state, updated_at FROM delivery_delivery WHERE id = ?", pk
        )
        if state in FINAL:
            return state, updated_at
        await asyncio.sleep(0.005)
    return None


async def shown_at(page, key: str) -> float | None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        seen = await page.evaluate("(key) => window.__seen[key] ?? null", key)
        if seen is not None:
            return seen
        await asyncio.sleep(0.02)
    return None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=fixtures.DEFAULT_DELIVERIES)
    parser.add_argument("--sends", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.deliveries, args.sends))
