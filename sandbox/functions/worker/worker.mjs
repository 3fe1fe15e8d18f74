// A worker process that runs one subscription function for sandbox/functions/runtime.py.
//
// Protocol: one JSON object per line, requests on stdin, answers on stdout.
//   in:  {op: "load", id, source}  {op: "invoke", id, handler, payload}
//        {op: "fetched", id, response | failure}
//   out: {op: "ready"}  {op: "running", id}  {op: "loaded", id, ok, handlers, error}
//        {op: "log", invocation, level, message}  {op: "fetch", id, invocation, request}
//        {op: "result", id, status, value_json, error}
// A load carries the id of the invocation it is for: the function's top-level code
// runs as part of that invocation. "running" is sent once per invocation, before
// any of the function's code runs for it, so the runtime knows whether a worker
// that died had begun the invocation.
// With `--check` it reads {source, evaluate} once, answers {syntax, handlers} and exits.
//
// The function runs in a vm context that holds only Segment's globals. The worker
// is started with Node's permission model, an empty environment and code
// generation from strings disabled in this outer realm, and it removes from
// `process` and the global object what an escaped function could use.
import { AsyncLocalStorage } from "node:async_hooks";
import { Buffer } from "node:buffer";
import nodeCrypto from "node:crypto";
import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import util from "node:util";
import vm from "node:vm";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const LODASH = fs.readFileSync(path.join(HERE, "vendor", "lodash.min.js"), "utf8");
const RUNTIME = fs.readFileSync(path.join(HERE, "context.js"), "utf8");
const USER_FILE = "function.js";
const HANDLERS = [
  "onIdentify",
  "onTrack",
  "onPage",
  "onScreen",
  "onGroup",
  "onAlias",
  "onDelete",
  "onBatch",
];
const MAX_LOG_MESSAGE = 64 * 1024;
const MAX_LOG_TOTAL = 1024 * 1024;

// Private references to what the protocol needs, taken before hardening.
const writeSync = fs.writeSync;
const createReadStream = fs.createReadStream;
const exit = process.exit.bind(process);
const onProcess = process.on.bind(process);
const stringify = JSON.stringify;
const parse = JSON.parse;
const timers = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
  setInterval: globalThis.setInterval,
  clearInterval: globalThis.clearInterval,
  setImmediate: globalThis.setImmediate,
};
const writeError = (text) => {
  try {
    writeSync(2, `${text}\n`);
  } catch {
    // Nothing more can be done with a line stderr does not take.
  }
};

function harden() {
  const removed = [
    "binding",
    "_linkedBinding",
    "getBuiltinModule",
    "dlopen",
    "kill",
    "mainModule",
    "openStdin",
    "stdin",
    "stdout",
    "stderr",
    "_getActiveHandles",
    "_getActiveRequests",
    "chdir",
    "setuid",
    "setgid",
    "seteuid",
    "setegid",
    "setgroups",
    "initgroups",
    "loadEnvFile",
    "report",
    "_debugProcess",
    "_debugEnd",
    "_startProfilerIdleNotifier",
    "_stopProfilerIdleNotifier",
    "execve",
    "send",
    "channel",
    "setSourceMapsEnabled",
  ];
  for (const name of removed) {
    try {
      Object.defineProperty(process, name, {
        value: undefined,
        writable: false,
        enumerable: false,
        configurable: false,
      });
    } catch {
      delete process[name];
    }
  }
  Object.defineProperty(process, "env", {
    value: Object.freeze(Object.create(null)),
    writable: false,
    configurable: false,
  });
  // Node's permission model does not cover the network in Node 20, so every
  // socket an escaped function could reach is disabled where all of net, tls,
  // http, https and the global fetch end up.
  const deny = () => {
    throw new Error("the network is not available to functions");
  };
  for (const [prototype, names] of [
    [net.Socket.prototype, ["connect"]],
    [net.Server.prototype, ["listen"]],
    [dgram.Socket.prototype, ["bind", "send", "connect"]],
  ]) {
    for (const name of names) {
      Object.defineProperty(prototype, name, {
        value: deny,
        writable: false,
        configurable: false,
      });
    }
  }
  // The network is reached only through the runtime's protocol.
  for (const name of [
    "fetch",
    "WebSocket",
    "EventSource",
    "Request",
    "Response",
    "Headers",
    "FormData",
    "BroadcastChannel",
    "navigator",
  ]) {
    try {
      Object.defineProperty(globalThis, name, {
        value: undefined,
        writable: false,
        configurable: false,
      });
    } catch {
      delete globalThis[name];
    }
  }
}

function send(message) {
  const bytes = Buffer.from(`${stringify(message)}\n`);
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(1, bytes, offset);
    } catch (error) {
      if (error.code !== "EAGAIN") throw error;
    }
  }
}

function inspect(value) {
  return util.inspect(value, { customInspect: false });
}

// Everything the function's realm gets from this one.
const cryptoGlobal = {};
for (const [name, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(nodeCrypto))) {
  // setEngine loads a shared library; getters are deprecated aliases.
  if (name === "setEngine" || name === "default" || !("value" in descriptor)) continue;
  cryptoGlobal[name] = descriptor.value;
}

// Which invocation the running code belongs to. The function's code runs inside
// `owners.run(invocation, ...)`, and Node carries the store through promises,
// awaits and timers, so a callback, a log line or a rejection is attributed to
// the invocation whose code started it, not to whichever one runs at the moment.
const owners = new AsyncLocalStorage();
// Invocations begun and not settled, by id; at most one, as the runtime sends
// one invocation at a time.
const running = new Map();
let lastBegun = 0;
let nextFetch = 1;
const pendingFetches = new Map();
const timerOwners = new WeakMap();

function liveOwner() {
  const invocation = owners.getStore();
  return invocation !== undefined && !invocation.ended ? invocation : null;
}

// A function's timers belong to the invocation that set them and are cleared
// when it settles. Segment's runtime (AWS Lambda) freezes the process between
// invocations, so a pending timer never runs in between; here it never runs
// later either, so nothing of an ended invocation logs, fetches or fails a later
// one. A timer set when no invocation is running never fires.
function schedule(start, callback, delay, repeats) {
  const invocation = liveOwner();
  const handle = start(() => {
    if (!repeats) forgetTimer(handle);
    try {
      callback();
    } catch (error) {
      fail(invocation, error);
    }
  }, delay);
  if (invocation === null) {
    timers.clearTimeout(handle);
  } else {
    invocation.timers.add(handle);
    timerOwners.set(handle, invocation);
  }
  return handle;
}

function forgetTimer(handle) {
  const invocation = timerOwners.get(handle);
  if (invocation === undefined) return;
  timerOwners.delete(handle);
  invocation.timers.delete(handle);
}

function cancel(handle) {
  if (typeof handle === "object" && handle !== null) forgetTimer(handle);
  timers.clearTimeout(handle);
}

const host = {
  Buffer,
  URL,
  URLSearchParams,
  TextEncoder,
  TextDecoder,
  crypto: cryptoGlobal,
  setTimeout: (callback, delay) => schedule(timers.setTimeout, callback, delay, false),
  clearTimeout: cancel,
  setInterval: (callback, delay) => schedule(timers.setInterval, callback, delay, true),
  clearInterval: cancel,
  inspect,
  log(level, args) {
    const invocation = liveOwner();
    if (invocation === null || invocation.logBytes >= MAX_LOG_TOTAL) return;
    let message = util.formatWithOptions({ customInspect: false }, ...args);
    if (message.length > MAX_LOG_MESSAGE) {
      message = `${message.slice(0, MAX_LOG_MESSAGE)}… (${message.length} characters)`;
    }
    invocation.logBytes += message.length;
    if (invocation.logBytes >= MAX_LOG_TOTAL) message += "\n… (log output truncated)";
    send({ op: "log", invocation: invocation.id, level, message });
  },
  fetch(requestJson, callback) {
    const answer = (failure) =>
      timers.setImmediate(() => callback(stringify({ failure })));
    let request;
    try {
      request = parse(requestJson);
    } catch {
      answer({ reason: "the request could not be read", code: "" });
      return;
    }
    const invocation = liveOwner();
    if (invocation === null) {
      answer({ reason: "the function is not running", code: "" });
      return;
    }
    const id = nextFetch++;
    pendingFetches.set(id, { callback, invocation: invocation.id });
    send({ op: "fetch", id, invocation: invocation.id, request });
  },
};

function installRuntime(context) {
  vm.runInContext(LODASH, context, { filename: "lodash.min.js" });
  const install = vm.runInContext(RUNTIME, context, { filename: "runtime.js" });
  return install(host);
}

const LOOKUP = `(name) => {
  switch (name) {
${HANDLERS.map((name) => `    case "${name}": return typeof ${name} === "undefined" ? undefined : ${name};`).join("\n")}
  }
}`;

let runtime = null;
let context = null;
let lookup = null;

function syntaxProblem(error) {
  const lines = String(error.stack || "").split("\n");
  const located = /^function\.js:(\d+)$/.exec(lines[0] || "");
  if (!located) return null;
  const caret = (lines[2] || "").indexOf("^");
  return {
    line: Number(located[1]),
    column: caret >= 0 ? caret + 1 : 1,
    message: `${error.name}: ${error.message}`,
  };
}

function compile(source) {
  return new vm.Script(source, { filename: USER_FILE });
}

function load(source, invocation) {
  const run = () => compile(source).runInContext(context);
  try {
    if (invocation === undefined) run();
    else owners.run(invocation, run);
    lookup = vm.runInContext(LOOKUP, context, { filename: "lookup.js" });
  } catch (error) {
    return { op: "loaded", ok: false, handlers: [], error: runtime.describe(error) };
  }
  const handlers = HANDLERS.filter((name) => typeof lookup(name) === "function");
  return { op: "loaded", ok: true, handlers, error: null };
}

function begin(id) {
  const invocation = { id, logBytes: 0, ended: false, timers: new Set() };
  running.set(id, invocation);
  lastBegun = id;
  send({ op: "running", id });
  return invocation;
}

// What an invocation started stops with it: its timers, and the answers of its
// fetches, which are dropped when they come.
function end(invocation) {
  invocation.ended = true;
  running.delete(invocation.id);
  for (const handle of invocation.timers) timers.clearTimeout(handle);
  invocation.timers.clear();
  for (const [fetchId, pending] of pendingFetches) {
    if (pending.invocation === invocation.id) pendingFetches.delete(fetchId);
  }
}

function settle(invocation, resultJson) {
  if (invocation.ended) return;
  end(invocation);
  let result;
  try {
    result = parse(resultJson);
  } catch {
    result = {
      status: "threw",
      value_json: null,
      error: {
        name: "Error",
        message: "the function's result could not be read",
        stack: "",
        kind: "Error",
      },
    };
  }
  send({
    op: "result",
    id: invocation.id,
    status: String(result.status),
    value_json: typeof result.value_json === "string" ? result.value_json : null,
    error: result.error && typeof result.error === "object" ? result.error : null,
  });
}

// An error the function did not catch (a throwing timer, an unhandled rejection)
// fails the invocation whose code caused it, as it fails the invocation on
// Segment's runtime. One whose invocation has already settled (or that belongs
// to no invocation) is written to stderr and dropped: it must not fail a later,
// unrelated invocation.
function fail(invocation, error) {
  if (invocation === null || invocation === undefined || invocation.ended) {
    const described = runtime.describe(error);
    const whose = invocation ? `invocation ${invocation.id}, which had ended` : "no invocation";
    const text = `${described.name}: ${described.message}`.slice(0, 500);
    writeError(`function worker: dropped an uncaught error of ${whose}: ${text}`);
    return;
  }
  const described = runtime.describe(error);
  settle(invocation, stringify({ status: "threw", value_json: null, error: described }));
}

async function invoke(message) {
  let invocation = running.get(message.id);
  if (invocation === undefined) {
    // Settled already: its top-level code failed it after the load.
    if (message.id <= lastBegun) return;
    invocation = begin(message.id);
  }
  if (lookup === null) {
    settle(
      invocation,
      stringify({
        status: "threw",
        value_json: null,
        error: { name: "Error", message: "no function is loaded", stack: "", kind: "Error" },
      }),
    );
    return;
  }
  let resultJson;
  try {
    resultJson = await owners.run(invocation, () =>
      runtime.invoke(lookup, message.handler, message.payload),
    );
  } catch (error) {
    fail(invocation, error);
    return;
  }
  // Node reports a rejection nobody handled once the microtasks of the current
  // macrotask have run, which is after the handler returned. Waiting for the
  // next macrotask lets a rejection the handler left behind fail this invocation,
  // as it would on Segment, instead of being dropped as a late one.
  await new Promise((resolve) => timers.setImmediate(resolve));
  settle(invocation, resultJson);
}

function handle(message) {
  if (message.op === "load") {
    const invocation = begin(message.id);
    const loaded = load(message.source, invocation);
    if (!loaded.ok) end(invocation);
    send({ ...loaded, id: message.id });
  } else if (message.op === "invoke") {
    invoke(message);
  } else if (message.op === "fetched") {
    const pending = pendingFetches.get(message.id);
    if (pending === undefined) return;
    pendingFetches.delete(message.id);
    const answer = message.failure ? { failure: message.failure } : { response: message.response };
    pending.callback(stringify(answer));
  }
}

function readLines(onLine, onEnd) {
  const stream = createReadStream(null, { fd: 0, highWaterMark: 1 << 16 });
  let buffered = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    buffered += chunk;
    let newline = buffered.indexOf("\n");
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line) onLine(line);
      newline = buffered.indexOf("\n");
    }
  });
  stream.on("end", () => onEnd(buffered));
  stream.on("error", () => exit(0));
}

// Node runs these handlers in the async context of the code that threw or of
// the promise that was rejected, so the store names the invocation at fault.
onProcess("uncaughtException", (error) => fail(owners.getStore(), error));
onProcess("unhandledRejection", (reason) => fail(owners.getStore(), reason));

harden();
context = vm.createContext(Object.create(null), {
  name: "function",
  codeGeneration: { strings: true, wasm: true },
});
runtime = installRuntime(context);

if (process.argv.includes("--check")) {
  readLines(
    () => {},
    (text) => {
      const { source, evaluate } = parse(text);
      let syntax = null;
      let handlers = [];
      try {
        compile(source);
        if (evaluate) {
          const loaded = load(source);
          handlers = loaded.handlers;
        }
      } catch (error) {
        syntax = syntaxProblem(error) || {
          line: 1,
          column: 1,
          message: `${error.name}: ${error.message}`,
        };
      }
      send({ syntax, handlers });
      exit(0);
    },
  );
} else {
  readLines(
    (line) => {
      let message;
      try {
        message = parse(line);
      } catch {
        exit(2);
      }
      handle(message);
    },
    () => exit(0),
  );
  send({ op: "ready" });
}
