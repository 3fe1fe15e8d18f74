"""Page benchmark: how long the history and subscription pages take over a long history.

Fills a data directory with N stored deliveries (benchmarks/fixtures.py, cached
under /tmp), starts `manage.py runserver --noreload` on a copy with the engine
off and DEBUG off, and GETs each page one request at a time: history unfiltered
and an older page of it, each filter alone, the oldest 1 % (until = the 1st
percentile of created_at), a time window, two filters with a time bound, a
search by userId and by messageId, the subscriptions list and the busy
subscription's page. Prints p50 and p95 of each against the target.

Usage: .venv/bin/python benchmarks/pages.py [--deliveries N] [--requests R]
"""

import argparse
import http.client
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import fixtures
from common import Server, line, percentile

TARGET_P95_MS = 100.0
WARM_UP = 2


def form_time(stored: str) -> str:
    """A stored created_at as the history form's datetime-local field sends it."""
    return datetime.fromisoformat(stored).strftime("%Y-%m-%dT%H:%M:%S")


def pages(server: Server, n: int) -> list[tuple[str, str]]:
    """(label, path) of every page measured, with parameters from the data."""

    def one(sql: str, *params):
        return server.query(sql, *params)[0][0]

    busy = one(
        "SELECT id FROM subscriptions_subscription WHERE name = ?", fixtures.BUSY_NAME
    )
    small = one("SELECT id FROM subscriptions_subscription WHERE name = 'Gamma CRM'")
    newest_id = one("SELECT max(id) FROM delivery_delivery")
    oldest_1 = one(
        "SELECT created_at FROM delivery_delivery ORDER BY created_at LIMIT 1 OFFSET ?",
        n // 100,
    )
    middle = datetime.fromisoformat(
        one(
            "SELECT created_at FROM delivery_delivery ORDER BY created_at LIMIT 1"
            " OFFSET ?",
            n // 2,
        )
    )
    newest = datetime.fromisoformat(
        one("SELECT max(created_at) FROM delivery_delivery")
    )
    # A user with a handful of deliveries, and one messageId.
    user = one("SELECT user_id FROM delivery_delivery WHERE id = ?", newest_id // 3)
    message = one("SELECT message_id FROM delivery_delivery WHERE id = ?", n // 7)
    day = timedelta(days=1)

    def history(**params) -> str:
        return "/history/?" + urlencode(params) if params else "/history/"

    def at(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M")

    return [
        ("history, unfiltered", history()),
        ("history, an older page (before = middle id)", history(before=newest_id // 2)),
        ("history, busy subscription", history(subscription=busy)),
        ("history, small subscription", history(subscription=small)),
        ("history, type = identify", history(type="identify")),
        ("history, event = Order Completed", history(event="Order Completed")),
        ("history, outcome = yellow", history(outcome="yellow")),
        ("history, state = failed", history(state="failed")),
        ("history, state = pending (rare)", history(state="pending")),
        ("history, injected duplicates only", history(duplicates="on")),
        ("history, status = 503", history(status=503)),
        ("history, since = a day ago", history(since=at(newest - day))),
        ("history, until = oldest 1 %", history(until=form_time(oldest_1))),
        (
            "history, one day 30 days ago",
            history(since=at(middle), until=at(middle + day)),
        ),
        (
            "history, busy subscription, oldest 1 %",
            history(subscription=busy, until=form_time(oldest_1)),
        ),
        (
            "history, type = track, since a day ago",
            history(type="track", since=at(newest - day)),
        ),
        ("history, search userId", history(q=user)),
        ("history, search messageId", history(q=message)),
        ("history, search a messageId prefix", history(q=message[:8])),
        ("history, event name part, other case", history(event="order comp")),
        ("history, event name part matching nothing", history(event="zzz-none")),
        ("subscriptions list", "/subscriptions/"),
        ("busy subscription's page", f"/subscriptions/{busy}/"),
        ("busy subscription's edit page", f"/subscriptions/{busy}/edit/"),
    ]


def measure(server: Server, path: str, requests: int) -> tuple[list[float], int]:
    """Seconds per GET (the whole body read), and the last status."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    took, status = [], 0
    try:
        for number in range(WARM_UP + requests):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
            if number >= WARM_UP:
                took.append(elapsed)
    finally:
        connection.close()
    return sorted(took), status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=fixtures.DEFAULT_DELIVERIES)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    print(
        f"Pages: GET over {args.deliveries:,} stored deliveries, {args.requests}"
        f" requests each, one at a time, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(prefix="sandbox-pages-") as data_dir:
        started = time.perf_counter()
        cached = fixtures.cached_path(args.deliveries).exists()
        fixtures.fill(data_dir, args.deliveries)
        how = "copied from the cache" if cached else "generated"
        line("stored deliveries", f"{how} in {time.perf_counter() - started:.1f} s")
        server = Server(Path(data_dir), engine=False)
        server.start()
        try:
            report(server, args.deliveries, args.requests)
        finally:
            server.stop()


def report(server: Server, n: int, requests: int) -> None:
    line("page", f"{'p50':>8} {'p95':>8}   target p95 < {TARGET_P95_MS:.0f} ms")
    failed = []
    for label, path in pages(server, n):
        took, status = measure(server, path, requests)
        p50 = percentile(took, 0.50) * 1000
        p95 = percentile(took, 0.95) * 1000
        verdict = "pass" if p95 < TARGET_P95_MS and status == 200 else "FAIL"
        if verdict != "pass":
            failed.append(label)
        note = "" if status == 200 else f" (HTTP {status})"
        line(label, f"{p50:6.1f} ms {p95:6.1f} ms   {verdict}{note}")
    line("pages over target", ", ".join(failed) if failed else "none")


if __name__ == "__main__":
    main()
