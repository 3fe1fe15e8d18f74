// The globals of a subscription function, built inside the function's own vm
// context so that `instanceof`, prototypes and JSON belong to the function's realm.
// Evaluated once per context before the function's source; `host` holds the few
// worker functions it needs and is not reachable afterwards.
(function installRuntime(host) {
  "use strict";
  const global = globalThis;
  // Taken before the function runs, so a function that replaces them breaks only
  // its own code, not how the worker reads its results.
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const ObjectFreeze = Object.freeze;
  const ArrayIsArray = Array.isArray;
  const Buffer = host.Buffer;
  const USER_FILE = "function.js";

  function define(name, value) {
    Object.defineProperty(global, name, {
      value,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }

  // Segment's four error classes, and node-fetch 2's FetchError.
  function errorClass(name) {
    const cls = {
      [name]: class extends Error {
        constructor(message) {
          super(message);
          this.name = name;
        }
      },
    }[name];
    return cls;
  }
  const EventNotSupported = errorClass("EventNotSupported");
  const InvalidEventPayload = errorClass("InvalidEventPayload");
  const ValidationError = errorClass("ValidationError");
  const RetryError = errorClass("RetryError");

  class FetchError extends Error {
    constructor(message, type, systemError) {
      super(message);
      this.type = type;
      if (systemError) {
        this.code = this.errno = systemError.code;
      }
      Error.captureStackTrace(this, this.constructor);
    }
  }
  FetchError.prototype.name = "FetchError";

  const KINDS = [
    [EventNotSupported, "EventNotSupported"],
    [InvalidEventPayload, "InvalidEventPayload"],
    [ValidationError, "ValidationError"],
    [RetryError, "RetryError"],
    [FetchError, "FetchError"],
  ];

  function attempt(read, fallback) {
    try {
      return read();
    } catch {
      return fallback;
    }
  }

  // Only the function's own frames: the worker's are noise to the user and
  // would describe the sandbox rather than the function.
  function cleanStack(stack) {
    if (typeof stack !== "string") return "";
    return stack
      .split("\n")
      .filter((line) => !/^\s+at /.test(line) || line.includes(USER_FILE))
      .join("\n");
  }

  function describe(error) {
    let kind = "Error";
    for (const [cls, name] of KINDS) {
      if (attempt(() => error instanceof cls, false)) {
        kind = name;
        break;
      }
    }
    const isObject = error !== null && (typeof error === "object" || typeof error === "function");
    // Errors may come from the worker's realm too (a SyntaxError from compiling).
    const isError = attempt(
      () => Object.prototype.toString.call(error) === "[object Error]",
      false,
    );
    if (!isObject || !isError) {
      const message = attempt(() => host.inspect(error), "[value]");
      return { name: "Error", message, stack: "", kind };
    }
    const name = attempt(() => String(error.name), "Error");
    const message = attempt(() => String(error.message), "");
    const stack = cleanStack(attempt(() => error.stack, ""));
    const described = { name, message, stack, kind };
    const code = attempt(() => error.code, undefined);
    if (typeof code === "string") described.code = code;
    return described;
  }

  // console, formatted as Node's util.format does.
  const console = {};
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    console[level] = (...args) => host.log(level, args);
  }
  console.trace = (...args) => host.log("error", ["Trace:", ...args]);
  console.dir = (value) => host.log("log", [value]);
  console.table = (value) => host.log("log", [value]);
  console.assert = (value, ...args) => {
    if (!value) host.log("error", ["Assertion failed", ...args]);
  };
  const timers = new Map();
  console.time = (label = "default") => timers.set(String(label), Date.now());
  const elapsed = (label) => {
    const started = timers.get(String(label));
    return started === undefined ? undefined : `${String(label)}: ${Date.now() - started}ms`;
  };
  console.timeLog = (label = "default", ...args) => {
    const line = elapsed(label);
    if (line !== undefined) host.log("log", [line, ...args]);
  };
  console.timeEnd = (label = "default") => {
    const line = elapsed(label);
    timers.delete(String(label));
    if (line !== undefined) host.log("log", [line]);
  };

  // Segment's cache: process-local, per function instance, may be evicted.
  const MAX_CACHE_ENTRIES = 10000;
  const entries = new Map();
  const cache = ObjectFreeze({
    load(key, ttl, loader) {
      if (typeof loader !== "function") {
        return Promise.reject(new TypeError("cache.load needs an async function"));
      }
      const now = Date.now();
      const found = entries.get(key);
      if (found && found.expires > now) return found.value;
      const value = Promise.resolve().then(() => loader());
      const entry = { value, expires: now + Number(ttl) };
      entries.delete(key);
      entries.set(key, entry);
      if (entries.size > MAX_CACHE_ENTRIES) entries.delete(entries.keys().next().value);
      value.catch(() => {
        if (entries.get(key) === entry) entries.delete(key);
      });
      return value;
    },
    delete(key) {
      entries.delete(key);
    },
  });

  // atob 2.1.2 and btoa 1.2.1 from npm, which Segment documents: Buffer based,
  // so they never throw on characters outside Latin-1 as the WHATWG ones do.
  function atob(text) {
    return Buffer.from(text, "base64").toString("binary");
  }
  function btoa(text) {
    const buffer = text instanceof Buffer ? text : Buffer.from(text.toString(), "binary");
    return buffer.toString("base64");
  }

  function timer(schedule) {
    return (callback, delay, ...args) => {
      if (typeof callback !== "function") {
        throw new TypeError(
          `The "callback" argument must be of type function. Received ${host.inspect(callback)}`,
        );
      }
      return schedule(() => callback(...args), delay);
    };
  }

  // ---- fetch, as node-fetch 2.6 behaves -------------------------------------
  const INTERNALS = Symbol("internals");

  function validName(name) {
    name = `${name}`;
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name) || name === "") {
      throw new TypeError(`${name} is not a legal HTTP header name`);
    }
    return name;
  }
  function validValue(value) {
    value = `${value}`;
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) {
      throw new TypeError(`${value} is not a legal HTTP header value`);
    }
    return value;
  }

  // Names keep the spelling of their first use and the order they were added,
  // which is what node-fetch sends on the wire.
  class Headers {
    constructor(init = undefined) {
      this[INTERNALS] = new Map();
      if (init == null) return;
      if (init instanceof Headers) {
        for (const [name, values] of init[INTERNALS].values()) {
          for (const value of values) this.append(name, value);
        }
        return;
      }
      if (typeof init !== "object") {
        throw new TypeError("Provided initializer must be an object");
      }
      if (typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          if (typeof pair !== "object" || typeof pair[Symbol.iterator] !== "function") {
            throw new TypeError("Each header pair must be iterable");
          }
          const items = [...pair];
          if (items.length !== 2) {
            throw new TypeError("Each header pair must be a name/value tuple");
          }
          this.append(items[0], items[1]);
        }
        return;
      }
      for (const name of Object.keys(init)) this.append(name, init[name]);
    }
    get(name) {
      const found = this[INTERNALS].get(validName(name).toLowerCase());
      return found ? found[1].join(", ") : null;
    }
    has(name) {
      return this[INTERNALS].has(validName(name).toLowerCase());
    }
    set(name, value) {
      name = validName(name);
      value = validValue(value);
      const found = this[INTERNALS].get(name.toLowerCase());
      if (found) found[1] = [value];
      else this[INTERNALS].set(name.toLowerCase(), [name, [value]]);
    }
    append(name, value) {
      name = validName(name);
      value = validValue(value);
      const found = this[INTERNALS].get(name.toLowerCase());
      if (found) found[1].push(value);
      else this[INTERNALS].set(name.toLowerCase(), [name, [value]]);
    }
    delete(name) {
      this[INTERNALS].delete(validName(name).toLowerCase());
    }
    raw() {
      const raw = {};
      for (const [name, values] of this[INTERNALS].values()) raw[name] = [...values];
      return raw;
    }
    forEach(callback, thisArg = undefined) {
      for (const [name, value] of this.entries()) callback.call(thisArg, value, name, this);
    }
    *entries() {
      const names = [...this[INTERNALS].keys()].sort();
      for (const name of names) yield [name, this.get(name)];
    }
    *keys() {
      for (const [name] of this.entries()) yield name;
    }
    *values() {
      for (const [, value] of this.entries()) yield value;
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    get [Symbol.toStringTag]() {
      return "Headers";
    }
  }

  function wirePairs(headers) {
    const pairs = [];
    for (const [name, values] of headers[INTERNALS].values()) {
      for (const value of values) pairs.push([name, value]);
    }
    return pairs;
  }

  const isUrlSearchParams = (value) => value instanceof host.URLSearchParams;
  const isBytes = (value) =>
    Buffer.isBuffer(value) ||
    Object.prototype.toString.call(value) === "[object ArrayBuffer]" ||
    ArrayBuffer.isView(value);

  // A body as node-fetch 2 takes it: a plain object is String()-ed.
  function bodyBytes(body) {
    if (body == null) return null;
    if (typeof body === "string") return Buffer.from(body);
    if (isUrlSearchParams(body)) return Buffer.from(body.toString());
    if (Buffer.isBuffer(body)) return body;
    if (Object.prototype.toString.call(body) === "[object ArrayBuffer]") {
      return Buffer.from(body);
    }
    if (ArrayBuffer.isView(body)) {
      return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    }
    return Buffer.from(String(body));
  }
  function bodyContentType(body) {
    if (body == null || isBytes(body)) return null;
    if (isUrlSearchParams(body)) return "application/x-www-form-urlencoded;charset=UTF-8";
    return "text/plain;charset=UTF-8";
  }

  class Body {
    constructor(body, url) {
      this[INTERNALS] = { bytes: bodyBytes(body), used: false, url };
    }
    get body() {
      return this[INTERNALS].bytes;
    }
    get bodyUsed() {
      return this[INTERNALS].used;
    }
    async buffer() {
      const state = this[INTERNALS];
      if (state.used) throw new TypeError(`body used already for: ${state.url}`);
      state.used = true;
      return state.bytes === null ? Buffer.alloc(0) : Buffer.from(state.bytes);
    }
    async arrayBuffer() {
      const bytes = await this.buffer();
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    }
    async text() {
      return (await this.buffer()).toString();
    }
    async json() {
      const text = await this.text();
      try {
        return parse(text);
      } catch (error) {
        throw new FetchError(
          `invalid json response body at ${this[INTERNALS].url} reason: ${error.message}`,
          "invalid-json",
        );
      }
    }
  }

  function absoluteUrl(input) {
    let parsed;
    try {
      parsed = new host.URL(String(input));
    } catch {
      throw new TypeError("Only absolute URLs are supported");
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new TypeError("Only HTTP(S) protocols are supported");
    }
    return parsed.href;
  }

  class Request extends Body {
    constructor(input, init = {}) {
      const source = input instanceof Request ? input : null;
      const url = absoluteUrl(source ? source.url : input);
      const method = String(init.method || (source && source.method) || "GET").toUpperCase();
      const given = init.body != null ? init.body : source ? source.body : null;
      if (given != null && (method === "GET" || method === "HEAD")) {
        throw new TypeError("Request with GET/HEAD method cannot have body");
      }
      super(given, url);
      const headers = new Headers(init.headers || (source && source.headers) || {});
      const contentType = given != null && bodyContentType(given);
      if (contentType && !headers.has("Content-Type")) headers.append("Content-Type", contentType);
      this[INTERNALS].request = {
        url,
        method,
        headers,
        redirect: init.redirect || (source && source.redirect) || "follow",
        timeout: Number(init.timeout || (source && source.timeout) || 0),
        compress: Boolean(
          init.compress !== undefined ? init.compress : source ? source.compress : true,
        ),
        follow: init.follow !== undefined ? init.follow : source ? source.follow : 20,
        // How many redirects led to this request.
        counter: init.counter || (source && source.counter) || 0,
      };
    }
    get url() {
      return this[INTERNALS].request.url;
    }
    get method() {
      return this[INTERNALS].request.method;
    }
    get headers() {
      return this[INTERNALS].request.headers;
    }
    get redirect() {
      return this[INTERNALS].request.redirect;
    }
    get timeout() {
      return this[INTERNALS].request.timeout;
    }
    get compress() {
      return this[INTERNALS].request.compress;
    }
    get follow() {
      return this[INTERNALS].request.follow;
    }
    get counter() {
      return this[INTERNALS].request.counter;
    }
    clone() {
      return new Request(this);
    }
    get [Symbol.toStringTag]() {
      return "Request";
    }
  }

  const STATUS_TEXT = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently",
    302: "Found", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 409: "Conflict", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
  };

  class Response extends Body {
    constructor(body = null, init = {}) {
      super(body, init.url || "");
      const status = init.status || 200;
      const headers = new Headers(init.headers);
      const contentType = body != null && bodyContentType(body);
      if (contentType && !headers.has("Content-Type")) headers.append("Content-Type", contentType);
      this[INTERNALS].response = {
        url: init.url || "",
        status,
        statusText: init.statusText || STATUS_TEXT[status] || "",
        headers,
        counter: init.counter || 0,
      };
    }
    get url() {
      return this[INTERNALS].response.url;
    }
    get status() {
      return this[INTERNALS].response.status;
    }
    get ok() {
      const status = this[INTERNALS].response.status;
      return status >= 200 && status < 300;
    }
    get redirected() {
      return this[INTERNALS].response.counter > 0;
    }
    get statusText() {
      return this[INTERNALS].response.statusText;
    }
    get headers() {
      return this[INTERNALS].response.headers;
    }
    clone() {
      if (this.bodyUsed) throw new Error("cannot clone body after it is used");
      return new Response(this.body, {
        url: this.url,
        status: this.status,
        statusText: this.statusText,
        headers: this.headers,
      });
    }
    get [Symbol.toStringTag]() {
      return "Response";
    }
  }

  // node-fetch's own additions, in the order it adds them.
  function wireHeaders(request) {
    const headers = new Headers(request.headers);
    const state = request[INTERNALS];
    if (!headers.has("Accept")) headers.set("Accept", "*/*");
    let length = null;
    if (state.bytes === null && /^(POST|PUT)$/i.test(request.method)) length = "0";
    if (state.bytes !== null) length = String(state.bytes.length);
    if (length !== null) headers.set("Content-Length", length);
    if (!headers.has("User-Agent")) {
      headers.set("User-Agent", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)");
    }
    if (state.request.compress && !headers.has("Accept-Encoding")) {
      headers.set("Accept-Encoding", "gzip,deflate");
    }
    if (!headers.has("Connection")) headers.set("Connection", "close");
    return wirePairs(headers);
  }

  // node-fetch keeps the headers of an answer it can read and skips the others.
  function answerHeaders(pairs) {
    const headers = new Headers();
    for (const [name, value] of pairs) {
      try {
        headers.append(name, value);
      } catch {
        // An illegal name or value is left out.
      }
    }
    return headers;
  }

  // The runtime makes one exchange per request and does not follow redirects, so
  // fetch follows them here, hop by hop, as node-fetch 2 does: up to `follow`
  // (20) of them, a 303 (or a 301/302 to a POST) becomes a GET without a body,
  // and the response's `url` is the last request's, `redirected` true after one.
  function fetch(input, init = undefined) {
    let request;
    try {
      request = new Request(input, init || {});
    } catch (error) {
      return Promise.reject(error);
    }
    // Read in a continuation of the function's own promise, not in the worker's
    // callback, so that a redirect's next request belongs to the same invocation.
    return exchange(request).then((reply) => answered(request, reply));
  }

  function exchange(request) {
    return new Promise((resolve, reject) => {
      const state = request[INTERNALS];
      const message = stringify({
        method: request.method,
        url: request.url,
        headers: wireHeaders(request),
        body: state.bytes === null ? "" : state.bytes.toString("base64"),
      });
      let settled = false;
      let timer = null;
      if (request.timeout > 0) {
        timer = host.setTimeout(() => {
          if (settled) return;
          settled = true;
          reject(new FetchError(`network timeout at: ${request.url}`, "request-timeout"));
        }, request.timeout);
      }
      host.fetch(message, (answerJson) => {
        if (settled) return;
        settled = true;
        if (timer !== null) host.clearTimeout(timer);
        const answer = parse(answerJson);
        if (answer.failure) {
          const { reason, code, errno } = answer.failure;
          const error = new FetchError(
            `request to ${request.url} failed, reason: ${reason}`,
            "system",
            code ? { code } : undefined,
          );
          if (errno) error.errno = errno;
          reject(error);
          return;
        }
        resolve(answer.response);
      });
    });
  }

  // The Response for one exchange, or the promise of the redirect it leads to.
  function answered(request, reply) {
    const headers = answerHeaders(reply.headers);
    const { redirect, counter, follow } = request[INTERNALS].request;
    if (fetch.isRedirect(reply.status)) {
      const location = headers.get("Location");
      let locationURL = null;
      if (location !== null) {
        try {
          locationURL = new host.URL(location, request.url).href;
        } catch {
          if (redirect !== "manual") {
            throw new FetchError(
              `uri requested responds with an invalid redirect URL: ${location}`,
              "invalid-redirect",
            );
          }
        }
      }
      if (redirect === "error") {
        throw new FetchError(`redirect mode is set to error: ${request.url}`, "no-redirect");
      }
      if (redirect === "manual" && locationURL !== null) {
        headers.set("Location", locationURL);
      }
      if (redirect === "follow" && locationURL !== null) {
        if (counter >= follow) {
          throw new FetchError(`maximum redirect reached at: ${request.url}`, "max-redirect");
        }
        const next = {
          headers: new Headers(request.headers),
          follow,
          counter: counter + 1,
          compress: request.compress,
          method: request.method,
          body: request.body,
          timeout: request.timeout,
          redirect,
        };
        const status = reply.status;
        if (status === 303 || ((status === 301 || status === 302) && request.method === "POST")) {
          next.method = "GET";
          next.body = undefined;
          next.headers.delete("content-length");
        }
        return fetch(new Request(locationURL, next));
      }
    }
    return new Response(Buffer.from(reply.body, "base64"), {
      url: request.url,
      status: reply.status,
      statusText: reply.status_text,
      headers,
      counter,
    });
  }
  fetch.isRedirect = (code) => [301, 302, 303, 307, 308].includes(code);
  fetch.Headers = Headers;
  fetch.Request = Request;
  fetch.Response = Response;
  fetch.FetchError = FetchError;

  // ---- the globals ----------------------------------------------------------
  define("fetch", fetch);
  define("Headers", Headers);
  define("Request", Request);
  define("Response", Response);
  define("FetchError", FetchError);
  define("URL", host.URL);
  define("URLSearchParams", host.URLSearchParams);
  define("TextEncoder", host.TextEncoder);
  define("TextDecoder", host.TextDecoder);
  define("atob", atob);
  define("btoa", btoa);
  define("Buffer", Buffer);
  define("crypto", Object.assign({}, host.crypto));
  define("console", console);
  define("cache", cache);
  define("setTimeout", timer(host.setTimeout));
  define("setInterval", timer(host.setInterval));
  define("clearTimeout", (handle) => host.clearTimeout(handle));
  define("clearInterval", (handle) => host.clearInterval(handle));
  define("EventNotSupported", EventNotSupported);
  define("InvalidEventPayload", InvalidEventPayload);
  define("ValidationError", ValidationError);
  define("RetryError", RetryError);

  function encodeValue(value) {
    if (value === undefined) return null;
    let text;
    try {
      text = stringify(value);
    } catch {
      text = undefined;
    }
    if (typeof text === "string") return text;
    return stringify(attempt(() => String(value), "[value]"));
  }

  // The worker calls these; `lookup` comes from a script compiled after the
  // function's source, so `const onTrack = ...` is found as well as a declaration.
  return {
    describe,
    async invoke(lookup, handler, payloadJson) {
      const fn = lookup(handler);
      if (typeof fn !== "function") {
        const type = handler.replace(/^on/, "").toLowerCase();
        return stringify({
          status: "missing_handler",
          value_json: null,
          error: {
            name: "EventNotSupported",
            message: `${type} is not supported`,
            stack: "",
            kind: "EventNotSupported",
          },
        });
      }
      try {
        const [args, settings] = parse(payloadJson);
        const value = await fn(...(ArrayIsArray(args) ? args : [args]), settings);
        return stringify({ status: "returned", value_json: encodeValue(value), error: null });
      } catch (error) {
        return stringify({ status: "threw", value_json: null, error: describe(error) });
      }
    },
  };
});
