"""Shared fixtures: a real local endpoint, and running the engine for real."""

import asyncio
import threading

import pytest

from sandbox.delivery import targets
from sandbox.delivery.engine import Engine
from tests.receiver import Receiver


@pytest.fixture(autouse=True)
def _fresh_target_rows():
    """Tests empty the database between them; a process never does."""
    targets.forget_rows()


@pytest.fixture(autouse=True)
def _replay_feeders_finish():
    """A replay started from its page is read by a thread of the server's; the
    test that started it waits for it, so it never touches the next test's
    database."""
    yield
    for thread in threading.enumerate():
        if (
            thread.name.startswith("replay-")
            and thread is not threading.current_thread()
        ):
            thread.join(30)


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
async def watcher():
    """A live watcher that pushes every run's change at once (coalescing is the
    watcher's own test)."""
    from sandbox.delivery.broadcast import Watcher

    watcher = Watcher(run_interval=0)
    yield watcher
    await watcher.close()


@pytest.fixture
def deliver_due():
    """Run one engine pass over everything due, as the server's engine would."""

    def deliver_due(only_ids: list[int] | None = None) -> int:
        async def run() -> int:
            engine = Engine(concurrency=10)
            try:
                return await engine.run_due(only_ids=only_ids)
            finally:
                await engine.close()

        return asyncio.run(run())

    return deliver_due


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: sync Playwright keeps an event loop running in the
    main thread for the session, and an async test after it could not start its
    own."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
