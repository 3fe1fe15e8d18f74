"""Runs: any set of deliveries sent together (copies under delivery conditions, a
suite, a replay), their progress, and one way to wait until a run settles that the
command line, suites and replay share."""

import asyncio
from collections import Counter
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db.models import Count

from sandbox.delivery.models import OPEN_STATES, Delivery, Run

WAIT_EVERY_SECONDS = 0.05


def run_create(
    *,
    door: str,
    label: str = "",
    concurrency: int = 1,
    conditions: dict | None = None,
    applied: str = "",
) -> Run:
    """A run to enqueue deliveries into (`deliveries_enqueue(..., run=run)`)."""
    return Run.objects.create(
        door=door,
        label=label,
        concurrency=concurrency,
        conditions=conditions or {},
        applied=applied,
    )


@dataclass(frozen=True)
class RunProgress:
    run_id: int
    by_state: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def open(self) -> int:
        return sum(self.by_state.get(state, 0) for state in OPEN_STATES)

    @property
    def settled(self) -> bool:
        return self.open == 0


def run_progress(*, run_id: int) -> RunProgress:
    """How many of the run's deliveries are in each state (one grouped count)."""
    counts = (
        Delivery.objects.filter(run_id=run_id)
        .order_by()
        .values_list("state")
        .annotate(n=Count("id"))
    )
    return RunProgress(run_id, dict(Counter(dict(counts))))


async def run_wait(
    *, run_id: int, timeout: float | None = None, every: float = WAIT_EVERY_SECONDS
) -> RunProgress:
    """Until no delivery of the run is open; whichever engine sends it (this
    process's, a server's, or another command's). Raises TimeoutError."""
    progress = sync_to_async(run_progress)

    async def settled() -> RunProgress:
        while True:
            found = await progress(run_id=run_id)
            if found.settled:
                return found
            await asyncio.sleep(every)

    return await asyncio.wait_for(settled(), timeout)
