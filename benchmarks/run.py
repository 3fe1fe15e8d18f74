"""Delivery pipeline benchmarks: throughput, per-event costs and memory, as figures.

Measures, against a local aiohttp receiver in its own process (loopback only):
1. a bare aiohttp loop (one ClientSession, 10 in flight) posting Segment's exact
   webhook request for an "Order Completed" track event (~2 KB compact JSON):
   requests/s;
   the engine's own transport.send in the same loop, still without a database;
2. the engine end to end on a temporary SQLite file: delivery_enqueue rate, then
   Engine(concurrency=10).run_due() deliveries/s (claim, request, stored attempt)
   and its ratio to the bare loop, with the database work it did, and what one
   claim of 10 due rows costs as stored history grows;
3. the pure steps spec.normalise, spec.validate_event, webhook.build_request, and
   one Django SQLite connection open, in µs (timeit, best of several);
4. memory of the engine run: ru_maxrss growth, and a tracemalloc peak on a second
   run of N fresh deliveries.

Usage: .venv/bin/python benchmarks/run.py [--events N]   (make bench)
"""

import argparse
import asyncio
import contextlib
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import timeit
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from sandbox import spec
from sandbox.delivery import transport, webhook

RECEIVER = Path(__file__).with_name("receiver.py")
CONCURRENCY = 10
BARE_ROUNDS = 5
TIMEIT_REPEAT = 7
API_KEY = "benchmark-write-key"
CUSTOM_SETTINGS = {"region": "eu", "sendRevenue": True}


def line(label: str, value: str) -> None:
    print(f"  {label:<44} {value}", flush=True)


def heading(text: str) -> None:
    print(f"\n{text}", flush=True)


def sample_request(url: str) -> tuple[dict, webhook.WebhookRequest]:
    event = spec.normalise(
        spec.sample_event("track", template="Order Completed"), now=datetime.now(UTC)
    )
    request = webhook.build_request(
        url=url, api_key=API_KEY, custom_settings=CUSTOM_SETTINGS, event=event
    )
    return event, request


@contextlib.contextmanager
def receiver_process() -> Iterator[str]:
    """The receiver's URL; the process ends when we close its stdin."""
    process = subprocess.Popen(
        [sys.executable, str(RECEIVER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/ok"
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _in_flight(n: int, send_one: Callable[[], object]) -> float:
    """Seconds to run send_one n times, CONCURRENCY at a time."""
    remaining = iter(range(n))

    async def worker() -> None:
        for _ in remaining:
            await send_one()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def bare_loop(url: str, request: webhook.WebhookRequest, n: int) -> float:
    """Best requests/s of plain aiohttp posts; every answer must be a 200."""
    failures = 0

    async def post() -> None:
        nonlocal failures
        async with session.post(
            url, data=request.body, headers=request.headers
        ) as response:
            await response.read()
            failures += response.status != 200

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONCURRENCY),
        skip_auto_headers=("Accept-Encoding", "User-Agent", "Accept", "Content-Type"),
    ) as session:
        await _in_flight(min(n, 200), post)  # open the connections, warm up
        best = max([n / await _in_flight(n, post) for _ in range(BARE_ROUNDS)])
    if failures:
        raise SystemExit(f"bare loop: {failures} requests did not get a 200")
    return best


async def transport_loop(url: str, request: webhook.WebhookRequest, n: int) -> float:
    """Requests/s through the engine's transport.send and session, no database."""
    failures = 0

    async def send() -> None:
        nonlocal failures
        exchange = await transport.send(
            session, request, timeout=5.0, body_limit=256 * 1024
        )
        failures += exchange.status != 200

    session = transport.new_session(concurrency=CONCURRENCY)
    async with session:
        await _in_flight(min(n, 200), send)
        best = max([n / await _in_flight(n, send) for _ in range(BARE_ROUNDS)])
    if failures:
        raise SystemExit(f"transport loop: {failures} requests did not get a 200")
    return best


def best_us(call: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=TIMEIT_REPEAT)) / number * 1e6


def pipeline_steps(event: dict, url: str) -> None:
    raw = spec.sample_event("track", template="Order Completed")
    now = datetime.now(UTC)
    costs = {
        "spec.normalise": best_us(lambda: spec.normalise(raw, now=now), 2000),
        "spec.validate_event": best_us(lambda: spec.validate_event(event), 2000),
        "webhook.build_request": best_us(
            lambda: webhook.build_request(
                url=url, api_key=API_KEY, custom_settings=CUSTOM_SETTINGS, event=event
            ),
            2000,
        ),
    }
    for name, cost in costs.items():
        line(name, f"{cost:8.1f} µs/event")


def setup_django(data_dir: str) -> None:
    # Before django.setup(): the settings read these once, at import.
    os.environ["SANDBOX_DATA_DIR"] = data_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "sandbox.settings"
    os.environ["SANDBOX_ENGINE"] = "off"
    for name in ("DATABASE_URL", "SANDBOX_DB_PATH", "REDIS_URL"):
        os.environ.pop(name, None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


@dataclass
class DbWork:
    """What the engine asked of the database during one run."""

    connections: int = 0
    queries: int = 0
    query_seconds: float = 0.0
    service_seconds: dict[str, float] = field(default_factory=dict)
    service_calls: dict[str, int] = field(default_factory=dict)

    def __call__(self, execute, sql, params, many, context):
        self.queries += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.query_seconds += time.perf_counter() - started


@contextlib.contextmanager
def watching_db() -> Iterator[DbWork]:
    """Count connections opened and queries run, and time the two engine services.

    The services are looked up on the module at call time by the engine, so timing
    wrappers put there for the run see every call (inside the database thread).
    """
    from django.db.backends.signals import connection_created

    from sandbox.delivery import services

    work = DbWork()

    def opened(sender, connection, **kwargs) -> None:
        work.connections += 1
        if work not in connection.execute_wrappers:
            connection.execute_wrappers.append(work)

    def timed(name: str, function: Callable) -> Callable:
        def wrapper(**kwargs):
            started = time.perf_counter()
            try:
                return function(**kwargs)
            finally:
                work.service_seconds[name] = (
                    work.service_seconds.get(name, 0.0) + time.perf_counter() - started
                )
                work.service_calls[name] = work.service_calls.get(name, 0) + 1

        return wrapper

    originals = {
        name: getattr(services, name) for name in ("deliveries_claim", "attempt_record")
    }
    connection_created.connect(opened)
    for name, function in originals.items():
        setattr(services, name, timed(name, function))
    try:
        yield work
    finally:
        connection_created.disconnect(opened)
        for name, function in originals.items():
            setattr(services, name, function)
        from django.db import connections

        for connection in connections.all():
            if work in connection.execute_wrappers:
                connection.execute_wrappers.remove(work)


def enqueue(url: str, n: int) -> float:
    """Seconds to enqueue n deliveries through the one service, as a door does."""
    from sandbox.delivery.models import Door
    from sandbox.delivery.services import Target, delivery_enqueue

    target = Target(
        name="benchmark",
        endpoint_url=url,
        api_key=API_KEY,
        custom_settings=CUSTOM_SETTINGS,
        timeout_seconds=5.0,
    )
    event = spec.sample_event("track", template="Order Completed")
    started = time.perf_counter()
    for _ in range(n):
        # fresh: each is a new event (new messageId), so dedupe lets it through.
        delivery_enqueue(target=target, event=event, door=Door.CLI, fresh=True)
    return time.perf_counter() - started


def run_engine() -> tuple[int, float]:
    from sandbox.delivery.engine import Engine

    async def run() -> int:
        engine = Engine(concurrency=CONCURRENCY)
        try:
            return await engine.run_due()
        finally:
            await engine.close()

    started = time.perf_counter()
    sent = asyncio.run(run())
    return sent, time.perf_counter() - started


def delivered_count() -> int:
    from sandbox.delivery.models import Delivery, State

    return Delivery.objects.filter(state=State.DELIVERED).count()


def connection_open_us() -> float:
    """One open (with the WAL init_command) and close of Django's SQLite connection."""
    from django.db import connection

    def reopen() -> None:
        connection.ensure_connection()
        connection.close()

    return best_us(reopen, 200)


def line_claim_cost(url: str) -> None:
    """One deliveries_claim of 10 due rows among everything stored so far.

    Each repetition enqueues 10 fresh rows, claims them (writing their attempts
    ahead) and retires them as delivered; the claim alone is timed.
    """
    from sandbox.delivery.models import Attempt, Delivery, State
    from sandbox.delivery.services import deliveries_claim

    costs = []
    for repetition in range(5):
        enqueue(url, CONCURRENCY)
        started = time.perf_counter()
        claimed = deliveries_claim(
            claimer="benchmark-claim",
            token=f"benchmark-claim#{repetition}",
            limit=CONCURRENCY,
            lease_seconds=90,
        )
        costs.append((time.perf_counter() - started) * 1e6)
        Attempt.objects.filter(pk__in=[c.attempt.pk for c in claimed]).delete()
        Delivery.objects.filter(pk__in=[c.delivery.pk for c in claimed]).update(
            state=State.DELIVERED, claimed_by="", claimed_until=None
        )
    stored = Delivery.objects.count()
    line(
        f"deliveries_claim, {CONCURRENCY} due of {stored} stored",
        f"{min(costs):8.0f} µs",
    )


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def engine_end_to_end(url: str, n: int, bare_rate: float) -> None:
    enqueue_seconds = enqueue(url, n)
    line("delivery_enqueue", f"{n / enqueue_seconds:8.0f} enqueues/s")
    rss_before = maxrss_mb()
    with watching_db() as work:
        sent, seconds = run_engine()
    rss_growth = maxrss_mb() - rss_before
    delivered = delivered_count()
    if sent != n or delivered != n:
        raise SystemExit(f"engine: sent {sent}, delivered {delivered}, expected {n}")
    rate = n / seconds
    line("Engine.run_due", f"{rate:8.0f} deliveries/s  ({seconds:.2f} s for {n})")
    line("  ratio to the bare aiohttp loop", f"{rate / bare_rate:8.2f}")
    line("  SQLite connections opened", f"{work.connections / n:8.2f} per delivery")
    line("  queries", f"{work.queries / n:8.2f} per delivery")
    # SQLite steps a SELECT's rows on fetch, so this undercounts reads.
    line("  time inside execute()", f"{work.query_seconds / n * 1e6:8.0f} µs/delivery")
    for name in ("deliveries_claim", "attempt_record"):
        calls = work.service_calls.get(name, 0)
        spent = work.service_seconds.get(name, 0.0)
        line(
            f"  services.{name}",
            f"{spent / max(calls, 1) * 1e6:8.0f} µs/call x {calls}"
            f" = {spent / seconds:4.0%} of the run",
        )
    line("SQLite connection open + close", f"{connection_open_us():8.0f} µs")
    line_claim_cost(url)

    heading("Memory of the engine run")
    line("ru_maxrss growth during the timed run", f"{rss_growth:8.1f} MB")
    enqueue(url, n)
    tracemalloc.start()
    tracemalloc.reset_peak()
    sent, _ = run_engine()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if sent != n:
        raise SystemExit(f"engine (traced): sent {sent}, expected {n}")
    line(f"tracemalloc peak, {n} fresh deliveries", f"{peak / 2**20:8.1f} MB")
    line("tracemalloc still held after the run", f"{current / 2**20:8.1f} MB")
    line_claim_cost(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="N (default 2000)")
    n = parser.parse_args().events
    if n < 1:
        parser.error("--events must be at least 1")

    print(
        f"machine: Python {platform.python_version()} ({platform.machine()}),"
        f" {os.cpu_count()} CPUs, aiohttp {aiohttp.__version__};"
        f" N={n}, {CONCURRENCY} in flight, receiver in its own process",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="sandbox-bench-") as data_dir,
        receiver_process() as url,
    ):
        event, request = sample_request(url)
        heading(f"HTTP only ({len(request.body)} B track event, best of {BARE_ROUNDS})")
        bare_rate = asyncio.run(bare_loop(url, request, n))
        line("bare aiohttp loop", f"{bare_rate:8.0f} requests/s")
        rate = asyncio.run(transport_loop(url, request, n))
        line("engine transport.send, no database", f"{rate:8.0f} requests/s")

        heading("Per-event pipeline steps (best of timeit repeats)")
        pipeline_steps(event, url)

        heading("Engine end to end on SQLite (temporary file)")
        setup_django(data_dir)
        engine_end_to_end(url, n, bare_rate)


if __name__ == "__main__":
    main()
