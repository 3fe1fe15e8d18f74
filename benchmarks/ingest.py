"""Tracking API benchmark: events accepted per second by a real server, as figures.

Starts `manage.py runserver --noreload` on a temporary data directory (migrated,
demo seeded, DEBUG off) and a receiver process (benchmarks/receiver.py) that a
subscription points at, with a source connected to it, then:
1. clients post batches of 100 events to /v1/batch (analytics-python's upload
   size), several at once: events/s accepted, from the first request sent to the
   last answer; answer latency p50 and p95;
2. clients post single events to /v1/track: requests/s and latency;
3. one batch of 2,500 events to a source connected to two subscriptions: how
   long its answer takes;
4. checks that each event sent was stored as accepted and delivered once to
   each subscription.
Before them, /v1/m (answered without storing) shows the server's own ceiling
for requests/s on this machine; after each step the benchmark waits until every
stored request is expanded and every delivery is final, and prints how long
that took, so each step starts on an idle server.

Accepted means stored and answered 200 (Segment answers once it has queued a
request); expanding the stored requests into events and deliveries, and
delivering those, happen afterwards and are timed in step 4. Other processes on
the machine move every figure: the load average is printed at the start and end.

Usage: .venv/bin/python benchmarks/ingest.py [--batch-events N] [--singles N]
(make bench)
"""

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from common import Server, against, line, percentile, receiver_process

SPOOL = "ingest-spool.sqlite3"
WRITE_KEY = "bench-write-key"
TWO_WRITE_KEY = "bench-two-write-key"
BATCH_SIZE = 100
BIG_BATCH = 2_500
BATCH_CLIENTS = 8
SINGLE_CLIENTS = 16
SETTLE_SECONDS = 600

TARGET_EVENTS_PER_SECOND = 20_000
TARGET_REQUESTS_PER_SECOND = 1_000
TARGET_BIG_BATCH_MS = 500


def event(run: str, number: int) -> dict:
    """An analytics-python track, about 400 bytes."""
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{number % 1000}",
        "anonymousId": None,
        "messageId": f"{run}-{number}",
        "timestamp": "2026-01-01T00:00:00.000+00:00",
        "properties": {"orderId": f"o-{number}", "revenue": 25.5, "currency": "USD"},
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        "integrations": {},
    }


async def post_all(
    url: str, bodies: list[tuple[str, bytes]], *, clients: int
) -> tuple[float, list[float], list[str]]:
    """Send every body with `clients` requests in flight: (seconds, latencies,
    failures)."""
    queue = list(reversed(bodies))
    latencies: list[float] = []
    failures: list[str] = []
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            while queue:
                path, body = queue.pop()
                started = time.perf_counter()
                try:
                    async with session.post(
                        url + path, data=body, headers=headers
                    ) as response:
                        await response.read()
                        if response.status != 200:
                            failures.append(f"HTTP {response.status}")
                            continue
                except (aiohttp.ClientError, TimeoutError) as error:
                    failures.append(type(error).__name__)
                    continue
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return time.perf_counter() - started, latencies, failures


def spooled(server: Server) -> int:
    """Requests stored but not yet expanded."""
    with sqlite3.connect(server.data_dir / SPOOL, timeout=30) as db:
        return db.execute("SELECT count(*) FROM request").fetchone()[0]


def latency_line(label: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    if ordered:
        p50 = percentile(ordered, 0.5) * 1000
        p95 = percentile(ordered, 0.95) * 1000
        line(label, f"p50 {p50:.1f} ms, p95 {p95:.1f} ms")


async def drain(server: Server, label: str) -> bool:
    """Wait until every stored request is expanded and every delivery final."""
    started = time.perf_counter()
    while time.perf_counter() - started < SETTLE_SECONDS:
        open_rows = server.query(
            "SELECT count(*) FROM delivery_delivery "
            "WHERE state IN ('pending', 'retrying')"
        )[0][0]
        if spooled(server) == 0 and open_rows == 0:
            line(label, f"{time.perf_counter() - started:.1f} s")
            return True
        await asyncio.sleep(0.25)
    line(label, f"not within {SETTLE_SECONDS} s")
    return False


async def measure(server: Server, batch_events: int, singles: int) -> bool:
    run = uuid.uuid4().hex[:8]
    metrics = [("/v1/m", b'{"series": []}')] * singles
    seconds, answered, _ = await post_all(server.url, metrics, clients=SINGLE_CLIENTS)
    print("0. the server's ceiling: /v1/m, answered without storing", flush=True)
    line("requests/s", f"{len(answered) / seconds:,.0f} ({SINGLE_CLIENTS} clients)")

    batches = [
        (
            "/v1/batch",
            json.dumps(
                {
                    "writeKey": WRITE_KEY,
                    "sentAt": "2026-01-01T00:00:01.000+00:00",
                    "batch": [event(run, start + n) for n in range(BATCH_SIZE)],
                }
            ).encode(),
        )
        for start in range(0, batch_events, BATCH_SIZE)
    ]
    sent_in_batches = len(batches) * BATCH_SIZE
    seconds, latencies, failures = await post_all(
        server.url, batches, clients=BATCH_CLIENTS
    )
    rate = len(latencies) * BATCH_SIZE / seconds
    print(f"1. batches of {BATCH_SIZE}, {BATCH_CLIENTS} clients", flush=True)
    line(
        "events accepted",
        f"{len(latencies) * BATCH_SIZE:,} of {sent_in_batches:,} in {seconds:.2f} s",
    )
    line(
        "events/s accepted",
        f"{rate:,.0f} "
        + against(rate, TARGET_EVENTS_PER_SECOND, at_least=True, unit=" events/s"),
    )
    latency_line("answer latency", latencies)
    line("failed requests", f"{len(failures)} {sorted(set(failures))}")
    settled = await drain(server, "then all expanded and delivered after")

    singles_bodies = [
        (
            "/v1/track",
            json.dumps(
                {**event(run, sent_in_batches + n), "writeKey": WRITE_KEY}
            ).encode(),
        )
        for n in range(singles)
    ]
    seconds, single_latencies, single_failures = await post_all(
        server.url, singles_bodies, clients=SINGLE_CLIENTS
    )
    per_second = len(single_latencies) / seconds
    print(f"2. single events, {SINGLE_CLIENTS} clients", flush=True)
    line("requests accepted", f"{len(single_latencies):,} of {singles:,}")
    line(
        "requests/s accepted",
        f"{per_second:,.0f} "
        + against(
            per_second, TARGET_REQUESTS_PER_SECOND, at_least=True, unit=" requests/s"
        ),
    )
    latency_line("answer latency", single_latencies)
    line("failed requests", f"{len(single_failures)} {sorted(set(single_failures))}")
    settled = await drain(server, "then all expanded and delivered after") and settled

    big_run = f"{run}-big"
    big = json.dumps(
        {
            "writeKey": TWO_WRITE_KEY,
            "batch": [
                {
                    "type": "track",
                    "event": "Big",
                    "userId": "u",
                    "messageId": f"{big_run}-{n}",
                }
                for n in range(BIG_BATCH)
            ],
        }
    ).encode()
    _, [big_latency], _ = await post_all(server.url, [("/v1/batch", big)], clients=1)
    print(f"3. one batch of {BIG_BATCH:,} events to two subscriptions", flush=True)
    line(
        "answered in",
        f"{big_latency * 1000:.0f} ms "
        + against(big_latency * 1000, TARGET_BIG_BATCH_MS, at_least=False, unit=" ms"),
    )
    settled = await drain(server, "then all expanded and delivered after") and settled

    expected = len(latencies) * BATCH_SIZE + len(single_latencies)
    print("4. stored and delivered", flush=True)
    accepted = server.query(
        "SELECT count(*), count(DISTINCT message_id) FROM sources_ingestedevent "
        "WHERE status = 'accepted' AND message_id LIKE ?",
        f"{run}-%",
    )[0]
    delivered = server.query(
        "SELECT count(*), count(DISTINCT message_id) FROM delivery_delivery "
        "WHERE state = 'delivered' AND message_id LIKE ? AND message_id NOT LIKE ?",
        f"{run}-%",
        f"{big_run}-%",
    )[0]
    big_delivered = server.query(
        "SELECT count(*) FROM delivery_delivery WHERE state = 'delivered' "
        "AND message_id LIKE ?",
        f"{big_run}-%",
    )[0][0]
    line(
        "events stored as accepted",
        f"{accepted[0]:,} ({accepted[1]:,} distinct) of {expected + BIG_BATCH:,} sent",
    )
    line("events delivered (one subscription)", f"{delivered[0]:,} of {expected:,}")
    line("big batch delivered (two subscriptions)", f"{big_delivered:,} of 5,000")
    complete = (
        settled
        and accepted == (expected + BIG_BATCH, expected + BIG_BATCH)
        and delivered == (expected, expected)
        and big_delivered == 2 * BIG_BATCH
    )
    line("every event stored and delivered once", "yes" if complete else "NO")
    return complete


def main(batch_events: int, singles: int) -> None:
    print(
        f"Tracking API: runserver on {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="sandbox-ingest-") as data_dir:
        server = Server(Path(data_dir))
        server.prepare()
        with receiver_process() as receiver_url:
            for name in ("Bench receiver", "Bench receiver two"):
                server.manage(
                    "subscription",
                    "create",
                    name,
                    "--endpoint",
                    receiver_url,
                    "--api-key",
                    "bench",
                )
            server.manage(
                "source",
                "create",
                "Bench source",
                "--to",
                "Bench receiver",
                "--write-key",
                WRITE_KEY,
            )
            server.manage(
                "source",
                "create",
                "Bench two",
                "--to",
                "Bench receiver",
                "--to",
                "Bench receiver two",
                "--write-key",
                TWO_WRITE_KEY,
            )
            server.start()
            try:
                complete = asyncio.run(measure(server, batch_events, singles))
            finally:
                line("server peak RSS", f"{server.peak_rss_mb():.0f} MB")
                server.stop()
    print(f"load average at the end {os.getloadavg()[0]:.2f}", flush=True)
    if not complete:
        sys.exit(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-events", type=int, default=30_000)
    parser.add_argument("--singles", type=int, default=3_000)
    options = parser.parse_args()
    main(options.batch_events, options.singles)
