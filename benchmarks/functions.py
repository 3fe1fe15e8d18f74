"""Functions benchmark: what running subscription functions on Node.js workers costs.

Prints, in one run on this machine:
1. cold start: a worker process from spawn to ready, and the first invocation
   of a function no worker has loaded yet (the pool keeps one spare started);
2. warm latency, p50/p95 over N sequential invocations of a trivial onTrack,
   and of one that fetches from a local receiver (benchmarks/receiver.py, in its
   own process) through an aiohttp FetchHandler;
3. invocations/s with 16 callers at once (the pool runs 4 at a time);
4. the resident memory of an idle worker.

Usage: .venv/bin/python benchmarks/functions.py [--invocations N]
"""

import argparse
import asyncio
import os
import time
from statistics import median

import aiohttp
from common import line, percentile, receiver_process

from sandbox.functions import runtime

TRIVIAL = "async function onTrack(event, settings) { return event.event; }"
FETCHING = """
async function onTrack(event, settings) {
  const res = await fetch(settings.url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(event),
  });
  return res.status;
}
"""
EVENT = {"type": "track", "event": "Order Completed", "properties": {"total": 9.5}}
CALLERS = 16


def sender(session: aiohttp.ClientSession) -> runtime.FetchHandler:
    async def send(request: runtime.FetchRequest) -> runtime.FetchResponse:
        async with session.request(
            request.method,
            request.url,
            headers=[
                (name, value)
                for name, value in request.headers
                if name.lower() not in ("connection", "content-length")
            ],
            data=request.body or None,
            # The worker's fetch follows redirects itself, one exchange a hop.
            allow_redirects=False,
        ) as response:
            return runtime.FetchResponse(
                status=response.status,
                status_text=response.reason or "",
                headers=list(response.headers.items()),
                body=await response.read(),
            )

    return send


async def no_fetch(request: runtime.FetchRequest) -> runtime.FetchResponse:
    raise runtime.FetchFailure("no network in this benchmark")


async def call(source: str, fetch: runtime.FetchHandler, url: str, key: str) -> float:
    started = time.perf_counter()
    invocation = await runtime.invoke(
        source=source,
        handler="onTrack",
        args=[EVENT],
        settings={"apiKey": "k", "url": url},
        fetch=fetch,
        isolation_key=key,
    )
    if invocation.status != "returned":
        raise RuntimeError(f"the benchmark function failed: {invocation}")
    return (time.perf_counter() - started) * 1000


async def spawn_to_ready(times: int) -> list[float]:
    loop = asyncio.get_running_loop()
    measured = []
    for _ in range(times):
        started = time.perf_counter()
        worker = runtime._Worker(loop, runtime.DEFAULT_MEMORY_MB)
        message = await worker.receive(runtime.READY_TIMEOUT)
        measured.append((time.perf_counter() - started) * 1000)
        worker.kill()
        if not message or message.get("op") != "ready":
            raise RuntimeError(f"the worker did not start: {message}")
    return measured


def latency(label: str, measured: list[float]) -> None:
    ordered = sorted(measured)
    line(
        label,
        f"p50 {percentile(ordered, 0.5):.2f} ms, p95 {percentile(ordered, 0.95):.2f} ms"
        f" over {len(ordered)}",
    )


async def throughput(source: str, fetch, url: str, total: int, keys: int) -> float:
    remaining = iter(range(total))

    async def caller(number: int) -> None:
        for _ in remaining:
            await call(source, fetch, url, key=f"rate-{keys}-{number % keys}")

    started = time.perf_counter()
    await asyncio.gather(*(caller(number) for number in range(CALLERS)))
    return total / (time.perf_counter() - started)


async def measure(invocations: int, url: str) -> None:
    ready = await spawn_to_ready(10)
    line("worker spawn to ready", f"median {median(ready):.0f} ms")
    cold = []
    for number in range(10):
        cold.append(await call(TRIVIAL, no_fetch, url, key=f"cold-{number}"))
        await asyncio.sleep(0.3)  # the spare the pool starts behind it is ready
    line("first invocation of a new function", f"median {median(cold):.0f} ms")
    await runtime.shutdown()
    unspared = []
    for number in range(5):
        unspared.append(await call(TRIVIAL, no_fetch, url, key=f"fresh-{number}"))
        await runtime.shutdown()
    line("same, no spare worker", f"median {median(unspared):.0f} ms")

    async with aiohttp.ClientSession() as session:
        fetch = sender(session)
        await call(TRIVIAL, no_fetch, url, key="warm")
        latency(
            "warm trivial onTrack",
            [
                await call(TRIVIAL, no_fetch, url, key="warm")
                for _ in range(invocations)
            ],
        )
        await call(FETCHING, fetch, url, key="warm")
        latency(
            "warm onTrack with one fetch",
            [await call(FETCHING, fetch, url, key="warm") for _ in range(invocations)],
        )
        for label, source, handler in (
            ("trivial", TRIVIAL, no_fetch),
            ("with one fetch", FETCHING, fetch),
        ):
            for keys in (1, 4):
                rate = await throughput(source, handler, url, invocations * 4, keys)
                line(
                    f"{CALLERS} callers, {keys} function(s), {label}",
                    f"{rate:,.0f} invocations/s",
                )

    pool = runtime._pool()
    sizes = [worker.rss_mb() for worker in pool.workers() if worker.alive]
    line(
        "idle worker RSS",
        f"median {median(sizes):.0f} MB over {len(sizes)} workers",
    )
    await runtime.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=500)
    options = parser.parse_args()
    print(
        f"Functions benchmark, Node.js workers (load average "
        f"{os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)",
        flush=True,
    )
    with receiver_process() as url:
        asyncio.run(measure(options.invocations, url))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
