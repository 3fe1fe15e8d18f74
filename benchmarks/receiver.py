"""A tiny webhook for the benchmarks, run as its own process: every request gets
`{"success": true}`, at once or after `--delay-ms` (a partner's processing time).

It stands in for a partner's endpoint, which runs on another machine and costs
the sandbox's none of its CPU. Here it shares the machine's cores with what is
measured, so it should cost as little as it can: it is HTTP/1.1 on asyncio's
bare protocol, its requests parsed by httptools (llhttp, the parser uvicorn
uses), about 10-20 µs of CPU a request against 40-50 µs for an aiohttp
application. Keep-alive as the client asks; answers on a connection go out
in the order of its requests.

It listens on 127.0.0.1 at a free port, prints that port on stdout, and serves
until its stdin closes (the parent is done or died) or MAX_LIFETIME_SECONDS pass.
"""

import argparse
import asyncio
import contextlib
import sys
import threading

import httptools

MAX_LIFETIME_SECONDS = 300.0
ANSWER = b'{"success": true}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(ANSWER)).encode() + b"\r\n"
    b"\r\n" + ANSWER
)
BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
)


class Answering(asyncio.Protocol):
    """One connection: each complete request answered, after the delay."""

    def __init__(self, delay_seconds: float):
        self._delay = delay_seconds
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._transport.write(BAD_REQUEST)
            self._transport.close()

    # httptools' callback: a request was read whole (its body included).
    def on_message_complete(self) -> None:
        keep_alive = self._parser.should_keep_alive()
        if self._delay:
            self._loop.call_later(self._delay, self._answer, keep_alive)
        else:
            self._answer(keep_alive)

    def _answer(self, keep_alive: bool) -> None:
        transport = self._transport
        if transport.is_closing():
            return
        transport.write(RESPONSE)
        if not keep_alive:
            transport.close()


async def serve(delay_seconds: float, lifetime: float = MAX_LIFETIME_SECONDS) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Answering(delay_seconds), "127.0.0.1", 0, backlog=1024
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    stdin_closed = asyncio.Event()

    def watch_stdin() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stdin_closed.set)

    # A daemon thread, so a parent that never closes stdin cannot keep us alive.
    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stdin_closed.wait(), lifetime)
    finally:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--delay-ms", type=float, default=0.0, help="answer after this long"
    )
    parser.add_argument(
        "--lifetime",
        type=float,
        default=MAX_LIFETIME_SECONDS,
        help="stop after this many seconds at the most",
    )
    options = parser.parse_args()
    asyncio.run(serve(options.delay_ms / 1000, options.lifetime))
