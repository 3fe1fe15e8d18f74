"""Load benchmark: a burst of concurrent sends against a real server, as figures.

Starts `manage.py runserver --noreload` on a temporary data directory (migrated,
demo seeded, DEBUG off), then:
1. N clients (one aiohttp session and a fresh connection each) fetch the Event
   Tester for a CSRF cookie, wait on a barrier and POST /send/ at once, as the page
   does: per-send latency until the response, p50, p95, max, refused and failed;
2. waits until every delivery is final and checks the demo mock endpoint received
   each messageId exactly once (mock_mockrequest against delivery_delivery);
3. with /usr/bin/chromium present, an Event Tester page open through the burst
   must end showing exactly the stored newest rows (id, state, attempts).

Usage: .venv/bin/python benchmarks/load.py [--clients N]   (make bench)
"""

import argparse
import asyncio
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from common import Server, line, percentile
from yarl import URL

CHROMIUM = "/usr/bin/chromium"
FEED_SIZE = 30
SETTLE_SECONDS = 180
CONVERGE_SECONDS = 10


@dataclass
class Burst:
    latencies: list[float] = field(default_factory=list)
    refused: int = 0
    failed: list[str] = field(default_factory=list)


async def one_send(
    url: str, subscription: int, number: int, barrier: asyncio.Barrier, burst: Burst
) -> None:
    # A fresh connection for the POST: the burst arrives as new connections.
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=120)
    # unsafe: the server is an IP address, whose cookies aiohttp drops by default.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, cookie_jar=jar
    ) as session:
        try:
            async with session.get(url + "/") as response:
                await response.read()
            token = session.cookie_jar.filter_cookies(URL(url))["csrftoken"].value
        except (aiohttp.ClientError, TimeoutError, KeyError) as error:
            burst.failed.append(f"page: {type(error).__name__}")
            await barrier.wait()
            return
        event = {
            "type": "track",
            "event": "Load Test",
            "userId": f"load-{number}",
            "properties": {"client": number},
        }
        form = {
            "subscription": str(subscription),
            "event_type": "track",
            "source": "analytics.js",
            "template": "",
            "payload": json.dumps(event),
        }
        headers = {"X-CSRFToken": token, "HX-Request": "true"}
        await barrier.wait()
        started = time.perf_counter()
        try:
            async with session.post(
                url + "/send/", data=form, headers=headers
            ) as response:
                await response.read()
                if response.status != 200:
                    burst.failed.append(f"HTTP {response.status}")
                    return
        except aiohttp.ClientConnectorError:
            burst.refused += 1
            return
        except (aiohttp.ClientError, TimeoutError) as error:
            burst.failed.append(type(error).__name__)
            return
        burst.latencies.append(time.perf_counter() - started)


async def wait_until(condition, timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(every)
    return condition()


def stored_feed(server: Server) -> list[tuple[str, str, str]]:
    rows = server.query(
        "SELECT id, state, attempt_count FROM delivery_delivery"
        " ORDER BY id DESC LIMIT ?",
        FEED_SIZE,
    )
    return [(f"delivery-row-{pk}", state, str(count)) for pk, state, count in rows]


DOM_ROWS = """() => Array.from(
  document.querySelectorAll('#delivery-feed > .delivery-row'),
  (row) => [row.id, row.dataset.state, row.dataset.attempts])"""


async def open_page(playwright, url: str):
    browser = await playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
    )
    page = await browser.new_page()
    await page.goto(url + "/")
    await page.wait_for_selector("#live-dot.on", state="attached", timeout=15_000)
    return browser, page


async def main(clients: int) -> None:
    print(f"Load: {clients} concurrent sends against runserver, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="sandbox-load-") as data_dir:
        server = Server(Path(data_dir))
        server.prepare()
        server.start()
        try:
            await measure(server, clients)
        finally:
            server.stop()


async def measure(server: Server, clients: int) -> None:
    [(subscription,)] = server.query(
        "SELECT id FROM subscriptions_subscription WHERE name = 'Demo subscription'"
    )
    playwright = browser = page = None
    if Path(CHROMIUM).exists():
        from playwright.async_api import async_playwright

        playwright = await async_playwright().start()
        browser, page = await open_page(playwright, server.url)

    burst = Burst()
    barrier = asyncio.Barrier(clients + 1)
    sends = [
        asyncio.create_task(one_send(server.url, subscription, n, barrier, burst))
        for n in range(clients)
    ]
    await barrier.wait()
    started = time.perf_counter()
    await asyncio.gather(*sends)
    burst_seconds = time.perf_counter() - started

    ordered = sorted(burst.latencies)
    line("sends answered", f"{len(ordered)} of {clients} in {burst_seconds:.2f} s")
    if ordered:
        line("send latency p50", f"{percentile(ordered, 0.50) * 1000:.0f} ms")
        line("send latency p95", f"{percentile(ordered, 0.95) * 1000:.0f} ms")
        line("send latency max", f"{ordered[-1] * 1000:.0f} ms")
    line("refused (TCP)", str(burst.refused))
    line("failed", f"{len(burst.failed)} {sorted(set(burst.failed))}")

    settled = await wait_until(
        lambda: (
            server.query(
                "SELECT count(*) FROM delivery_delivery"
                " WHERE state IN ('pending', 'retrying')"
            )
            == [(0,)]
        ),
        timeout=SETTLE_SECONDS,
    )
    settle_seconds = time.perf_counter() - started
    line("all deliveries final", f"{settled} after {settle_seconds:.1f} s")
    deliveries = server.query("SELECT message_id, state FROM delivery_delivery")
    received = [
        message_id
        for (message_id,) in server.query("SELECT message_id FROM mock_mockrequest")
    ]
    sent = {message_id for message_id, _ in deliveries}
    delivered = sum(state == "delivered" for _, state in deliveries)
    exactly_once = (
        len(deliveries) == clients
        and delivered == len(deliveries)
        and len(received) == len(set(received)) == len(sent)
        and set(received) == sent
    )
    line(
        "deliveries / delivered / received / distinct",
        f"{len(deliveries)} / {delivered} / {len(received)} / {len(set(received))}",
    )
    line("each delivered exactly once", "yes" if exactly_once else "NO")
    # A retry sends an event again (Segment delivers at least once): say why.
    retried = server.query(
        "SELECT error_kind, response_status, count(*) FROM delivery_attempt "
        "WHERE outcome != 'green' GROUP BY error_kind, response_status"
    )
    line(
        "attempts that were not green",
        ", ".join(f"{kind or status}: {n}" for kind, status, n in retried) or "none",
    )

    if page is not None:
        expected = stored_feed(server)

        async def dom_rows():
            return [tuple(row) for row in await page.evaluate(DOM_ROWS)]

        deadline = time.monotonic() + CONVERGE_SECONDS
        shown = await dom_rows()
        while shown != expected and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            shown = await dom_rows()
        converged = shown == expected
        pending = sum(state in {"pending", "retrying"} for _, state, _ in shown)
        line(
            "feed converged",
            f"{'yes' if converged else 'no'} ({len(shown)} rows"
            + ("" if converged else f", {pending} still open on the page")
            + ")",
        )
        await browser.close()
        await playwright.stop()
    else:
        line("feed converged", f"not checked ({CHROMIUM} missing)")
    line("server peak RSS", f"{server.peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    asyncio.run(main(parser.parse_args().clients))
