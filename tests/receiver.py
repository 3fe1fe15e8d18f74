"""A real local HTTP endpoint for tests: an aiohttp server in its own thread.

It plays a partner's webhook with every behaviour the tests need (answers,
hangs, resets, huge and hostile bodies) and records what it received.
"""

import asyncio
import base64
import html
import json
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    path: str
    raw_headers: list[tuple[str, str]]
    body: bytes
    # When it arrived (time.monotonic), for tests that measure rates.
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> object:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.raw_headers if k.lower() == name.lower()), None)


@dataclass
class Receiver:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    # When /limited/ last accepted requests (time.monotonic).
    accepted: list[float] = field(default_factory=list)
    max_in_flight: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    def count(self, path: str, message_id: str) -> int:
        return sum(
            1
            for r in self.received
            if r.path == path and r.json.get("messageId") == message_id
        )

    def url(self, path: str = "/ok") -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def _record(self, request: web.Request) -> None:
        self.received.append(
            Received(
                path=request.path,
                raw_headers=[
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in request.raw_headers
                ],
                body=await request.read(),
            )
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        path = request.path
        if path == "/ok":
            return web.json_response({"success": True})
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            headers = {"Retry-After": "1"} if code in {429, 503} else None
            return web.json_response(
                {"message": f"answered {code} on purpose"}, status=code, headers=headers
            )
        if path.startswith("/flaky/"):
            # /flaky/<n>/<status>: fail the first n requests of each messageId.
            failures, status = (int(part) for part in path.split("/")[2:4])
            message_id = json.loads(self.received[-1].body).get("messageId")
            seen = sum(
                1
                for r in self.received
                if r.path == path and json.loads(r.body).get("messageId") == message_id
            )
            if seen <= failures:
                return web.json_response(
                    {"message": f"failing attempt {seen} on purpose"}, status=status
                )
            return web.json_response({"success": True})
        if path.startswith("/echo-key/"):
            # Further ways to quote the key: past the 300-character cut of a
            # message, in a redirect's Location, across the body limit, in an
            # unchanged 200 answer.
            encoded = request.headers.get("Authorization", "").partition(" ")[2]
            key = base64.b64decode(encoded).decode().removesuffix(":")
            how = path.removeprefix("/echo-key/")
            if how == "long":
                return web.json_response({"message": "x" * 290 + " " + key}, status=400)
            if how == "redirect":
                return web.Response(
                    status=302,
                    headers={"Location": f"/login?api_key={key}&auth={encoded}"},
                )
            if how == "huge":
                limit = int(request.query["limit"])
                return web.Response(
                    text="y" * (limit - 20) + key, status=500, content_type="text/plain"
                )
            return web.json_response({"message": f"ok for {key}"})
        if path == "/echo-key":
            # An endpoint that quotes the key it refuses, in every form it has.
            header = request.headers.get("Authorization", "")
            encoded = header.partition(" ")[2]
            key = base64.b64decode(encoded).decode().removesuffix(":")
            return web.json_response(
                {
                    "message": f"Invalid API key {key} (header {header}, "
                    f"as HTML {html.escape(key)})",
                    "key": key,
                },
                status=401,
                headers={"X-Refused-Key": encoded},
            )
        if path == "/slow":
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(0.15)
            finally:
                self.in_flight -= 1
            return web.json_response({"success": True})
        if path == "/hang":
            await asyncio.sleep(30)
            return web.json_response({"late": True})
        if path == "/reset":
            response = web.StreamResponse(status=200)
            response.content_length = 1000
            await response.prepare(request)
            await response.write(b'{"partial": ')
            request.transport.close()
            return response
        if path == "/huge":
            return web.Response(
                body=b"x" * (5 * 1024 * 1024), content_type="text/plain"
            )
        if path == "/html":
            return web.Response(
                text="<html><script>alert(1)</script><b>hi</b></html>",
                status=500,
                content_type="text/html",
            )
        if path.startswith("/limited/"):
            # /limited/<n>: at most n answers of 200 per second, 429 beyond.
            limit = int(path.rsplit("/", 1)[1])
            now = time.monotonic()
            window = [t for t in self.accepted if t > now - 1.0]
            if len(window) >= limit:
                self.accepted = window
                return web.json_response(
                    {"message": "rate limited"},
                    status=429,
                    headers={"Retry-After": "1"},
                )
            self.accepted = [*window, now]
            return web.json_response({"success": True})
        if path.startswith("/retry-after/"):
            # /retry-after/<value>: 429 with whatever Retry-After the test names.
            value = path.split("/", 2)[2]
            return web.json_response(
                {"message": "slow down"}, status=429, headers={"Retry-After": value}
            )
        if path == "/surrogate":
            # Valid JSON whose message decodes to a lone surrogate.
            return web.Response(
                body=b'{"message": "bad \\ud800 input"}',
                status=400,
                content_type="application/json",
            )
        if path == "/redirect":
            raise web.HTTPFound(location="https://elsewhere.example/hook")
        if path == "/moved":
            return web.json_response(
                {"message": "Moved."},
                status=301,
                headers={"Location": "https://elsewhere.example/new"},
            )
        return web.json_response({"message": "no such path"}, status=404)

    def start(self) -> "Receiver":
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(
                app, shutdown_timeout=0.5, handler_cancellation=True, access_log=None
            )
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, 0)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
