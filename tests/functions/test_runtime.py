"""The JavaScript runtime for subscription functions, against real Node.js
workers and a real local HTTP server."""

import asyncio
import errno
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from sandbox.functions import runtime


@pytest.fixture(autouse=True)
async def _stop_workers():
    yield
    await runtime.shutdown()


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Endpoint:
    url: str
    seen: list[Seen] = field(default_factory=list)


SEEN = web.AppKey("seen", list)


async def _record(request: web.Request) -> web.Response:
    request.app[SEEN].append(
        Seen(
            method=request.method,
            path=request.path_qs,
            headers=list(request.headers.items()),
            body=await request.read(),
        )
    )
    status = int(request.match_info.get("code") or 200)
    return web.json_response(
        {"received": True, "path": request.path},
        status=status,
        headers={"X-Reply": "yes"},
    )


async def _hop(request: web.Request) -> web.Response:
    """/hop/<status>/<path>: answers <status> with a relative Location to
    /<path> and the same query ("-" for no Location at all)."""
    request.app[SEEN].append(
        Seen(
            method=request.method,
            path=request.path_qs,
            headers=list(request.headers.items()),
            body=await request.read(),
        )
    )
    tail = request.match_info["tail"]
    query = f"?{request.query_string}" if request.query_string else ""
    headers = {} if tail == "-" else {"Location": f"/{tail}{query}"}
    return web.Response(status=int(request.match_info["code"]), headers=headers)


@pytest.fixture
async def endpoint():
    seen: list[Seen] = []
    app = web.Application()
    app[SEEN] = seen
    app.router.add_route("*", "/hop/{code}/{tail:.*}", _hop)
    app.router.add_route("*", "/status/{code}", _record)
    app.router.add_route("*", "/{tail:.*}", _record)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Endpoint(url=str(server.make_url("")).rstrip("/"), seen=seen)
    finally:
        await server.close()


@pytest.fixture
async def fetch_handler():
    """Sends every FetchRequest with aiohttp; remembers what was asked."""
    session = aiohttp.ClientSession(auto_decompress=True)
    asked: list[runtime.FetchRequest] = []

    async def send(request: runtime.FetchRequest) -> runtime.FetchResponse:
        asked.append(request)
        try:
            async with session.request(
                request.method,
                request.url,
                headers=CIMultiDict(request.headers),
                data=request.body or None,
                allow_redirects=False,
            ) as response:
                return runtime.FetchResponse(
                    status=response.status,
                    status_text=response.reason or "",
                    headers=list(response.headers.items()),
                    body=await response.read(),
                )
        except aiohttp.ClientConnectorError as error:
            code = errno.errorcode.get(error.os_error.errno or 0, "ECONNRESET")
            raise runtime.FetchFailure(
                f"connect {code} {error.host}:{error.port}", code=code
            ) from error

    send.asked = asked
    try:
        yield send
    finally:
        await session.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(source: str, handler: str = "onTrack", **options):
    """Invoke with defaults a test does not care about."""
    options.setdefault("args", [{"type": "track", "event": "Signed Up"}])
    options.setdefault("settings", {"apiKey": "key-1"})
    options.setdefault("fetch", _no_fetch)
    options.setdefault("time_limit", 3.0)
    return runtime.invoke(source=source, handler=handler, **options)


async def _no_fetch(request):
    raise runtime.FetchFailure("no network in this test", code="ENETUNREACH")


def returned(invocation: runtime.Invocation):
    assert invocation.status == "returned", invocation
    return json.loads(invocation.value_json)


# ---- fetch ------------------------------------------------------------------


async def test_fetch_sends_through_the_handler_and_reads_the_answer(
    endpoint, fetch_handler
):
    source = """
    async function onTrack(event, settings) {
      const res = await fetch(settings.url + "/in?x=1", {
        method: "POST",
        headers: { "X-Custom": "a", "Content-Type": "application/json" },
        body: JSON.stringify(event),
      });
      return { ok: res.ok, status: res.status, statusText: res.statusText,
               reply: res.headers.get("x-reply"), body: await res.json(),
               url: res.url };
    }"""
    invocation = await run(
        source,
        args=[{"event": "Signed Up"}],
        settings={"url": endpoint.url},
        fetch=fetch_handler,
    )
    assert returned(invocation) == {
        "ok": True,
        "status": 200,
        "statusText": "OK",
        "reply": "yes",
        "body": {"received": True, "path": "/in"},
        "url": endpoint.url + "/in?x=1",
    }
    [seen] = endpoint.seen
    assert (seen.method, seen.path) == ("POST", "/in?x=1")
    assert seen.body == b'{"event":"Signed Up"}'
    headers = dict(seen.headers)
    assert headers["X-Custom"] == "a"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == (
        "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"
    )
    [asked] = fetch_handler.asked
    assert asked.headers[:2] == [
        ("X-Custom", "a"),
        ("Content-Type", "application/json"),
    ]
    assert ("Accept", "*/*") in asked.headers


async def test_fetch_does_not_throw_on_a_non_2xx_answer(endpoint, fetch_handler):
    source = """
    async function onTrack(event, settings) {
      const res = await fetch(settings.url + "/status/503");
      return { ok: res.ok, status: res.status, text: await res.text() };
    }"""
    invocation = await run(source, settings={"url": endpoint.url}, fetch=fetch_handler)
    assert returned(invocation) == {
        "ok": False,
        "status": 503,
        "text": '{"received": true, "path": "/status/503"}',
    }


async def test_fetch_to_a_closed_port_rejects_with_node_fetchs_fetch_error(
    closed_port, fetch_handler
):
    source = """
    async function onTrack(event, settings) {
      try { await fetch(settings.url); } catch (e) {
        return { fetchError: e instanceof FetchError, error: e instanceof Error,
                 name: e.name, type: e.type, code: e.code, errno: e.errno,
                 message: e.message };
      }
    }
    async function onPage(event, settings) { await fetch(settings.url); }"""
    url = f"http://127.0.0.1:{closed_port}"
    caught = await run(source, settings={"url": url}, fetch=fetch_handler)
    message = (
        f"request to {url}/ failed, reason: "
        f"connect ECONNREFUSED 127.0.0.1:{closed_port}"
    )
    assert returned(caught) == {
        "fetchError": True,
        "error": True,
        "name": "FetchError",
        "type": "system",
        "code": "ECONNREFUSED",
        "errno": "ECONNREFUSED",
        "message": message,
    }
    thrown = await run(source, "onPage", settings={"url": url}, fetch=fetch_handler)
    assert thrown.status == "threw"
    assert thrown.error["kind"] == "FetchError"
    assert thrown.error["message"] == message


async def test_fetch_takes_bodies_as_node_fetch_2_does(endpoint, fetch_handler):
    source = """
    async function onTrack(event, settings) {
      await fetch(settings.url + "/object", { method: "POST", body: { a: 1 } });
      await fetch(settings.url + "/form", { method: "POST",
        body: new URLSearchParams({ a: "1", b: "x y" }) });
      await fetch(settings.url + "/bytes", { method: "PUT",
        body: Buffer.from([0, 1, 2]) });
      try { await fetch("/relative"); } catch (e) { return e.name + ": " + e.message; }
    }"""
    invocation = await run(source, settings={"url": endpoint.url}, fetch=fetch_handler)
    assert returned(invocation) == "TypeError: Only absolute URLs are supported"
    bodies = {seen.path: (seen.body, dict(seen.headers)) for seen in endpoint.seen}
    assert bodies["/object"][0] == b"[object Object]"
    assert bodies["/object"][1]["Content-Type"] == "text/plain;charset=UTF-8"
    assert bodies["/form"][0] == b"a=1&b=x+y"
    assert bodies["/form"][1]["Content-Type"] == (
        "application/x-www-form-urlencoded;charset=UTF-8"
    )
    assert bodies["/bytes"][0] == b"\x00\x01\x02"


# ---- the other globals --------------------------------------------------------


async def test_encoding_globals_behave_as_on_segment():
    source = """
    async function onTrack() {
      return {
        btoa: btoa("user:pass"), atob: atob("dXNlcjpwYXNz"),
        base64: Buffer.from("héllo").toString("base64"),
        fromBase64: Buffer.from("aMOpbGxv", "base64").toString("utf8"),
        hex: Buffer.from("hi").toString("hex"),
        fromHex: Buffer.from("6869", "hex").toString(),
        encoded: Array.from(new TextEncoder().encode("é")),
        decoded: new TextDecoder().decode(new Uint8Array([104, 105])),
      };
    }"""
    assert returned(await run(source)) == {
        "btoa": "dXNlcjpwYXNz",
        "atob": "user:pass",
        "base64": "aMOpbGxv",
        "fromBase64": "héllo",
        "hex": "6869",
        "fromHex": "hi",
        "encoded": [195, 169],
        "decoded": "hi",
    }


async def test_crypto_hashes_hmacs_and_uuids():
    source = """
    async function onTrack() {
      return {
        sha256: crypto.createHash("sha256").update("abc").digest("hex"),
        hmac: crypto.createHmac("sha256", "key").update("msg").digest("hex"),
        uuid: crypto.randomUUID(),
        random: crypto.randomBytes(8).length,
      };
    }"""
    value = returned(await run(source))
    assert value["sha256"] == hashlib.sha256(b"abc").hexdigest()
    assert value["hmac"] == hmac.new(b"key", b"msg", hashlib.sha256).hexdigest()
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        value["uuid"],
    )
    assert value["random"] == 8


async def test_url_search_params_and_lodash():
    source = """
    async function onTrack(event) {
      const url = new URL("https://api.example.com/v1/users?page=2");
      url.searchParams.append("id", event.userId);
      const params = new URLSearchParams({ a: "1" });
      params.set("b", "two words");
      return { href: url.href, host: url.host, page: url.searchParams.get("page"),
               params: params.toString(),
               plan: _.get(event, "traits.plan.name", "none"),
               missing: _.get(event, "traits.nothing", "none"),
               chunks: _.chunk([1, 2, 3], 2) };
    }"""
    event = {"userId": "u 1", "traits": {"plan": {"name": "pro"}}}
    assert returned(await run(source, args=[event])) == {
        "href": "https://api.example.com/v1/users?page=2&id=u+1",
        "host": "api.example.com",
        "page": "2",
        "params": "a=1&b=two+words",
        "plan": "pro",
        "missing": "none",
        "chunks": [[1, 2], [3]],
    }


async def test_cache_load_reuses_a_value_until_deleted():
    source = """
    let loads = 0;
    async function onTrack(event) {
      if (event.forget) cache.delete("token");
      const token = await cache.load("token", 60000, async () => `t${++loads}`);
      return { token, loads };
    }"""
    results = [
        returned(await run(source, args=[{"forget": forget}], isolation_key="c"))
        for forget in (False, False, True, False)
    ]
    assert results == [
        {"token": "t1", "loads": 1},
        {"token": "t1", "loads": 1},
        {"token": "t2", "loads": 2},
        {"token": "t2", "loads": 2},
    ]


async def test_timers_work_and_a_throwing_timer_fails_the_invocation():
    source = """
    async function onTrack() {
      await new Promise((resolve) => setTimeout(resolve, 20));
      let ticks = 0;
      await new Promise((resolve) => {
        const id = setInterval(() => {
          if (++ticks === 3) { clearInterval(id); resolve(); }
        }, 1);
      });
      return ticks;
    }
    async function onPage() {
      setTimeout(() => { throw new ValidationError("late"); }, 1);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }"""
    assert returned(await run(source)) == 3
    failed = await run(source, "onPage")
    assert (failed.status, failed.error["kind"]) == ("threw", "ValidationError")


async def test_batch_handler_gets_the_array():
    source = """
    async function onBatch(events, settings) {
      return [events.length, settings.apiKey];
    }"""
    invocation = await run(source, "onBatch", args=[[{"a": 1}, {"b": 2}]])
    assert returned(invocation) == [2, "key-1"]


async def test_values_json_cannot_encode_are_shown_as_strings():
    source = """
    async function onTrack() { return 10n; }
    async function onPage() { }
    async function onScreen() { const a = {}; a.self = a; return a; }"""
    assert (await run(source)).value_json == '"10"'
    undefined = await run(source, "onPage")
    assert (undefined.status, undefined.value_json) == ("returned", None)
    assert (await run(source, "onScreen")).value_json == '"[object Object]"'


# ---- errors, logs, stacks -----------------------------------------------------


@pytest.mark.parametrize(
    ("thrown", "kind"),
    [
        ("new EventNotSupported('no')", "EventNotSupported"),
        ("new InvalidEventPayload('no')", "InvalidEventPayload"),
        ("new ValidationError('no')", "ValidationError"),
        ("new RetryError('no')", "RetryError"),
        ("new FetchError('no', 'system')", "FetchError"),
        ("new Error('no')", "Error"),
        ("new TypeError('no')", "Error"),
        ("new (class Mine extends RetryError {})('no')", "RetryError"),
        (
            "Object.assign(new Error('no'), { name: 'RetryError' })",
            "Error",
        ),
        (
            "new (class RetryError extends Error {"
            " constructor(m) { super(m); this.name = 'RetryError'; } })('no')",
            "Error",
        ),
    ],
)
async def test_the_kind_of_an_error_is_decided_by_its_class(thrown, kind):
    invocation = await run(f"async function onTrack() {{ throw {thrown}; }}")
    assert invocation.status == "threw"
    assert invocation.error["kind"] == kind
    assert invocation.error["message"] == "no"


async def test_the_error_classes_set_their_names():
    source = """
    async function onTrack() {
      return [EventNotSupported, InvalidEventPayload, ValidationError, RetryError]
        .map((Cls) => { const e = new Cls("m"); return [e.name, e instanceof Error]; });
    }"""
    assert returned(await run(source)) == [
        ["EventNotSupported", True],
        ["InvalidEventPayload", True],
        ["ValidationError", True],
        ["RetryError", True],
    ]


async def test_a_missing_handler_is_event_not_supported():
    invocation = await run("async function onIdentify() {}", "onTrack")
    assert invocation.status == "missing_handler"
    assert invocation.error["kind"] == "EventNotSupported"


async def test_console_is_captured_in_order_with_levels():
    source = """
    async function onTrack(event) {
      console.log("a %s %d", "b", 3, { deep: { list: [1, 2] } });
      console.info("info");
      console.warn("warn");
      console.error(new Error("oops").message);
      console.debug(null, undefined, [1, "x"]);
      return 1;
    }"""
    invocation = await run(source)
    assert invocation.logs == [
        {"level": "log", "message": "a b 3 { deep: { list: [ 1, 2 ] } }"},
        {"level": "info", "message": "info"},
        {"level": "warn", "message": "warn"},
        {"level": "error", "message": "oops"},
        {"level": "debug", "message": "null undefined [ 1, 'x' ]"},
    ]


async def test_stacks_point_at_the_functions_own_lines():
    source = (
        "// line 1\n"
        "function check(event) {\n"
        "  if (!event.userId) {\n"
        "    throw new ValidationError('userId is required');\n"
        "  }\n"
        "}\n"
        "async function onTrack(event) {\n"
        "  check(event);\n"
        "}\n"
    )
    invocation = await run(source, args=[{}])
    stack = invocation.error["stack"].splitlines()
    assert stack[0] == "ValidationError: userId is required"
    assert stack[1].strip() == "at check (function.js:4:11)"
    assert stack[2].strip() == "at onTrack (function.js:8:3)"
    assert "worker" not in invocation.error["stack"]
    assert "runtime.js" not in invocation.error["stack"]


async def test_a_syntax_error_at_invoke_time_is_thrown():
    invocation = await run("async function onTrack( {\n}")
    assert invocation.status == "threw"
    assert invocation.error["name"] == "SyntaxError"
    assert invocation.error["kind"] == "Error"
    assert invocation.error["stack"].startswith("function.js:2\n}\n")


def test_check_syntax_gives_line_and_column():
    problem = runtime.check_syntax("async function onTrack(e) {\n  return {a: 1}}\n}")
    assert problem == runtime.SyntaxProblem(
        line=3, column=1, message="SyntaxError: Unexpected token '}'"
    )
    assert runtime.check_syntax("async function onTrack() {}") is None


def test_defined_handlers_finds_declarations_and_constants():
    source = """
    async function onTrack() {}
    const onIdentify = async () => {};
    let onPage = 5;
    function helper() {}"""
    assert runtime.defined_handlers(source) == ["onIdentify", "onTrack"]
    assert runtime.defined_handlers("this is not javascript") == []


# ---- isolation ----------------------------------------------------------------


async def test_only_segments_globals_are_defined():
    source = """
    async function onTrack() {
      const names = ["require", "process", "module", "exports", "global",
                     "__dirname", "setImmediate", "WebAssembly"];
      const present = [
        "fetch", "Request", "Response", "Headers", "URL", "URLSearchParams", "atob",
        "btoa", "_", "crypto", "Buffer", "console", "cache", "setTimeout",
        "clearTimeout", "setInterval", "clearInterval", "TextEncoder", "TextDecoder",
        "EventNotSupported", "InvalidEventPayload", "ValidationError", "RetryError",
        "FetchError"];
      return { absent: names.filter((n) => typeof globalThis[n] === "undefined"),
               missing: present.filter((n) => typeof globalThis[n] === "undefined"),
               requireType: typeof require };
    }"""
    value = returned(await run(source))
    assert value["missing"] == []
    assert value["requireType"] == "undefined"
    assert {"require", "process", "module", "exports", "global"} <= set(value["absent"])


ESCAPE = """
async function onTrack(event, settings) {
  const out = { escapes: [] };
  let outer = null;
  for (const via of [
    () => this.constructor.constructor("return process")(),
    () => Buffer.constructor("return process")(),
    () => crypto.createHash.constructor("return process")(),
  ]) {
    try { outer = via() || outer; out.escapes.push("process"); }
    catch (e) { out.escapes.push(e.name); }
  }
  out.escaped = typeof outer === "object" && outer !== null;
  const Outer = Buffer.constructor;
  const tries = {
    builtin: () => outer.getBuiltinModule("fs").readFileSync("/etc/passwd", "utf8"),
    binding: () => outer.binding("fs"),
    linkedBinding: () => outer._linkedBinding("fs"),
    mainModule: () => outer.mainModule.require("fs"),
    env: () => { const keys = Object.keys(outer.env);
                 if (keys.length) return keys; throw new Error("empty"); },
    kill: () => outer.kill(outer.ppid, 0),
    dlopen: () => outer.dlopen({ exports: {} }, "/tmp/none.node"),
    stdout: () => outer.stdout.constructor,
    handles: () => outer._getActiveHandles(),
    outerFetch: () => Outer("return fetch")()(settings.url),
  };
  out.results = {};
  for (const [name, attempt] of Object.entries(tries)) {
    try {
      const value = attempt();
      out.results[name] = value === undefined ? "nothing" : "GOT " + typeof value;
    } catch (e) { out.results[name] = "denied"; }
  }
  const uses = {
    "node:fs": (m) => m.readFileSync("/etc/passwd", "utf8"),
    "node:child_process": (m) => m.execFileSync("/bin/echo", ["spawned"]).toString(),
    "node:net": (m) => new Promise((resolve, reject) => {
      const socket = m.connect(settings.port, "127.0.0.1", () => resolve("connected"));
      socket.on("error", reject);
    }),
  };
  for (const [name, use] of Object.entries(uses)) {
    try {
      const module = await Outer(`return import("${name}")`)();
      out.results[name] = "GOT " + (await use(module));
    } catch (e) { out.results[name] = "denied"; }
  }
  return out;
}
"""


@pytest.fixture(params=["guarded", "escaped"])
def outer_realm(request, monkeypatch):
    """`escaped` starts workers without the outer realm's code generation guard,
    so the function reaches the worker's `process` and the layers behind it are
    what is tested."""
    monkeypatch.setattr(runtime, "_block_outer_codegen", request.param == "guarded")
    return request.param


async def test_an_escaped_function_reads_no_file_spawns_nothing_and_opens_no_socket(
    outer_realm, monkeypatch
):
    monkeypatch.setenv("SANDBOX_PROBE_SECRET", "s3cret")
    connections = []
    server = await asyncio.start_server(
        lambda reader, writer: connections.append(writer.close()), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        value = returned(
            await run(
                ESCAPE,
                settings={"port": port, "url": f"http://127.0.0.1:{port}/"},
                time_limit=4,
            )
        )
        await asyncio.sleep(0.1)
    finally:
        server.close()
        await server.wait_closed()
    assert connections == []
    if outer_realm == "guarded":
        assert value["escaped"] is False
        assert value["escapes"] == ["ReferenceError", "EvalError", "EvalError"]
    else:
        assert value["escaped"] is True
    leaks = {name: got for name, got in value["results"].items() if "GOT" in got}
    assert leaks == {}


def test_node_flags_deny_files_processes_and_workers():
    command = runtime._node_command(64)[:-1]
    probe = """
    const out = [];
    for (const attempt of [
      () => require("fs").readFileSync("/etc/passwd"),
      () => require("child_process").execFileSync("/bin/true"),
      () => new (require("worker_threads").Worker)("1", { eval: true }),
      () => require("fs").writeFileSync("/tmp/function-probe", "x"),
    ]) {
      try { attempt(); out.push("allowed"); }
      catch (e) { out.push(e.code || e.message); }
    }
    require("fs").writeSync(1, JSON.stringify(out));
    """
    command = [c for c in command if c != "--disallow-code-generation-from-strings"]
    completed = subprocess.run(
        [*command, "-e", probe], capture_output=True, env={}, timeout=10, check=True
    )
    assert json.loads(completed.stdout) == ["ERR_ACCESS_DENIED"] * 4


# ---- limits and crashes -------------------------------------------------------


async def test_an_endless_loop_times_out_and_the_next_invocation_starts_fresh():
    source = """
    let calls = 0;
    async function onTrack(event) {
      calls++;
      console.log("before");
      if (event.spin) while (true) {}
      return calls;
    }"""
    spun = await run(source, args=[{"spin": True}], time_limit=0.5, isolation_key="t")
    assert spun.status == "timeout"
    assert spun.error["message"] == "The function did not finish within 0.5 s."
    assert spun.logs == [{"level": "log", "message": "before"}]
    assert 450 < spun.duration_ms < 2000
    after = await run(source, args=[{"spin": False}], isolation_key="t")
    assert returned(after) == 1


async def test_a_promise_that_never_settles_times_out():
    source = "async function onTrack() { await new Promise(() => {}); }"
    invocation = await run(source, time_limit=0.3)
    assert invocation.status == "timeout"


@pytest.mark.parametrize(
    "bomb",
    [
        "const a = []; while (true) a.push({ s: 'x' + Math.random() });",
        "const a = []; while (true) a.push(Buffer.alloc(8 * 1024 * 1024, 1));",
    ],
    ids=["heap", "buffers"],
)
async def test_a_memory_bomb_stops_only_its_own_worker(bomb):
    source = f"""
    async function onTrack() {{ {bomb} }}
    async function onPage() {{
      await new Promise((resolve) => setTimeout(resolve, 300));
      return "fine";
    }}"""
    bombed, calm = await asyncio.gather(
        run(source, time_limit=10, memory_mb=64, isolation_key="bomb"),
        run(source, "onPage", isolation_key="calm"),
    )
    assert bombed.status == "memory"
    assert bombed.error["message"] == (
        "The function used more memory than its 64 MB limit."
    )
    assert returned(calm) == "fine"
    again = await run(source, "onPage", memory_mb=64, isolation_key="bomb")
    assert returned(again) == "fine"


async def test_a_crashed_worker_is_reported_and_replaced(monkeypatch):
    monkeypatch.setattr(runtime, "_block_outer_codegen", False)
    source = """
    async function onTrack(event) {
      if (event.crash) {
        const outer = Buffer.constructor("return process")();
        outer._rawDebug("last words");
        outer.exit(7);
      }
      return "alive";
    }"""
    crashed = await run(source, args=[{"crash": True}], isolation_key="x")
    assert crashed.status == "crashed"
    assert "exit code 7" in crashed.error["message"]
    assert "last words" in crashed.error["message"]
    assert returned(await run(source, args=[{}], isolation_key="x")) == "alive"


# ---- concurrency ----------------------------------------------------------------

COUNTER = """
let count = 0;
async function onTrack(event) {
  count++;
  await new Promise((resolve) => setTimeout(resolve, event.wait || 0));
  return count;
}"""


async def test_isolation_keys_never_share_state():
    values = [
        returned(await run(COUNTER, isolation_key=key)) for key in ("a", "b", "a", "b")
    ]
    assert values == [1, 1, 2, 2]


async def test_many_invocations_at_once_all_complete():
    invocations = await asyncio.gather(
        *(
            run(COUNTER, args=[{"wait": 20}], isolation_key=f"key-{n % 3}")
            for n in range(20)
        )
    )
    assert [invocation.status for invocation in invocations] == ["returned"] * 20
    assert len(runtime._pool().workers()) <= runtime.MAX_WORKERS


def test_each_event_loop_has_its_own_workers_and_stops_them():
    async def once() -> str:
        try:
            return (await run(COUNTER, isolation_key="loop")).value_json
        finally:
            await runtime.shutdown()

    assert [asyncio.run(once()), asyncio.run(once())] == ["1", "1"]
    deadline = time.monotonic() + 5
    while runtime._all_workers and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runtime._all_workers == {}


# ---- workers that die before an invocation reaches them -------------------------


async def _kill(worker, *, wait: bool = True) -> None:
    os.kill(worker.process.pid, signal.SIGKILL)
    if wait:
        await asyncio.to_thread(worker.process.wait, 5)


async def test_a_dead_spare_worker_is_replaced_and_the_invocation_runs():
    assert returned(await run(COUNTER, isolation_key="first")) == 1
    spare = runtime._pool().spare
    assert spare is not None
    # By now the spare has most likely said it is ready: that stale "ready" must
    # not make the dead worker look usable.
    await asyncio.sleep(0.5)
    await _kill(spare)
    invocation = await run(COUNTER, isolation_key="second")
    assert returned(invocation) == 1
    assert not spare.alive


@pytest.mark.parametrize("wait", [True, False], ids=["dead", "dying"])
async def test_a_dead_idle_worker_is_replaced_and_the_invocation_runs(wait):
    assert returned(await run(COUNTER, isolation_key="idle")) == 1
    assert returned(await run(COUNTER, isolation_key="idle")) == 2
    [worker] = [
        worker for worker in runtime._pool().idle.values() if worker.key[0] == "idle"
    ]
    await _kill(worker, wait=wait)
    # A fresh worker: the function's globals start again.
    assert returned(await run(COUNTER, isolation_key="idle")) == 1


# ---- what outlives an invocation ------------------------------------------------


async def test_a_rejection_the_function_leaves_unhandled_fails_its_invocation():
    source = """
    async function onTrack() {
      Promise.reject(new RetryError("left behind"));
      return "done";
    }
    async function onPage() {
      Promise.reject(new ValidationError("while waiting"));
      await new Promise((resolve) => setTimeout(resolve, 200));
      return "done";
    }"""
    for handler, kind, message in [
        ("onTrack", "RetryError", "left behind"),
        ("onPage", "ValidationError", "while waiting"),
    ]:
        invocation = await run(source, handler, isolation_key="rejects")
        assert invocation.status == "threw", invocation
        assert (invocation.error["kind"], invocation.error["message"]) == (
            kind,
            message,
        )


async def test_a_rejection_after_its_invocation_ended_fails_no_later_one():
    # Atomics.waitAsync settles on its own schedule, as no timer of the
    # function's does once its invocation has ended.
    source = """
    async function onTrack(event) {
      if (event.first) {
        const cell = new Int32Array(new SharedArrayBuffer(4));
        Atomics.waitAsync(cell, 0, 0, 100).value.then(() => {
          console.log("late");
          throw new Error("from the first invocation");
        });
        return "first";
      }
      await new Promise((resolve) => setTimeout(resolve, 400));
      return "second";
    }"""
    first = await run(source, args=[{"first": True}], isolation_key="late")
    assert returned(first) == "first"
    second = await run(source, args=[{"first": False}], isolation_key="late")
    assert returned(second) == "second"
    assert second.logs == []
    [worker] = runtime._pool().idle.values()
    assert "from the first invocation" in worker.stderr_tail()


async def test_timers_of_an_ended_invocation_never_fire(endpoint, fetch_handler):
    source = """
    let ticks = 0;
    async function onTrack(event, settings) {
      if (event.first) {
        setInterval(() => {
          ticks++;
          console.log("tick");
          fetch(settings.url + "/tick").catch(() => {});
        }, 20);
        setTimeout(() => ticks++, 50);
        console.log("armed");
        return ticks;
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      return ticks;
    }"""
    options = {
        "settings": {"url": endpoint.url},
        "fetch": fetch_handler,
        "isolation_key": "timers",
    }
    first = await run(source, args=[{"first": True}], **options)
    assert returned(first) == 0
    assert first.logs == [{"level": "log", "message": "armed"}]
    await asyncio.sleep(0.2)
    second = await run(source, args=[{"first": False}], **options)
    assert returned(second) == 0
    assert second.logs == []
    await asyncio.sleep(0.1)
    assert fetch_handler.asked == []
    assert endpoint.seen == []


# ---- redirects --------------------------------------------------------------------


async def test_fetch_follows_redirects_as_node_fetch_does(endpoint, fetch_handler):
    source = """
    async function onTrack(event, settings) {
      const res = await fetch(settings.url + "/hop/307/hop/303/in?x=1", {
        method: "POST",
        headers: { "Content-Type": "text/plain" },
        body: "payload",
      });
      return { url: res.url, redirected: res.redirected, status: res.status,
               body: await res.json() };
    }"""
    invocation = await run(source, settings={"url": endpoint.url}, fetch=fetch_handler)
    assert returned(invocation) == {
        "url": endpoint.url + "/in?x=1",
        "redirected": True,
        "status": 200,
        "body": {"received": True, "path": "/in"},
    }
    # 307 keeps the method and the body; 303 turns the request into a GET.
    assert [(seen.method, seen.path, seen.body) for seen in endpoint.seen] == [
        ("POST", "/hop/307/hop/303/in?x=1", b"payload"),
        ("POST", "/hop/303/in?x=1", b"payload"),
        ("GET", "/in?x=1", b""),
    ]
    last = dict(endpoint.seen[-1].headers)
    assert "Content-Length" not in last
    assert last["Content-Type"] == "text/plain"


async def test_fetch_redirect_options_as_node_fetch_has_them(endpoint, fetch_handler):
    source = """
    async function onTrack(event, settings) {
      const url = settings.url;
      const describe = async (promise) => {
        try {
          const res = await promise;
          return { status: res.status, url: res.url, redirected: res.redirected,
                   location: res.headers.get("location") };
        } catch (e) { return { name: e.name, type: e.type, message: e.message }; }
      };
      return {
        manual: await describe(fetch(url + "/hop/302/in", { redirect: "manual" })),
        error: await describe(fetch(url + "/hop/301/in", { redirect: "error" })),
        limit: await describe(fetch(url + "/hop/302/hop/302/in", { follow: 1 })),
        noLocation: await describe(fetch(url + "/hop/302/-")),
        post: await describe(fetch(url + "/hop/302/in", { method: "POST", body: "b" })),
      };
    }"""
    value = returned(
        await run(source, settings={"url": endpoint.url}, fetch=fetch_handler)
    )
    assert value == {
        "manual": {
            "status": 302,
            "url": endpoint.url + "/hop/302/in",
            "redirected": False,
            "location": endpoint.url + "/in",
        },
        "error": {
            "name": "FetchError",
            "type": "no-redirect",
            "message": f"redirect mode is set to error: {endpoint.url}/hop/301/in",
        },
        "limit": {
            "name": "FetchError",
            "type": "max-redirect",
            "message": f"maximum redirect reached at: {endpoint.url}/hop/302/in",
        },
        "noLocation": {
            "status": 302,
            "url": endpoint.url + "/hop/302/-",
            "redirected": False,
            "location": None,
        },
        "post": {
            "status": 200,
            "url": endpoint.url + "/in",
            "redirected": True,
            "location": None,
        },
    }
    # A 302 answer to a POST is followed with a GET and no body.
    assert [(seen.method, seen.path, seen.body) for seen in endpoint.seen][-2:] == [
        ("POST", "/hop/302/in", b"b"),
        ("GET", "/in", b""),
    ]
