// A worker process that runs one subscription function for sandbox/functions/runtime.py.
//
// Protocol: one JSON object per line, requests on stdin, answers on stdout.
//   in:  {op: "load", source}  {op: "invoke", id, handler, payload}
//        {op: "fetched", id, response | failure}
//   out: {op: "ready"}  {op: "loaded", ok, handlers, error}
//        {op: "log", invocation, level, message}  {op: "fetch", id, invocation, request}
//        {op: "result", id, status, value_json, error}
// With `--check` it reads {source, evaluate} once, answers {syntax, handlers} and exits.
//
// The function runs in a vm context that holds only Segment's globals. The worker
// is started with Node's permission model, an empty environment and code
// generation from strings disabled in this outer realm, and it removes from
// `process` and the global object what an escaped function could use.
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

let current = null;
let nextFetch = 1;
const pendingFetches = new Map();

const host = {
  Buffer,
  URL,
  URLSearchParams,
  TextEncoder,
  TextDecoder,
  crypto: cryptoGlobal,
  setTimeout: (callback, delay) => timers.setTimeout(callback, delay),
  clearTimeout: (handle) => timers.clearTimeout(handle),
  setInterval: (callback, delay) => timers.setInterval(callback, delay),
  clearInterval: (handle) => timers.clearInterval(handle),
  inspect,
  log(level, args) {
    const invocation = current;
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
    if (current === null) {
      answer({ reason: "the function is not running", code: "" });
      return;
    }
    const id = nextFetch++;
    pendingFetches.set(id, { callback, invocation: current.id });
    send({ op: "fetch", id, invocation: current.id, request });
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

function load(source) {
  try {
    compile(source).runInContext(context);
    lookup = vm.runInContext(LOOKUP, context, { filename: "lookup.js" });
  } catch (error) {
    return { op: "loaded", ok: false, handlers: [], error: runtime.describe(error) };
  }
  const handlers = HANDLERS.filter((name) => typeof lookup(name) === "function");
  return { op: "loaded", ok: true, handlers, error: null };
}

function finish(id, resultJson) {
  if (current === null || current.id !== id) return;
  current = null;
  for (const [fetchId, pending] of pendingFetches) {
    if (pending.invocation === id) pendingFetches.delete(fetchId);
  }
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
    id,
    status: String(result.status),
    value_json: typeof result.value_json === "string" ? result.value_json : null,
    error: result.error && typeof result.error === "object" ? result.error : null,
  });
}

function failCurrent(error) {
  if (current === null) return;
  const described = runtime.describe(error);
  finish(current.id, stringify({ status: "threw", value_json: null, error: described }));
}

async function invoke(message) {
  current = { id: message.id, logBytes: 0 };
  if (lookup === null) {
    finish(
      message.id,
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
    resultJson = await runtime.invoke(lookup, message.handler, message.payload);
  } catch (error) {
    failCurrent(error);
    return;
  }
  finish(message.id, resultJson);
}

function handle(message) {
  if (message.op === "load") {
    send(load(message.source));
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

// An error the function did not catch (a throwing timer, an unhandled
// rejection) fails the invocation that is running, as it would fail the
// function's process on Segment; between invocations it is dropped.
onProcess("uncaughtException", failCurrent);
onProcess("unhandledRejection", failCurrent);

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
