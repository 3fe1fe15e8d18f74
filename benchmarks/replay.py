"""Replay benchmark: the sandbox replaying a file against a bare aiohttp loop.

Prints, in one run on this machine, against local receivers in their own
processes (benchmarks/receiver.py; one answers at once, one after 20 ms):
1. the baseline: a bare aiohttp loop posting the same bodies with the same
   concurrency, recording nothing;
2. `manage.py replay` of N events (default 100,000) to the same receiver, every
   attempt recorded in SQLite and live progress computed (the command's own
   progress lines);
3. the ratio of 2 to 1, the events/s of each, and the replay's peak RSS (the
   sum of the peaks of the command and of its feeding process);
4. a BIG-event file replay's peak RSS, the same way (default 1,000,000; --big 0
   skips it);
5. the history page's response time (p50/p95) while the 20 ms replay runs,
   from a server on the same database (its engine off: the command sends).

Against the instant receiver the pair (bare loop, replay) runs ROUNDS times in
turn, each replay on a fresh copy of a migrated database, and the median
round's figures are the result (every round is printed).

Usage: .venv/bin/python benchmarks/replay.py [--events N] [--big N] [--rounds N]
(make bench)
"""

import argparse
import asyncio
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import aiohttp
from common import ROOT, Server, against, line, percentile, receiver_process

INSTANT = ("receiver answers at once", 0, 10, 0.5)
SLOW = ("receiver answers after 20 ms", 20, 50, 0.9)
SUMMARY = re.compile(r"Summary: .* ([0-9.]+) s, ([0-9]+) events/s")


def event(number: int) -> dict:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{number % 997}",
        "anonymousId": f"anon-{number % 991}",
        "messageId": f"bench-{number}",
        "timestamp": "2024-01-02T03:04:05.000Z",
        "originalTimestamp": "2024-01-02T03:04:04.000Z",
        "sentAt": "2024-01-02T03:04:05.000Z",
        "context": {"library": {"name": "analytics.js", "version": "2.11.1"}},
        "properties": {"order_id": f"o-{number}", "revenue": 25.5, "currency": "USD"},
    }


def write_file(path: Path, count: int) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as out:
        for number in range(count):
            out.write(json.dumps(event(number)).encode() + b"\n")
    return path


# benchmarks/receiver.py stops after 5 minutes; a million-event replay takes
# longer, so its receiver is started with more time.
RECEIVER_LIFETIME_SECONDS = 7200


def receiver(delay_ms: float):
    return receiver_process(
        delay_ms=delay_ms, lifetime=RECEIVER_LIFETIME_SECONDS, path="/hook"
    )


async def bare_loop(url: str, count: int, concurrency: int) -> float:
    bodies = [json.dumps(event(n)).encode() for n in range(count)]
    headers = {"Content-Type": "application/json", "Authorization": "Basic a2V5Og=="}
    queue = iter(bodies)

    async def worker(session) -> None:
        for body in queue:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency)
    ) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def replay(env: dict, path: Path, url: str, concurrency: int) -> tuple[float, float]:
    """Run the command to the end: its events/s and peak RSS (MB)."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "replay",
            str(path),
            "--endpoint",
            url,
            "--api-key",
            "key",
            "--concurrency",
            str(concurrency),
            "--new-message-ids",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Each process's peak: the command's, and its feeding process's.
    peaks: dict[int, int] = {}
    output = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    while process.poll() is None:
        for pid in (process.pid, *_children(process.pid)):
            try:
                for row in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if row.startswith("VmHWM:"):
                        peaks[pid] = max(peaks.get(pid, 0), int(row.split()[1]))
            except OSError:
                pass
        time.sleep(0.2)
    reader.join(10)
    found = SUMMARY.search("".join(output))
    if process.returncode != 0 or found is None:
        raise SystemExit("the replay failed:\n" + "".join(output[-20:]))
    # The sum of the peaks: at most what the two held at once.
    return float(found.group(2)), sum(peaks.values()) / 1024


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in found.split()]


def history_times(url: str, stop: threading.Event) -> list[float]:
    times = []
    while not stop.is_set():
        started = time.perf_counter()
        with urllib.request.urlopen(url + "/history/", timeout=30) as response:
            response.read()
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(0.1)
    return times


def settle() -> None:
    """What the scripts before wrote (the pages benchmarks copy a million rows)
    written to disk first, so the kernel's writing back does not take its
    share of the two cores while a round is measured."""
    os.sync()


# Rounds against the instant receiver, bare loop and replay in turn: one
# round's pair moves with whatever else the machine does that second (from
# 0.49 to 0.54 in runs minutes apart), so the median round is printed.
ROUNDS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    options = parser.parse_args()
    print(f"Replay benchmark (load average {os.getloadavg()[0]:.2f})", flush=True)
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as directory:
        work = Path(directory)
        template = work / "template"
        Server(template, engine=False).manage("migrate", "-v0")

        def fresh(name: str) -> Server:
            """A server on a database of its own, as migrated: each replay
            starts from the same empty history."""
            shutil.copytree(template, work / name)
            return Server(work / name, engine=False)

        path = write_file(work / "events.jsonl.gz", options.events)
        name, delay_ms, concurrency, target = INSTANT
        print(f"{name}, {concurrency} in flight, {options.events:,} events")
        rounds = []
        with receiver(delay_ms) as url:
            for number in range(1, max(options.rounds, 1) + 1):
                settle()
                bare = asyncio.run(bare_loop(url, options.events, concurrency))
                server = fresh(f"instant-{number}")
                rate, rss = replay(server.env, path, url, concurrency)
                # Its database goes unwritten: a gigabyte written back to disk
                # during the next round took a tenth of its rate.
                shutil.rmtree(server.data_dir)
                rounds.append((rate / bare, bare, rate, rss))
                line(
                    f"round {number}",
                    f"bare loop {bare:,.0f} /s, replay {rate:,.0f} /s, "
                    f"ratio {rate / bare:.2f}",
                )
        ratio, bare, rate, _ = sorted(rounds)[len(rounds) // 2]
        line("bare aiohttp loop (median round)", f"{bare:,.0f} events/s")
        line(
            "manage.py replay (median round)",
            f"{rate:,.0f} events/s, peak RSS {max(r[3] for r in rounds):.0f} MB",
        )
        line(
            "ratio (median round)",
            f"{ratio:.2f} {against(ratio, target, at_least=True)}",
        )

        name, delay_ms, concurrency, target = SLOW
        print(f"{name}, {concurrency} in flight, {options.events:,} events")
        with receiver(delay_ms) as url:
            settle()
            bare = asyncio.run(bare_loop(url, options.events, concurrency))
            line("bare aiohttp loop", f"{bare:,.0f} events/s")
            server = fresh("slow")
            server.start()
            stop = threading.Event()
            pages: list[float] = []
            watcher = threading.Thread(
                target=lambda: pages.extend(history_times(server.url, stop))
            )
            watcher.start()
            try:
                rate, rss = replay(server.env, path, url, concurrency)
            finally:
                stop.set()
                watcher.join(60)
                server.stop()
        ratio = rate / bare
        line("manage.py replay", f"{rate:,.0f} events/s, peak RSS {rss:.0f} MB")
        line("ratio", f"{ratio:.2f} {against(ratio, target, at_least=True)}")
        ordered = sorted(pages)
        p95 = percentile(ordered, 0.95)
        line(
            "history page during the replay",
            f"p50 {percentile(ordered, 0.5):.0f} ms, p95 {p95:.0f} ms "
            f"over {len(ordered)} loads "
            f"{against(p95, 250, at_least=False, unit=' ms')}",
        )
        if options.big:
            print(f"{options.big:,}-event file")
            big = write_file(work / "big.jsonl.gz", options.big)
            server = fresh("big")
            settle()
            with receiver(0) as url:
                rate, rss = replay(server.env, big, url, 10)
            line("manage.py replay", f"{rate:,.0f} events/s")
            line(
                "peak RSS",
                f"{rss:.0f} MB {against(rss, 300, at_least=False, unit=' MB')}",
            )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
