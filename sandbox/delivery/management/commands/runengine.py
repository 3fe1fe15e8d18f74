"""Run a delivery engine without a web server: a second process sharing the table.

Exits 0 when stopped (Ctrl+C, SIGTERM) or, with --until-idle, once nothing is
due or in flight.
"""

import asyncio
import signal

from django.core.management.base import BaseCommand, CommandParser

from sandbox.delivery.engine import Engine
from sandbox.delivery.selectors import open_deliveries_count


class Command(BaseCommand):
    help = "Deliver due events from the shared table until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int, default=50)
        parser.add_argument(
            "--until-idle",
            action="store_true",
            help="stop once no delivery is pending or retrying",
        )

    def handle(self, *args, **options) -> None:
        engine = Engine(concurrency=options["concurrency"])
        if options["verbosity"] > 0:
            self.stdout.write(f"engine {engine.name} delivering")
        sent = asyncio.run(self._run(engine, until_idle=options["until_idle"]))
        if options["verbosity"] > 0:
            self.stdout.write(f"engine {engine.name} stopped")
        if options["verbosity"] > 1:
            self.stdout.write(f"sent {sent}")

    async def _run(self, engine: Engine, *, until_idle: bool) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if not until_idle:
            await engine.run_forever(stop)
            return 0
        sent = 0
        while not stop.is_set():
            await engine.recover()
            sent += await engine.run_due()
            if not await open_deliveries_count():
                break
            await asyncio.sleep(0.1)
        await engine.close()
        return sent
