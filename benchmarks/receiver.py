"""A tiny webhook for the benchmarks, run as its own process: every request gets
`{"success": true}`, at once or after `--delay-ms` (a partner's processing time).

It listens on 127.0.0.1 at a free port, prints that port on stdout, and serves
until its stdin closes (the parent is done or died) or MAX_LIFETIME_SECONDS pass.
"""

import argparse
import asyncio
import contextlib
import sys
import threading

from aiohttp import web

MAX_LIFETIME_SECONDS = 300.0
ANSWER = b'{"success": true}'


def handler(delay_seconds: float):
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        if delay_seconds:
            await asyncio.sleep(delay_seconds)
        return web.Response(body=ANSWER, content_type="application/json")

    return handle


async def serve(delay_seconds: float, lifetime: float = MAX_LIFETIME_SECONDS) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler(delay_seconds))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(port, flush=True)
    loop = asyncio.get_running_loop()
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
        await runner.cleanup()


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
