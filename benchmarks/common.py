"""What the server benchmarks share: printing figures and a real runserver."""

import contextlib
import math
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "sandbox.sqlite3"


def line(label: str, value: str) -> None:
    print(f"  {label:<44} {value}", flush=True)


def percentile(ordered: list[float], share: float) -> float:
    """Nearest rank: a value that was actually measured."""
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`manage.py runserver --noreload` on its own data directory, DEBUG off, as
    `make run` starts it."""

    def __init__(self, data_dir: Path, *, engine: bool = True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "SANDBOX_DATA_DIR": str(data_dir),
            "SANDBOX_BASE_URL": self.url,
            "SANDBOX_DEBUG": "0",
            "SANDBOX_ENGINE": "on" if engine else "off",
        }
        for name in ("DATABASE_URL", "SANDBOX_DB_PATH"):
            self.env.pop(name, None)
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )

    def prepare(self) -> None:
        """A fresh database with the demo, as `make run` makes it."""
        self.manage("migrate", "-v0")
        self.manage("seed_demo")

    def start(self) -> None:
        self.log = (self.data_dir / "server.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "runserver",
                "--noreload",
                f"127.0.0.1:{self.port}",
            ],
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"the server did not start; see {self.data_dir}/server.log")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.log.close()

    def peak_rss_mb(self) -> float:
        for row in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
        return float("nan")

    def query(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.data_dir / DATABASE, timeout=30) as db:
            return db.execute(sql, params).fetchall()


RECEIVER = Path(__file__).with_name("receiver.py")


@contextlib.contextmanager
def receiver_process(
    *, delay_ms: float = 0, lifetime: float | None = None, path: str = "/ok"
) -> Iterator[str]:
    """A receiver (benchmarks/receiver.py) in its own process: its URL. It ends
    when we close its stdin, or after `lifetime` seconds (its own default)."""
    command = [sys.executable, str(RECEIVER), "--delay-ms", str(delay_ms)]
    if lifetime is not None:
        command += ["--lifetime", str(lifetime)]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def against(value: float, target: float, *, at_least: bool, unit: str = "") -> str:
    """The target beside a figure, and whether the figure meets it."""
    met = value >= target if at_least else value <= target
    sign = "≥" if at_least else "≤"
    return f"(target {sign} {target:g}{unit}: {'pass' if met else 'FAIL'})"
