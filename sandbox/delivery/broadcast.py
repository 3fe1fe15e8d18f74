"""Live updates: the groups pages subscribe to, what each is sent, and the watcher.

A page subscribes to what it shows: the Event Tester's feed, one delivery's pane,
one run's progress, one mock endpoint's received requests, the first page of the
history under one set of filters (a subscription's page watches its own). A push
is the same partial a reload renders, and one look coalesces every change since
the last.

Where changes come from. Code that commits a change in a server process calls
runtime.changed(ids) (a mock endpoint, mock_request_recorded) on commit, and the
watcher looks at once. Work done elsewhere (the command line, another server) is
found by the watcher's poll of the stored rows: ids and updated_at first, a read of
the updated_at index, then only the rows a page here shows; never an event payload
or an exchanged body unless an open pane shows it.

Several server processes (REDIS_URL). Each process pushes only to the pages
connected to it: its group names carry the process's own tag, and its watcher
renders only what its own pages watch. A page therefore hears of a change from
exactly one watcher, its own server's, however many servers share the channel
layer, and nothing is elected: no lease to renew or hand over, no window in which
a dead leader's pages go quiet. The price is that each server polls the table for
itself, a few index reads a second. So that a change made in one server reaches
the pages of the others at once rather than at their next poll, its watcher
announces the changed ids (never HTML) to every watcher over SIGNAL_GROUP. A
watcher remembers the version it last pushed of each row and pane, so a change it
hears of twice (an announcement and its poll) is pushed once.

The feed, the mock's list and the history are lists a page catches up with itself
when its socket (re)opens (live.js, history.js); a pane and a run's progress are
one element each, sent to a page as soon as it subscribes, because the page was
rendered a moment before.
"""

import asyncio
import contextlib
import hashlib
import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connection
from django.http import QueryDict
from django.template.loader import render_to_string
from django.utils import timezone

from sandbox.delivery import panes, runtime, selectors
from sandbox.delivery.forms import HistoryFilterForm
from sandbox.delivery.models import Delivery
from sandbox.mock.models import MockEndpoint
from sandbox.mock.selectors import mock_request_stats

logger = logging.getLogger("sandbox.live")

# What a page can subscribe to; each is also the id of the element it updates.
FEED = "delivery-feed"
DELIVERY_DETAIL = "delivery-detail"
RUN_PROGRESS = "run-progress"
MOCK_REQUESTS = "mock-requests"
HISTORY = "history-rows"
# Every watcher's announcements of the changes its process made.
SIGNAL_GROUP = "live-signals"
# This process's tag in its group names (see the module docstring).
PROCESS = uuid.uuid4().hex[:12]

ROW_TEMPLATE = "delivery/delivery_feed.html#delivery-row"
HISTORY_ROW_TEMPLATE = "delivery/delivery_history.html#history-row"
PANE_TEMPLATE = "delivery/delivery_detail.html#delivery-detail"
RUN_TEMPLATE = "tester/home.html#run-progress"
MOCK_REQUEST_TEMPLATE = "mock/mockendpoint_detail.html#mock-request"
MOCK_SUMMARY_TEMPLATE = "mock/mockendpoint_detail.html#mock-requests-summary"
# The requests a mock endpoint's page lists, newest first.
MOCK_REQUESTS_SHOWN = 100

# Rows are re-read a little into the past: a transaction may commit after a later
# one and carry an older updated_at.
OVERLAP = timedelta(seconds=2)
# A run's progress is pushed at most this often, however fast the run goes.
RUN_PROGRESS_SECONDS = 0.25
# What else a run's progress push carries, added by the apps whose doors make
# runs (a suite run's step table): each renders HTML for a run id, "" when the
# run is none of its own. Rendered with the progress, so coalesced with it.
RUN_PUSH_EXTRAS: list[Callable[[int], str]] = []
# Lists other apps keep live, rows added as they arrive (a source's events): each
# kind's renderer gives, for one watched key and the ids added, the rows' HTML as
# a reload renders them ("" for none). The app calls list_items_added on commit.
LIST_RENDERERS: dict[str, Callable[[object, list[int]], str]] = {}
# Channel layers forget a group membership after a day; the watcher renews its own.
REJOIN_SECONDS = 3600.0
# The least time between two looks of the watcher.
COALESCE_SECONDS = 0.05


@dataclass(frozen=True)
class Topic:
    """What one page watches: a kind, and for all but the feed, whose (an id, or
    for the history its filters as a query string)."""

    kind: str
    key: int | str | None = None

    @property
    def group(self) -> str:
        key = self.key
        if isinstance(key, str):
            # Group names allow few characters and at most 100 of them.
            key = hashlib.sha256(key.encode()).hexdigest()[:24]
        name = self.kind if key is None else f"{self.kind}-{key}"
        return f"{name}.{PROCESS}"


def history_topic(query_string: str) -> Topic:
    """The history's live group for these filters (a page's query string): one
    group per set of filters, whatever their order, blanks and page."""
    pairs = parse_qsl(query_string, keep_blank_values=False)
    return Topic(HISTORY, urlencode(sorted(p for p in pairs if p[0] != "before")))


class Subscribers:
    """The topics this process's pages watch: the watcher renders nothing else."""

    def __init__(self) -> None:
        self.channels: dict[Topic, set[str]] = defaultdict(set)
        self.joined: list[tuple[Topic, str]] = []

    def add(self, topic: Topic, channel: str) -> None:
        self.channels[topic].add(channel)
        self.joined.append((topic, channel))

    def discard(self, topic: Topic, channel: str) -> None:
        members = self.channels.get(topic)
        if members is not None:
            members.discard(channel)
            if not members:
                del self.channels[topic]
        self.joined = [joined for joined in self.joined if joined != (topic, channel)]

    def watched(self) -> dict[str, frozenset]:
        keys: dict[str, set] = defaultdict(set)
        for topic in self.channels:
            keys[topic.kind].add(topic.key)
        return {kind: frozenset(found) for kind, found in keys.items()}

    def take_joined(self) -> list[tuple[Topic, str]]:
        joined, self.joined = self.joined, []
        return joined


SUBSCRIBERS = Subscribers()


async def join(layer, channel: str, topic: Topic) -> None:
    """A page subscribes: it joins the topic's group and the watcher knows of it."""
    await layer.group_add(topic.group, channel)
    SUBSCRIBERS.add(topic, channel)
    runtime.subscribed()


async def leave(layer, channel: str, topic: Topic) -> None:
    SUBSCRIBERS.discard(topic, channel)
    await layer.group_discard(topic.group, channel)


def mock_request_recorded(*, endpoint_id: int, request_id: int) -> None:
    """A mock endpoint recorded a request: its open pages show it. Call on commit."""
    runtime.mock_recorded(endpoint_id=endpoint_id, request_id=request_id)


def list_items_added(*, kind: str, key: object, ids) -> None:
    """Rows were added to a list kind of LIST_RENDERERS under `key` and committed:
    its open pages show them. Safe from any thread."""
    runtime.items_added(kind=kind, key=key, ids=ids)


def render_history_rows(deliveries: list[Delivery]) -> str:
    """One websocket message: history rows as a reload renders them."""
    return "\n".join(
        render_to_string(HISTORY_ROW_TEMPLATE, {"delivery": delivery}).strip()
        for delivery in deliveries
    )


def render_rows(deliveries: list[Delivery]) -> str:
    """One websocket message: the rows as a reload renders them, newest first."""
    return "\n".join(
        render_to_string(ROW_TEMPLATE, {"delivery": delivery}).strip()
        for delivery in deliveries
    )


@dataclass(frozen=True)
class Push:
    """HTML for a topic's group, or for one newly subscribed page."""

    html: str
    group: str = ""
    channel: str = ""


@dataclass
class Look:
    """What one look of the watcher is about."""

    scan: bool
    deliveries: set[int]
    mock_requests: set[tuple[int, int]]
    watched: dict[str, frozenset]
    joined: list[tuple[Topic, str]]
    # (kind, key, id) of rows added to the lists of LIST_RENDERERS.
    items: set[tuple] = field(default_factory=set)
    # Runs whose progress changed with no delivery changing (a replay reading
    # its source before it sends).
    runs: set[int] = field(default_factory=set)

    def newcomers(self, kind: str) -> dict[int, list[str]]:
        found: dict[int, list[str]] = defaultdict(list)
        for topic, channel in self.joined:
            if topic.kind == kind:
                found[topic.key].append(channel)
        return found


@dataclass
class Watcher:
    """Pushes to this process's open pages whatever changed since its last look."""

    interval: float = field(default_factory=lambda: settings.LIVE_POLL_MS / 1000)
    run_interval: float = RUN_PROGRESS_SECONDS
    window: int = selectors.FEED_SIZE
    subscribers: Subscribers = field(default_factory=lambda: SUBSCRIBERS)
    started_at: datetime = field(default_factory=timezone.now)
    since: datetime | None = None
    # The version of each delivery last looked at, and last pushed as a feed row
    # or as a pane: a change heard of twice is pushed once.
    seen: dict[int, datetime] = field(default_factory=dict)
    pushed: dict[int, datetime] = field(default_factory=dict)
    panes: dict[int, datetime] = field(default_factory=dict)
    run_html: dict[int, str] = field(default_factory=dict)
    run_sent_at: dict[int, float] = field(default_factory=dict)
    runs_due: set[int] = field(default_factory=set)
    # Each watched history topic's filters, parsed once; None when invalid.
    history_filters: dict[str, selectors.HistoryFilters | None] = field(
        default_factory=dict
    )
    # Its own thread: behind asgiref's one shared thread for sync views, a burst
    # of sends would hold every push back until the burst is served.
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="live")
    )
    _poked: asyncio.Event | None = None
    _scan: bool = False
    _deliveries: set[int] = field(default_factory=set)
    _mock_requests: set[tuple[int, int]] = field(default_factory=set)
    _items: set[tuple] = field(default_factory=set)
    _poked_runs: set[int] = field(default_factory=set)
    # This process's own changes, to announce to the other servers' watchers.
    _announce: dict = field(default_factory=dict)

    def poke(
        self,
        deliveries=(),
        mock_requests=(),
        *,
        items=(),
        runs=(),
        scan: bool = False,
        announce: bool = True,
    ) -> None:
        """Something changed, or a page subscribed: look now. On the watcher's loop.

        Without ids, a change is found by looking at every row changed since the
        last look.
        """
        mock_requests = {tuple(pair) for pair in mock_requests}
        items = {tuple(item) for item in items}
        self._deliveries.update(deliveries)
        self._mock_requests.update(mock_requests)
        self._items.update(items)
        self._poked_runs.update(runs)
        self._scan = self._scan or scan
        if announce and (deliveries or mock_requests or items or runs or scan):
            self._announce.setdefault("deliveries", set()).update(deliveries)
            self._announce.setdefault("mock_requests", set()).update(mock_requests)
            self._announce.setdefault("items", set()).update(items)
            self._announce.setdefault("runs", set()).update(runs)
            self._announce["scan"] = self._announce.get("scan", False) or scan
        if self._poked is not None:
            self._poked.set()

    def take(self, poll: bool) -> Look:
        """What to look at now: what was poked since the last look, and by whom."""
        look = Look(
            scan=poll or self._scan,
            deliveries=self._deliveries,
            mock_requests=self._mock_requests,
            watched=self.subscribers.watched(),
            joined=self.subscribers.take_joined(),
            items=self._items,
            runs=self._poked_runs,
        )
        self._scan, self._deliveries, self._mock_requests = False, set(), set()
        self._items, self._poked_runs = set(), set()
        return look

    async def tick(self, *, poll: bool = True) -> bool:
        """One look: push what changed; True when anything was sent."""
        look = self.take(poll)
        layer = get_channel_layer()
        await self._announce_changes(layer)
        loop = asyncio.get_running_loop()
        pushes = await loop.run_in_executor(
            self.executor, self._collect_in_thread, look
        )
        for push in pushes:
            message = {"type": "live.html", "html": push.html}
            if push.channel:
                await layer.send(push.channel, message)
            else:
                await layer.group_send(push.group, message)
        return bool(pushes)

    async def _announce_changes(self, layer) -> None:
        announce, self._announce = self._announce, {}
        if not announce:
            return
        message = {
            "type": "live.changed",
            "origin": PROCESS,
            "deliveries": sorted(announce["deliveries"]),
            "mock_requests": sorted(announce["mock_requests"]),
            "items": sorted(announce["items"], key=repr),
            "runs": sorted(announce["runs"]),
            "scan": announce["scan"],
        }
        try:
            await layer.group_send(SIGNAL_GROUP, message)
        except Exception:
            # The other servers still find the change at their next poll.
            logger.exception("announcing changes to the other servers failed")

    def _collect_in_thread(self, look: Look) -> list[Push]:
        close_old_connections()
        try:
            return self.collect(look)
        finally:
            close_old_connections()

    def collect(self, look: Look) -> list[Push]:
        """Render what this look's changes and newcomers need; reads the database."""
        changed = self._changed(look)
        fresh = {pk: v for pk, v in changed.items() if self.seen.get(pk) != v}
        self.seen.update(fresh)
        pushes = []
        for section in (
            lambda: self._feed(fresh, look),
            lambda: self._panes(fresh, look),
            lambda: self._runs(fresh, look),
            lambda: self._history(fresh, look),
            lambda: self._mock_requests_pushes(look),
            lambda: self._list_pushes(look),
        ):
            # One kind of page failing to render (whatever a hostile page
            # watches) never holds back the others' pushes.
            try:
                pushes += section()
            except Exception:
                logger.exception("a live update failed; the others go on")
        self._forget(look)
        return pushes

    def _changed(self, look: Look) -> dict[int, datetime]:
        found = {}
        if look.scan:
            now = timezone.now()
            since = self.since or self.started_at
            found.update(selectors.delivery_versions_since(since=since - OVERLAP))
            self.since = now
        if look.deliveries:
            found.update(selectors.delivery_versions(ids=sorted(look.deliveries)))
        return found

    def _feed(self, fresh: dict[int, datetime], look: Look) -> list[Push]:
        fresh = {pk: v for pk, v in fresh.items() if self.pushed.get(pk) != v}
        if not fresh:
            return []
        rows = []
        if FEED in look.watched:
            floor = selectors.feed_floor(limit=self.window) or 0
            shown = [pk for pk in fresh if pk >= floor]
            if shown:
                rows = selectors.delivery_feed_rows(ids=shown)
        # Rows below the window, or with no feed open here, are on no page: they
        # count as pushed (a feed opened later catches up by itself).
        self.pushed.update(fresh)
        for delivery in rows:
            self.pushed[delivery.pk] = delivery.updated_at
        if not rows:
            return []
        return [Push(render_rows(rows), group=Topic(FEED).group)]

    def _panes(self, fresh: dict[int, datetime], look: Look) -> list[Push]:
        newcomers = look.newcomers(DELIVERY_DETAIL)
        watched = look.watched.get(DELIVERY_DETAIL, frozenset())
        wanted = {
            pk for pk in watched & fresh.keys() if self.panes.get(pk) != fresh[pk]
        }
        pushes = []
        for pk in sorted(wanted | newcomers.keys()):
            try:
                delivery = selectors.delivery_get(pk=pk)
            except Delivery.DoesNotExist:
                continue
            # Pushed HTML is the same for every page, so it carries no CSRF
            # token: its forms post through htmx, which sends the page's own token
            # (hx-headers on <body>).
            context = panes.detail_context(delivery)
            html = render_to_string(PANE_TEMPLATE, context).strip()
            if self.panes.get(pk) != delivery.updated_at:
                # News for everyone on this pane, newcomers included.
                self.panes[pk] = delivery.updated_at
                pushes.append(Push(html, group=Topic(DELIVERY_DETAIL, pk).group))
            else:
                pushes += [Push(html, channel=channel) for channel in newcomers[pk]]
        return pushes

    def _runs(self, fresh: dict[int, datetime], look: Look) -> list[Push]:
        newcomers = look.newcomers(RUN_PROGRESS)
        watched = look.watched.get(RUN_PROGRESS, frozenset())
        if watched and fresh:
            self.runs_due |= selectors.delivery_run_ids(
                ids=sorted(fresh), runs=sorted(watched)
            )
        self.runs_due |= look.runs & watched
        now = time.monotonic()
        due = {
            run_id
            for run_id in self.runs_due
            if now >= self.run_sent_at.get(run_id, -math.inf) + self.run_interval
        }
        pushes = []
        for run_id in sorted(due | newcomers.keys()):
            self.runs_due.discard(run_id)
            progress = selectors.run_progress(run_id=run_id)
            html = render_to_string(RUN_TEMPLATE, {"progress": progress}).strip()
            html += "".join(extra(run_id) for extra in RUN_PUSH_EXTRAS)
            if html != self.run_html.get(run_id):
                self.run_html[run_id], self.run_sent_at[run_id] = html, now
                pushes.append(Push(html, group=Topic(RUN_PROGRESS, run_id).group))
            else:
                pushes += [Push(html, channel=c) for c in newcomers[run_id]]
        return pushes

    def _history(self, fresh: dict[int, datetime], look: Look) -> list[Push]:
        """Each watched history page gets the changed rows of its first page, and
        of one row past it: a page pushed past its size (history.js keeps it to
        that) then knows an older page holds the rest. The first page is read as
        a reload reads it, however many rows changed."""
        keys = look.watched.get(HISTORY, frozenset())
        if not keys or not fresh:
            return []
        pushes = []
        for key in sorted(keys):
            filters = self._parsed_history_filters(key)
            if filters is None:
                continue
            first = selectors.delivery_history(
                filters=filters, limit=selectors.PAGE_SIZE + 1
            )
            rows = [row for row in first.deliveries if row.pk in fresh]
            if rows:
                html = render_history_rows(rows)
                pushes.append(Push(html, group=Topic(HISTORY, key).group))
        return pushes

    def _parsed_history_filters(self, key: str) -> selectors.HistoryFilters | None:
        if key not in self.history_filters:
            form = HistoryFilterForm(QueryDict(key))
            valid = form.is_valid()
            self.history_filters[key] = form.filters() if valid else None
        return self.history_filters[key]

    def runs_due_at(self) -> float:
        """When (time.monotonic) a run's coalesced progress is next due; inf if none."""
        return (
            min(
                (self.run_sent_at.get(run_id, -math.inf) + self.run_interval)
                for run_id in self.runs_due
            )
            if self.runs_due
            else math.inf
        )

    def _mock_requests_pushes(self, look: Look) -> list[Push]:
        watched = look.watched.get(MOCK_REQUESTS, frozenset())
        recorded: dict[int, set[int]] = defaultdict(set)
        for endpoint_id, request_id in look.mock_requests:
            if endpoint_id in watched:
                recorded[endpoint_id].add(request_id)
        pushes = []
        for endpoint_id, request_ids in sorted(recorded.items()):
            endpoint = MockEndpoint.objects.filter(pk=endpoint_id).first()
            if endpoint is None:
                continue
            new = list(
                endpoint.requests.filter(pk__in=request_ids).order_by("-id")[
                    :MOCK_REQUESTS_SHOWN
                ]
            )
            if not new:
                continue
            summary = {
                "stats": mock_request_stats(endpoint=endpoint),
                "requests_shown": MOCK_REQUESTS_SHOWN,
            }
            parts = [render_to_string(MOCK_SUMMARY_TEMPLATE, summary).strip()]
            parts += [
                render_to_string(
                    MOCK_REQUEST_TEMPLATE, {"mock_request": request}
                ).strip()
                for request in new
            ]
            pushes.append(
                Push("\n".join(parts), group=Topic(MOCK_REQUESTS, endpoint_id).group)
            )
        return pushes

    def _list_pushes(self, look: Look) -> list[Push]:
        added: dict[tuple[str, object], set[int]] = defaultdict(set)
        for kind, key, item_id in look.items:
            if kind in LIST_RENDERERS and key in look.watched.get(kind, frozenset()):
                added[(kind, key)].add(item_id)
        pushes = []
        for (kind, key), ids in added.items():
            html = LIST_RENDERERS[kind](key, sorted(ids))
            if html:
                pushes.append(Push(html, group=Topic(kind, key).group))
        return pushes

    def _forget(self, look: Look) -> None:
        horizon = timezone.now() - OVERLAP * 4
        self.seen = {k: v for k, v in self.seen.items() if v >= horizon}
        self.pushed = {k: v for k, v in self.pushed.items() if v >= horizon}
        # A pane or run nobody here watches any more starts afresh when watched.
        watched_panes = look.watched.get(DELIVERY_DETAIL, frozenset())
        self.panes = {k: v for k, v in self.panes.items() if k in watched_panes}
        watched_runs = look.watched.get(RUN_PROGRESS, frozenset())
        for kept in (self.run_html, self.run_sent_at):
            for run_id in [k for k in kept if k not in watched_runs]:
                del kept[run_id]
        self.runs_due &= watched_runs
        watched_history = look.watched.get(HISTORY, frozenset())
        for key in [k for k in self.history_filters if k not in watched_history]:
            del self.history_filters[key]

    async def run_forever(self, stop: asyncio.Event) -> None:
        self._poked = asyncio.Event()
        listener = asyncio.create_task(self._listen())
        next_poll = 0.0
        try:
            next_look = 0.0
            while not stop.is_set():
                # Changes arriving faster than this share one look: a burst of
                # sends costs a few renders a second, not one per send, and the
                # watcher takes at most a quarter of the time it runs in.
                gap = next_look - time.monotonic()
                if gap > 0:
                    await asyncio.sleep(gap)
                started = time.monotonic()
                self._poked.clear()
                poll = time.monotonic() >= next_poll
                if poll:
                    next_poll = time.monotonic() + self.interval
                try:
                    await self.tick(poll=poll)
                except Exception:
                    logger.exception("live update failed")
                took = time.monotonic() - started
                next_look = started + max(COALESCE_SECONDS, took * 4)
                wake_at = min(next_poll, self.runs_due_at())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._poked.wait(), max(0.0, wake_at - time.monotonic())
                    )
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self) -> None:
        """Hear the changes the other server processes announce."""
        layer = get_channel_layer()
        while True:
            try:
                channel = await layer.new_channel()
                rejoin = asyncio.create_task(self._stay_joined(layer, channel))
                try:
                    await self._hear(layer, channel)
                finally:
                    rejoin.cancel()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Until it hears again, this process's poll still finds the
                # other servers' changes, only later.
                logger.exception("listening to the other servers failed")
                await asyncio.sleep(1)

    async def _stay_joined(self, layer, channel: str) -> None:
        while True:
            try:
                await layer.group_add(SIGNAL_GROUP, channel)
            except Exception:
                logger.exception("joining the other servers' announcements failed")
                await asyncio.sleep(1)
                continue
            await asyncio.sleep(REJOIN_SECONDS)

    async def _hear(self, layer, channel: str) -> None:
        while True:
            message = await layer.receive(channel)
            if message.get("origin") == PROCESS:
                continue
            self.poke(
                message.get("deliveries", ()),
                message.get("mock_requests", ()),
                items=message.get("items", ()),
                runs=message.get("runs", ()),
                scan=message.get("scan", False),
                announce=False,
            )

    async def close(self) -> None:
        """Close the watcher's database connection and thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, _close_connection)
        self.executor.shutdown(wait=False)


def _close_connection() -> None:
    # Looked up here, in the watcher's thread: connections are per thread.
    connection.close()
