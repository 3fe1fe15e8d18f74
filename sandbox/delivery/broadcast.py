"""Live updates: group names, the rendered pushes, and the watcher that sends them.

The watcher polls the stored rows (an indexed `updated_at` look-up) instead of
having the engine publish directly: the in-memory channel layer does not cross
processes, and a delivery made by the command line, another server process or
this one must reach the page the same way. The pushed HTML is the same partial a
reload renders, and one tick coalesces every change since the last into one push.
With REDIS_URL set the channel layer spans processes too; the watcher stays the
one source, so nothing is pushed twice.

A push is a list of rows, and the page upserts each one (replaces it if shown,
else inserts it at its place by id, keeping the newest version) and trims the feed
to its window. Every changed row in the window is pushed, however many there are,
so an open page ends showing exactly what is stored.
"""

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections
from django.template.loader import render_to_string
from django.utils import timezone

from sandbox.delivery import selectors
from sandbox.delivery.models import Delivery

logger = logging.getLogger("sandbox.live")

FEED_GROUP = "delivery-feed"
ROW_TEMPLATE = "delivery/delivery_feed.html#delivery-row"
# Rows are re-read a little into the past: a transaction may commit after a later
# one and carry an older updated_at.
OVERLAP = timedelta(seconds=2)


def render_rows(deliveries: list[Delivery]) -> str:
    """One websocket message: the rows as a reload renders them, newest first."""
    return "\n".join(
        render_to_string(ROW_TEMPLATE, {"delivery": delivery}).strip()
        for delivery in deliveries
    )


@dataclass
class Watcher:
    """Pushes rows changed since its last look to every open Event Tester."""

    interval: float = field(default_factory=lambda: settings.LIVE_POLL_MS / 1000)
    window: int = selectors.FEED_SIZE
    started_at: datetime = field(default_factory=timezone.now)
    since: datetime | None = None
    pushed: dict[int, datetime] = field(default_factory=dict)
    # Its own thread: behind asgiref's one shared thread for sync views, a burst
    # of sends would hold every push back until the burst is served.
    _poked: asyncio.Event | None = None
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="live")
    )

    def collect(self) -> str:
        """Render the feed rows changed since the last call; empty when none."""
        now = timezone.now()
        since = self.since or self.started_at
        # Without the model's default ordering SQLite reads the updated_at index alone.
        changed = Delivery.objects.filter(updated_at__gte=since - OVERLAP).order_by()
        fresh = {
            pk: updated_at
            for pk, updated_at in changed.values_list("id", "updated_at")
            if self.pushed.get(pk) != updated_at
        }
        self.since = now
        rows = []
        if fresh:
            floor = selectors.feed_floor(limit=self.window) or 0
            shown = [pk for pk in fresh if pk >= floor]
            if shown:
                rows = selectors.delivery_feed_rows(ids=shown)
            # Rows below the window are on no page: they count as pushed.
            self.pushed.update(fresh)
            for delivery in rows:
                self.pushed[delivery.pk] = delivery.updated_at
        horizon = now - OVERLAP * 4
        self.pushed = {k: v for k, v in self.pushed.items() if v >= horizon}
        return render_rows(rows) if rows else ""

    def _collect_in_thread(self) -> str:
        close_old_connections()
        try:
            return self.collect()
        finally:
            close_old_connections()

    async def tick(self) -> bool:
        loop = asyncio.get_running_loop()
        html = await loop.run_in_executor(self.executor, self._collect_in_thread)
        if not html:
            return False
        await get_channel_layer().group_send(
            FEED_GROUP, {"type": "feed.html", "html": html}
        )
        return True

    def poke(self, delivery_ids: tuple[int, ...] = ()) -> None:
        """A change was committed in this process: tick now (on the watcher's loop)."""
        if self._poked is not None:
            self._poked.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        self._poked = asyncio.Event()
        while not stop.is_set():
            self._poked.clear()
            try:
                await self.tick()
            except Exception:
                logger.exception("live update failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), self.interval)
