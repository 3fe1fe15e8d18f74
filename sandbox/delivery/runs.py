"""Runs: any set of deliveries sent together (copies under delivery conditions, a
suite, a replay), and one way to wait until a run settles that the command line,
suites and replay share (its progress is selectors.run_progress)."""

import asyncio

from asgiref.sync import sync_to_async

from sandbox.delivery import selectors
from sandbox.delivery.models import Run

WAIT_EVERY_SECONDS = 0.05
# The most requests at once any run may ask for (a replay's concurrency); an
# engine makes room for it while such a run is open (engine.Engine._slots).
CONCURRENCY_MOST = 200


def run_create(
    *,
    door: str,
    label: str = "",
    concurrency: int = 1,
    conditions: dict | None = None,
    applied: str = "",
    strict_order: bool = False,
) -> Run:
    """A run to enqueue deliveries into (`deliveries_enqueue(..., run=run)`).

    `strict_order`: each delivery settles (retries included) before the next
    one of the run goes out, as Segment's tester runs its steps."""
    return Run.objects.create(
        door=door,
        label=label,
        concurrency=concurrency,
        conditions=conditions or {},
        applied=applied,
        strict_order=strict_order,
    )


async def run_wait(
    *, run_id: int, timeout: float | None = None, every: float = WAIT_EVERY_SECONDS
) -> selectors.RunProgress:
    """Until no delivery of the run is open; whichever engine sends it (this
    process's, a server's, or another command's). Raises TimeoutError."""
    progress = sync_to_async(selectors.run_progress)

    async def settled() -> selectors.RunProgress:
        while True:
            found = await progress(run_id=run_id)
            if found.is_settled:
                return found
            await asyncio.sleep(every)

    return await asyncio.wait_for(settled(), timeout)
