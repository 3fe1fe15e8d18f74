"""A real sandbox server process on its own database, as a user runs it."""

import http.cookiejar
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`manage.py runserver` (Daphne) on its own database, as a user runs it."""

    def __init__(self, data_dir: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SANDBOX_DATA_DIR": str(data_dir),
            "SANDBOX_BASE_URL": self.url,
            "SANDBOX_LIVE_POLL_MS": "100",
        }
        self.data_dir = data_dir
        self.log = data_dir / "server.log"
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=check,
        )

    def prepare(self) -> None:
        self.manage("migrate", "-v0")
        self.manage("seed_demo")

    def start(self) -> None:
        if not (self.data_dir / "sandbox.sqlite3").exists():
            self.prepare()
        with self.log.open("a") as log:
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
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def kill(self) -> None:
        """kill -9: no chance to finish anything."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code).stdout

    def query(self, sql: str, *params) -> list[tuple]:
        """Read the server's database directly, as any other process could."""
        with sqlite3.connect(self.data_dir / "sandbox.sqlite3", timeout=30) as db:
            return db.execute(sql, params).fetchall()


def composer_send(
    url: str,
    subscription: int,
    event: dict,
    *,
    before_send: Callable[[], object] | None = None,
    timeout: float = 30,
) -> tuple[int, str]:
    """One send through the Event Tester as its page makes it, without a browser:
    a CSRF cookie from the page, then the htmx POST. The status and the answer."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(url + "/", timeout=timeout).read()
    token = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    form = urllib.parse.urlencode(
        {
            "subscription": subscription,
            "event_type": event.get("type", "track"),
            "source": "analytics.js",
            "template": "",
            "payload": json.dumps(event),
        }
    ).encode()
    request = urllib.request.Request(
        url + "/send/", data=form, headers={"X-CSRFToken": token, "HX-Request": "true"}
    )
    if before_send is not None:
        before_send()
    with opener.open(request, timeout=timeout) as response:
        return response.status, response.read().decode()
