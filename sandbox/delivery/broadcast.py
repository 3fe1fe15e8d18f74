"""Live updates: group names, the rendered pushes, and the watcher that sends them.

The watcher polls the stored rows (an indexed `updated_at` look-up) instead of
having the engine publish directly: the in-memory channel layer does not cross
processes, and a delivery made by the command line, another server process or
this one must reach the page the same way. The pushed HTML is the same partial a
reload renders, and one tick coalesces every change since the last into one push.
With REDIS_URL set the channel layer spans processes too; the watcher stays the
one source, so nothing is pushed twice.
"""

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import prefetch_related_objects
from django.template.loader import render_to_string
from django.utils import timezone

from sandbox.delivery.models import Delivery

logger = logging.getLogger("sandbox.live")

FEED_GROUP = "delivery-feed"
ROW_TEMPLATE = "delivery/delivery_feed.html#delivery-row"
# Rows are re-read a little into the past: a transaction may commit after a later
# one and carry an older updated_at.
OVERLAP = timedelta(seconds=2)
# A burst (a replay) is pushed as its newest rows; the page keeps a window anyway.
MAX_ROWS_PER_PUSH = 50


def render_push(deliveries: list[Delivery], *, new_ids: set[int]) -> str:
    """One websocket message: changed rows replace themselves, new ones go on top."""
    parts = []
    for delivery in deliveries:
        if delivery.pk in new_ids:
            row = render_to_string(ROW_TEMPLATE, {"delivery": delivery})
            parts.append(f'<div hx-swap-oob="afterbegin:#delivery-feed">{row}</div>')
        else:
            parts.append(
                render_to_string(ROW_TEMPLATE, {"delivery": delivery, "oob": True})
            )
    return "\n".join(parts)


@dataclass
class Watcher:
    """Pushes rows changed since its last look to every open Event Tester."""

    interval: float = field(default_factory=lambda: settings.LIVE_POLL_MS / 1000)
    started_at: datetime = field(default_factory=timezone.now)
    since: datetime | None = None
    pushed: dict[int, datetime] = field(default_factory=dict)

    def collect(self) -> str:
        """Render the changes since the last call; empty when nothing changed."""
        now = timezone.now()
        since = self.since or self.started_at
        changed = list(
            Delivery.objects.filter(updated_at__gte=since - OVERLAP).order_by(
                "created_at", "id"
            )
        )
        fresh = [d for d in changed if self.pushed.get(d.pk) != d.updated_at][
            -MAX_ROWS_PER_PUSH:
        ]
        prefetch_related_objects(fresh, "attempts")
        new_ids = {
            d.pk
            for d in fresh
            if d.pk not in self.pushed and d.created_at >= since - OVERLAP
        }
        self.since = now
        for delivery in fresh:
            self.pushed[delivery.pk] = delivery.updated_at
        horizon = now - OVERLAP * 4
        self.pushed = {k: v for k, v in self.pushed.items() if v >= horizon}
        return render_push(fresh, new_ids=new_ids) if fresh else ""

    async def tick(self) -> bool:
        html = await database_sync_to_async(self.collect)()
        if not html:
            return False
        await get_channel_layer().group_send(
            FEED_GROUP, {"type": "feed.html", "html": html}
        )
        return True

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                logger.exception("live update failed")
            await asyncio.sleep(self.interval)
