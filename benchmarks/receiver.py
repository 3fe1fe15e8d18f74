"""A tiny webhook for the benchmarks, run as its own process: every request gets
`{"success": true}`.

It listens on 127.0.0.1 at a free port, prints that port on stdout, and serves
until its stdin closes (the parent is done or died) or MAX_LIFETIME_SECONDS pass.
"""

import asyncio
import contextlib
import sys
import threading

from aiohttp import web

MAX_LIFETIME_SECONDS = 300.0
ANSWER = b'{"success": true}'


async def handle(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=ANSWER, content_type="application/json")


async def serve() -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
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
            await asyncio.wait_for(stdin_closed.wait(), MAX_LIFETIME_SECONDS)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve())
