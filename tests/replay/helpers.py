"""Replay files for tests, written on the fly."""

import asyncio
import gzip
import json
import threading
import time
from pathlib import Path

from sandbox.delivery.engine import Engine


def event(number: int, **extra) -> dict:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{number % 97}",
        "messageId": f"replay-{number}",
        "timestamp": "2024-01-02T03:04:05.000Z",
        "originalTimestamp": "2024-01-02T03:04:04.000Z",
        "properties": {"number": number, "revenue": 12.5},
        **extra,
    }


def write_lines(path: Path, count: int, *, gzipped: bool = False) -> Path:
    """JSON Lines of `count` events, written as a stream."""
    opener = gzip.open if gzipped else open
    with opener(path, "wb") as out:
        for number in range(count):
            out.write(json.dumps(event(number)).encode() + b"\n")
    return path


class EngineThread:
    """The server's engine, as it runs there: its own loop in a thread."""

    def __init__(self, concurrency: int = 50):
        self.concurrency = concurrency

    def __enter__(self) -> "EngineThread":
        ready = threading.Event()

        def serve() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.stop = asyncio.Event()
            self.engine = Engine(concurrency=self.concurrency)
            ready.set()
            try:
                self.loop.run_until_complete(self.engine.run_forever(self.stop))
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        assert not self.loop.is_closed(), "the engine stopped on its own"

        # One callback: after a first one set the stop, the loop may have ended
        # and closed before a second could be scheduled.
        def stop() -> None:
            self.stop.set()
            self.engine.wake()

        self.loop.call_soon_threadsafe(stop)
        self.thread.join(30)


def wait_until(condition, *, timeout: float = 30.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"not met within {timeout} s")


def replay_argv(path, url: str, *options: str) -> list[str]:
    """`manage.py replay FILE --endpoint URL --api-key k OPTIONS…`, to run."""
    import sys

    from tests.server import ROOT

    return [
        sys.executable,
        str(ROOT / "manage.py"),
        "replay",
        str(path),
        "--endpoint",
        url,
        "--api-key",
        "k",
        *options,
    ]
