"""Delivery pipeline benchmarks: throughput, per-delivery costs and memory, as figures.

Measures, against local aiohttp receivers in their own processes (loopback only),
Segment's exact webhook request for an "Order Completed" track event (~2 KB):
1. HTTP only: a bare aiohttp loop (one ClientSession) and the engine's own
   transport.send, without a database: requests/s and CPU µs per request;
2. the pure steps spec.normalise, spec.validate_event, webhook.build_request, and
   one Django SQLite connection open, in µs (timeit, best of several);
3. enqueueing on a temporary SQLite file: delivery_enqueue one event at a time,
   and deliveries_enqueue of 10,000 events in one call and in calls of 500 (as
   the tracking API would): deliveries/s;
4. the engine end to end (claim, attempt written ahead, send, every attempt
   recorded) against a bare aiohttp loop to the same receiver at the same
   concurrency, for a receiver that answers at once (10 in flight) and one that
   answers after 20 ms (50 in flight): deliveries/s and their ratio; CPU time
   per delivery of all the process's threads, against the bare loop's, split
   into the queue's claim, its recording, and the rest; the database work;
5. one deliveries_claim(limit=50) with 1,000 and 10,000 due rows: a run at its
   cap (concurrency 1, its three rows claimed) beside a few plain due rows, which
   must be what it claims; then plain due rows only (median ms; what a call
   claims is freed again, so every call sees the same rows);
6. memory of an engine run: ru_maxrss growth, and a tracemalloc peak on a run of
   N fresh deliveries.

Other processes on the machine move every figure: the load average is printed
at the start and the end, and rates are best of several rounds.
Each figure with a goal prints it beside the figure ("target ≥ 0.35: pass").

Usage: .venv/bin/python benchmarks/run.py [--events N]   (make bench)
"""

import argparse
import asyncio
import contextlib
import os
import platform
import random
import resource
import statistics
import tempfile
import time
import timeit
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
from common import against, receiver_process

from sandbox import spec
from sandbox.delivery import transport, webhook

API_KEY = "benchmark-write-key"
SAMPLE_SEED = 2024
CUSTOM_SETTINGS = {"region": "eu", "sendRevenue": True}
BARE_ROUNDS = 3
# The engine and the bare loop take turns, round for round, as often each: other
# work on the machine then weighs on both alike, and neither gets more tries at
# a quiet moment than the other.
PAIRED_ROUNDS = 3
TIMEIT_REPEAT = 7
WARM_UP_DELIVERIES = 200


@dataclass(frozen=True)
class Condition:
    """A receiver and the number of requests in flight the engine is measured at."""

    name: str
    delay_ms: float
    concurrency: int
    ratio_target: float


INSTANT = Condition("receiver answers at once", 0, 10, 0.35)
SLOW = Condition("receiver answers after 20 ms", 20, 50, 0.8)
CONDITIONS = (INSTANT, SLOW)

BULK_EVENTS = 10_000
BULK_BATCH = 500
SINGLE_ENQUEUES = 1000
ENQUEUE_TARGET = 5000  # deliveries/s
CPU_MULTIPLE_TARGET = 4.0
CLAIM_LIMIT = 50
CLAIM_CALLS = 15
CLAIM_ROUNDS = 2
CLAIM_TARGET_MS = 5.0
# "Flat": the claim with 10,000 due rows costs at most this multiple of 1,000.
CLAIM_FLAT = 1.5
PLAIN_DUE_BESIDE_RUN = 5


def line(label: str, value: str) -> None:
    print(f"  {label:<46} {value}", flush=True)


def heading(text: str) -> None:
    print(f"\n{text}", flush=True)


def sample_event() -> dict:
    # Seeded: the same event, so the same body size, in every run.
    return spec.sample_event(
        "track", template="Order Completed", rng=random.Random(SAMPLE_SEED)
    )


def sample_request(url: str) -> tuple[dict, webhook.WebhookRequest]:
    event = spec.normalise(sample_event(), now=datetime.now(UTC))
    request = webhook.build_request(
        url=url, api_key=API_KEY, custom_settings=CUSTOM_SETTINGS, event=event
    )
    return event, request


@dataclass
class Rate:
    """Sends per second and CPU seconds of this process (all threads) per send."""

    per_second: float
    cpu_us: float


async def _in_flight(
    n: int, concurrency: int, send_one: Callable[[], object]
) -> tuple[float, float]:
    """Wall and CPU seconds to run send_one n times, `concurrency` at a time."""
    remaining = iter(range(n))

    async def worker() -> None:
        for _ in remaining:
            await send_one()

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, time.process_time() - cpu_started


async def _best_of(
    n: int, concurrency: int, send_one, rounds: int = BARE_ROUNDS
) -> Rate:
    await _in_flight(min(n, 200), concurrency, send_one)  # connect, warm up
    rounds = [await _in_flight(n, concurrency, send_one) for _ in range(rounds)]
    wall, cpu = min(rounds)
    return Rate(n / wall, cpu / n * 1e6)


async def bare_loop(
    url: str,
    request: webhook.WebhookRequest,
    n: int,
    concurrency: int,
    rounds: int = BARE_ROUNDS,
) -> Rate:
    """Best of `rounds` of plain aiohttp posts; every answer must be a 200."""
    failures = 0

    async def post() -> None:
        nonlocal failures
        async with session.post(
            url, data=request.body, headers=request.headers
        ) as response:
            await response.read()
            failures += response.status != 200

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        skip_auto_headers=("Accept-Encoding", "User-Agent", "Accept", "Content-Type"),
    ) as session:
        rate = await _best_of(n, concurrency, post, rounds)
    if failures:
        raise SystemExit(f"bare loop: {failures} requests did not get a 200")
    return rate


async def transport_loop(
    url: str, request: webhook.WebhookRequest, n: int, concurrency: int
) -> Rate:
    """Through the engine's transport.send and session, no database."""
    failures = 0

    async def send() -> None:
        nonlocal failures
        exchange = await transport.send(
            session, request, timeout=5.0, body_limit=256 * 1024
        )
        failures += exchange.status != 200

    session = transport.new_session(concurrency=concurrency)
    async with session:
        rate = await _best_of(n, concurrency, send)
    if failures:
        raise SystemExit(f"transport loop: {failures} requests did not get a 200")
    return rate


def best_us(call: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=TIMEIT_REPEAT)) / number * 1e6


def pipeline_steps(event: dict, url: str) -> None:
    raw = sample_event()
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
    # As the server's engine process and `runengine` run (sandbox.heap).
    from sandbox import heap

    heap.settle()


def connection_open_us() -> float:
    """One open (with the WAL init_command) and close of Django's SQLite connection."""
    from django.db import connection

    def reopen() -> None:
        connection.ensure_connection()
        connection.close()

    return best_us(reopen, 200)


# The database side ---------------------------------------------------------------


def target_for(url: str):
    from sandbox.delivery.targets import Target

    return Target(
        name="benchmark",
        endpoint_url=url,
        api_key=API_KEY,
        custom_settings=CUSTOM_SETTINGS,
        timeout_seconds=5.0,
    )


def enqueue(url: str, n: int, *, run=None, batch: int = BULK_EVENTS) -> list[int]:
    """Enqueue n new events (fresh messageIds, so dedupe lets them all through)
    through the bulk door, `batch` per call; their ids."""
    from sandbox.delivery.models import Door
    from sandbox.delivery.services import deliveries_enqueue

    target, event, ids = target_for(url), sample_event(), []
    for start in range(0, n, batch):
        stored = deliveries_enqueue(
            target=target,
            events=[event] * min(batch, n - start),
            door=Door.CLI,
            run=run,
            fresh=True,
        )
        ids += [delivery.pk for delivery in stored]
    return ids


def retire(ids: list[int] | None = None) -> None:
    """Due rows made into history (delivered), so the engine leaves them alone."""
    from sandbox.delivery.models import OPEN_STATES, Delivery, State

    rows = Delivery.objects.filter(state__in=OPEN_STATES)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    rows.update(
        state=State.DELIVERED, next_attempt_at=None, claimed_by="", claimed_until=None
    )


def enqueue_rates(url: str) -> list[int]:
    """The doors' side; returns the ids of the bulk rows, still due."""
    from sandbox.delivery.models import Door
    from sandbox.delivery.services import delivery_enqueue

    target, event = target_for(url), sample_event()
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(SINGLE_ENQUEUES):
        delivery_enqueue(target=target, event=event, door=Door.CLI, fresh=True)
    rate = SINGLE_ENQUEUES / (time.perf_counter() - started)
    cpu_us = (time.process_time() - cpu_started) / SINGLE_ENQUEUES * 1e6
    line(
        "delivery_enqueue, one event a call",
        f"{rate:8.0f} deliveries/s, {cpu_us:4.0f} µs CPU each",
    )
    retire()
    ids = []
    for label, batch in (
        (f"deliveries_enqueue, {BULK_EVENTS:,} in one call", BULK_EVENTS),
        (f"deliveries_enqueue, {BULK_EVENTS:,} in calls of {BULK_BATCH}", BULK_BATCH),
    ):
        started, cpu_started = time.perf_counter(), time.process_time()
        ids += enqueue(url, BULK_EVENTS, batch=batch)
        rate = BULK_EVENTS / (time.perf_counter() - started)
        cpu_us = (time.process_time() - cpu_started) / BULK_EVENTS * 1e6
        line(
            label,
            f"{rate:8.0f} deliveries/s, {cpu_us:4.0f} µs CPU each "
            + against(rate, ENQUEUE_TARGET, at_least=True),
        )
    return ids


@dataclass
class DbWork:
    """What the engine asked of the database during one run."""

    connections: int = 0
    queries: int = 0
    query_seconds: float = 0.0
    service_seconds: dict[str, float] = field(default_factory=dict)
    # CPU of the database thread inside each service (time.thread_time).
    service_cpu: dict[str, float] = field(default_factory=dict)
    service_calls: dict[str, int] = field(default_factory=dict)
    service_rows: dict[str, int] = field(default_factory=dict)

    def __call__(self, execute, sql, params, many, context):
        self.queries += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.query_seconds += time.perf_counter() - started


# The queue's calls the engine makes, and what the rows each handles are.
WATCHED = {
    "deliveries_claim": "claimed",
    "attempts_record_and_claim": "claimed",
    "attempts_record": "results",
}


@contextlib.contextmanager
def watching_db() -> Iterator[DbWork]:
    """Count connections opened and queries run, and time the queue's claim and
    record (with the rows each handled).

    The engine looks these up on the queue module at call time, so timing
    wrappers put there for the run see every call (inside the database thread).
    """
    from django.db.backends.signals import connection_created

    from sandbox.delivery import queue

    work = DbWork()

    def opened(sender, connection, **kwargs) -> None:
        work.connections += 1
        if work not in connection.execute_wrappers:
            connection.execute_wrappers.append(work)

    def timed(name: str, function: Callable) -> Callable:
        def wrapper(**kwargs):
            started, cpu_started = time.perf_counter(), time.thread_time()
            try:
                answer = function(**kwargs)
            finally:
                spent = time.perf_counter() - started
                cpu = time.thread_time() - cpu_started
                work.service_seconds[name] = work.service_seconds.get(name, 0) + spent
                work.service_cpu[name] = work.service_cpu.get(name, 0) + cpu
                work.service_calls[name] = work.service_calls.get(name, 0) + 1
            rows = len(kwargs["results"] if WATCHED[name] == "results" else answer)
            work.service_rows[name] = work.service_rows.get(name, 0) + rows
            return answer

        return wrapper

    originals = {name: getattr(queue, name) for name in WATCHED}
    connection_created.connect(opened)
    for name, function in originals.items():
        setattr(queue, name, timed(name, function))
    try:
        yield work
    finally:
        connection_created.disconnect(opened)
        for name, function in originals.items():
            setattr(queue, name, function)
        from django.db import connections

        for connection in connections.all():
            if work in connection.execute_wrappers:
                connection.execute_wrappers.remove(work)


def run_engine(concurrency: int) -> tuple[int, float, float]:
    """Engine(concurrency).run_due(): sent, wall seconds, CPU seconds (all threads)."""
    from sandbox.delivery.engine import Engine

    async def run() -> int:
        engine = Engine(concurrency=concurrency)
        try:
            return await engine.run_due()
        finally:
            await engine.close()

    started, cpu_started = time.perf_counter(), time.process_time()
    sent = asyncio.run(run())
    return sent, time.perf_counter() - started, time.process_time() - cpu_started


def delivered(ids: list[int]) -> int:
    from sandbox.delivery.models import Attempt, Delivery, Outcome, State

    attempts = Attempt.objects.filter(
        delivery_id__in=ids, outcome=Outcome.GREEN, response_status=200
    ).count()
    deliveries = Delivery.objects.filter(pk__in=ids, state=State.DELIVERED).count()
    return min(attempts, deliveries)


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def engine_against_bare(condition: Condition, url: str, n: int) -> None:
    """The engine's best round against the bare loop's, the two taking turns
    (PAIRED_ROUNDS each): other work on the machine hits both alike."""
    _, request = sample_request(url)
    concurrency = condition.concurrency
    heading(
        f"Engine end to end, {condition.name}, {concurrency} in flight, N={n}"
        f" (best of {PAIRED_ROUNDS} rounds each, engine and bare loop in turn)"
    )
    run_engine_on(enqueue(url, WARM_UP_DELIVERIES), concurrency)
    bare_rounds, runs = [], []
    for _ in range(PAIRED_ROUNDS):
        bare_rounds.append(asyncio.run(bare_loop(url, request, n, concurrency, 1)))
        ids = enqueue(url, n)
        rss_before = maxrss_mb()
        with watching_db() as work:
            sent, seconds, cpu = run_engine(concurrency)
        rss_growth = maxrss_mb() - rss_before
        if sent != n or delivered(ids) != n:
            raise SystemExit(f"engine: sent {sent}, recorded {delivered(ids)} of {n}")
        runs.append((seconds, cpu, work, rss_growth))
    seconds, cpu, work, rss_growth = min(runs, key=lambda run: run[0])
    bare = max(bare_rounds, key=lambda rate: rate.per_second)
    rate, cpu_us = n / seconds, cpu / n * 1e6
    line("bare aiohttp loop", f"{bare.per_second:8.0f} requests/s")
    line("Engine.run_due", f"{rate:8.0f} deliveries/s  ({seconds:.2f} s)")
    ratio = rate / bare.per_second
    line(
        "  ratio to the bare loop",
        f"{ratio:8.2f} {against(ratio, condition.ratio_target, at_least=True)}",
    )
    line("CPU, bare loop", f"{bare.cpu_us:8.0f} µs/request")
    multiple = cpu_us / bare.cpu_us
    line(
        "CPU, engine (all threads)",
        f"{cpu_us:8.0f} µs/delivery = {multiple:.1f}x the bare loop"
        f" {against(multiple, CPU_MULTIPLE_TARGET, at_least=False, unit='x')}",
    )
    elsewhere = cpu
    for name, rows_are in WATCHED.items():
        calls = max(work.service_calls.get(name, 0), 1)
        spent = work.service_seconds.get(name, 0.0)
        spent_cpu = work.service_cpu.get(name, 0.0)
        elsewhere -= spent_cpu
        rows = work.service_rows.get(name, 0)
        line(
            f"  in queue.{name} (database thread)",
            f"{spent_cpu / n * 1e6:8.0f} µs/delivery;"
            f" {spent / calls * 1e3:.1f} ms/call x {calls}"
            f" ({rows / calls:.0f} {rows_are} each), {spent / seconds:.0%} of the run",
        )
    line(
        "  elsewhere (sender, aiohttp, asyncio, handoffs)",
        f"{elsewhere / n * 1e6:8.0f} µs/delivery",
    )
    line("  SQLite connections opened", f"{work.connections:8d}")
    line("  queries", f"{work.queries / n:8.2f} per delivery")
    # SQLite steps a SELECT's rows on fetch, so this undercounts reads.
    line("  time inside execute()", f"{work.query_seconds / n * 1e6:8.0f} µs/delivery")
    line("  ru_maxrss growth during the run", f"{rss_growth:8.1f} MB")


def run_engine_on(ids: list[int], concurrency: int) -> None:
    sent, _, _ = run_engine(concurrency)
    if sent != len(ids):
        raise SystemExit(f"engine (warm-up): sent {sent}, expected {len(ids)}")


# Claiming ------------------------------------------------------------------------


def claim_ms(expected: set[int] | None, *, calls: int = CLAIM_CALLS) -> float:
    """Median ms of deliveries_claim(limit=CLAIM_LIMIT); what it claims is freed
    again after each call (attempts deleted, claim cleared), so every call sees
    the same rows. With `expected`, the claim must take exactly those rows."""
    from sandbox.delivery.models import Attempt, Delivery
    from sandbox.delivery.queue import deliveries_claim

    costs = []
    for call in range(calls):
        started = time.perf_counter()
        claimed = deliveries_claim(
            claimer="benchmark-claim",
            token=f"benchmark-claim#{call}",
            limit=CLAIM_LIMIT,
            lease_seconds=90,
        )
        costs.append((time.perf_counter() - started) * 1e3)
        ids = {c.delivery.pk for c in claimed}
        if expected is not None and ids != expected:
            raise SystemExit(f"claim took {sorted(ids)[:10]}, expected {expected}")
        if expected is None and len(ids) != CLAIM_LIMIT:
            raise SystemExit(f"claim took {len(ids)} rows, expected {CLAIM_LIMIT}")
        Attempt.objects.filter(pk__in=[c.attempt.pk for c in claimed]).delete()
        Delivery.objects.filter(pk__in=ids).update(claimed_by="", claimed_until=None)
    return statistics.median(costs)


def make_due(ids: list[int], due: int) -> None:
    """The first `due` of these rows due now, the others history."""
    from django.utils import timezone

    from sandbox.delivery.models import Delivery, State

    retire(ids[due:])
    Delivery.objects.filter(pk__in=ids[:due]).update(
        state=State.PENDING, next_attempt_at=timezone.now()
    )


def claims_at(due_counts: tuple[int, ...], make, expected: set[int] | None) -> None:
    """One line per number of due rows, then how the last compares with the first.

    The counts take turns CLAIM_ROUNDS times and each keeps its lowest median, so
    a burst of other work on the machine does not pass for growth.
    """
    costs = dict.fromkeys(due_counts, float("inf"))
    for _ in range(CLAIM_ROUNDS):
        for due in due_counts:
            make(due)
            costs[due] = min(costs[due], claim_ms(expected))
    claimed = CLAIM_LIMIT if expected is None else len(expected)
    for due, ms in costs.items():
        target = (
            against(ms, CLAIM_TARGET_MS, at_least=False, unit=" ms")
            if expected is not None
            else f"({ms / claimed * 1e3:.0f} µs per row claimed)"
        )
        line(f"  {due:,} due", f"{ms:8.2f} ms {target}")
    growth = costs[due_counts[-1]] / costs[due_counts[0]]
    flat = against(growth, CLAIM_FLAT, at_least=False, unit="x")
    line(
        f"  {due_counts[-1]:,} due against {due_counts[0]:,}: flat?",
        f"{growth:8.2f}x {flat}",
    )


def claim_costs(url: str, history_ids: list[int]) -> None:
    """Claiming among many due rows: a run held at its cap beside a few plain due
    rows (the claim must take those, and nothing of the run), then plain rows."""
    from django.utils import timezone

    from sandbox.delivery.models import Delivery, Door, Run, State
    from sandbox.delivery.queue import claimed_at_most

    heading(
        f"deliveries_claim(limit={CLAIM_LIMIT}), median of {CLAIM_CALLS} calls"
        f" (lower of {CLAIM_ROUNDS} rounds),"
        f" {Delivery.objects.count() + BULK_EVENTS + PLAIN_DUE_BESIDE_RUN:,}"
        " rows stored"
    )
    run = Run.objects.create(door=Door.CLI, label="benchmark at its cap", concurrency=1)
    run_ids = enqueue(url, BULK_EVENTS, run=run)
    retire(run_ids)
    # The run's rows are claimed by another engine, one in flight and the rest
    # ahead of it: the run has no room.
    taken = claimed_at_most(1)
    Delivery.objects.filter(pk__in=run_ids[:taken]).update(
        state=State.PENDING,
        next_attempt_at=timezone.now(),
        claimed_by="benchmark-other-engine",
        claimed_until=timezone.now() + timedelta(minutes=5),
    )
    plain = set(enqueue(url, PLAIN_DUE_BESIDE_RUN))
    line(
        f"a run at its cap (concurrency 1, {taken} claimed),",
        f"+ {PLAIN_DUE_BESIDE_RUN} plain due rows, which are claimed",
    )
    claims_at((1000, BULK_EVENTS), lambda due: make_due(run_ids[taken:], due), plain)
    retire()
    Run.objects.filter(pk=run.pk).update(settled_at=timezone.now())

    line("plain due rows only", f"{CLAIM_LIMIT} claimed")
    claims_at((1000, BULK_EVENTS), lambda due: make_due(history_ids, due), None)
    retire()


# Memory --------------------------------------------------------------------------


def traced_memory(url: str, n: int) -> None:
    heading(f"Memory of an engine run, {INSTANT.concurrency} in flight")
    enqueue(url, n)
    tracemalloc.start()
    tracemalloc.reset_peak()
    sent, _, _ = run_engine(INSTANT.concurrency)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if sent != n:
        raise SystemExit(f"engine (traced): sent {sent}, expected {n}")
    line(f"tracemalloc peak, {n} fresh deliveries", f"{peak / 2**20:8.1f} MB")
    line("tracemalloc still held after the run", f"{current / 2**20:8.1f} MB")


def load_average() -> str:
    """Other work on the machine moves every figure here; say how much there was."""
    one, five, _ = os.getloadavg()
    return (
        f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()}"
        " CPUs: above 1 or so, other processes share the cores and rates drop"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="N (default 2000)")
    n = parser.parse_args().events
    if n < 1:
        parser.error("--events must be at least 1")

    print(
        f"machine: Python {platform.python_version()} ({platform.machine()}),"
        f" {os.cpu_count()} CPUs, aiohttp {aiohttp.__version__}; N={n};"
        " receivers in their own processes",
        flush=True,
    )
    print(load_average(), flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="sandbox-bench-") as data_dir,
        receiver_process() as url,
        receiver_process(delay_ms=SLOW.delay_ms) as slow_url,
    ):
        event, request = sample_request(url)
        concurrency = INSTANT.concurrency
        heading(
            f"HTTP only, {INSTANT.name} ({len(request.body)} B track event,"
            f" {concurrency} in flight, best of {BARE_ROUNDS})"
        )
        for label, loop in (
            ("bare aiohttp loop", bare_loop),
            ("engine transport.send, no database", transport_loop),
        ):
            rate = asyncio.run(loop(url, request, n, concurrency))
            line(
                label,
                f"{rate.per_second:8.0f} requests/s, {rate.cpu_us:4.0f} µs CPU each",
            )

        heading("Per-event pipeline steps (best of timeit repeats)")
        pipeline_steps(event, url)

        heading("Enqueueing on SQLite (temporary file)")
        setup_django(data_dir)
        line("SQLite connection open + close", f"{connection_open_us():8.0f} µs")
        history_ids = enqueue_rates(url)
        retire()

        for condition in CONDITIONS:
            engine_against_bare(condition, slow_url if condition.delay_ms else url, n)

        claim_costs(url, history_ids)
        traced_memory(url, n)
    print(f"\n{load_average()}", flush=True)


if __name__ == "__main__":
    main()
