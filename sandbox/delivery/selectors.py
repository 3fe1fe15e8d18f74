"""Reads for deliveries: the live feed, history with filters, one delivery."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet

from sandbox.delivery.models import OPEN_STATES, Attempt, Delivery, State

FEED_SIZE = 30
PAGE_SIZE = 50

# A row (feed, history, live push) never needs the event or the exchanged bodies:
# ten 2.4 MB events in view would otherwise be read and held for every render.
ROW_DEFERRED = (
    "payload",
    "spec_problems",
    "target__api_key",
    "target__custom_settings",
)
ATTEMPT_ROW_COLUMNS = (
    "id",
    "delivery_id",
    "number",
    "started_at",
    "latency_ms",
    "reason",
    "response_status",
    "outcome",
    "error_kind",
    # A function's attempt names the handler and version it ran here.
    "request_method",
    "request_url",
)


@dataclass(frozen=True)
class HistoryFilters:
    subscription_id: int | None = None
    event_type: str = ""
    # A part of the event name, in any case.
    event_name: str = ""
    outcome: str = ""
    state: str = ""
    injected_duplicates: bool = False
    status: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    # The start of a messageId, userId or anonymousId (case as typed).
    search: str = ""

    def matches_text(
        self, *, event_name: str, message_id: str, user_id: str, anonymous_id: str
    ) -> bool:
        """Whether a delivery with these names passes the two text filters."""
        if self.event_name and self.event_name.casefold() not in event_name.casefold():
            return False
        if self.search:
            ids = (message_id, user_id, anonymous_id)
            return any(found.startswith(self.search) for found in ids)
        return True


@dataclass(frozen=True)
class HistoryPage:
    deliveries: list[Delivery]
    next_before: int | None
    # Set when a search too broad for the indexes read a bounded run of the
    # newest rows instead and the page is not full: the lowest id it looked at.
    # The next page goes on below it.
    searched_down_to: int | None = None


def delivery_rows(queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
    """The columns a delivery row shows, with its attempts' timeline, and no more."""
    attempts = Attempt.objects.only(*ATTEMPT_ROW_COLUMNS).order_by("number")
    return (
        queryset.select_related("target")
        .defer(*ROW_DEFERRED)
        .prefetch_related(Prefetch("attempts", queryset=attempts))
    )


def delivery_feed(*, limit: int = FEED_SIZE) -> list[Delivery]:
    return list(delivery_rows(Delivery.objects.order_by("-id"))[:limit])


def feed_floor(*, limit: int = FEED_SIZE) -> int | None:
    """The oldest id the feed shows; None while it is not full."""
    ids = Delivery.objects.order_by("-id").values_list("id", flat=True)
    return next(iter(ids[limit - 1 : limit]), None)


def delivery_feed_rows(*, ids: list[int]) -> list[Delivery]:
    """These deliveries as feed rows, newest first."""
    return list(delivery_rows(Delivery.objects.filter(pk__in=ids).order_by("-id")))


# Ids grow with creation time, give or take a writer that stamped its row and then
# waited (at most the 30 s busy timeout) for the database: rows created more than
# this far apart are in id order. So a time bound is also an id bound, and every
# filter reads its own index (or the table) newest first from that id.
CREATION_ORDER_SLACK = timedelta(minutes=1)


def _filtered(filters: HistoryFilters) -> QuerySet[Delivery]:
    """Every filter but the two text searches (see _search)."""
    qs = Delivery.objects.all()
    if filters.subscription_id is not None:
        qs = qs.filter(subscription_id=filters.subscription_id)
    if filters.event_type:
        qs = qs.filter(event_type=filters.event_type)
    if filters.outcome:
        qs = qs.filter(outcome=filters.outcome)
    if filters.state:
        qs = qs.filter(state=filters.state)
    if filters.injected_duplicates:
        qs = qs.filter(injected_duplicate=True)
    if filters.status is not None:
        qs = qs.filter(response_status=filters.status)
    if filters.since is not None:
        qs = qs.filter(created_at__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(created_at__lt=filters.until)
    return qs


def _id_above(since: datetime) -> int | None:
    """An id below every delivery created at or after `since`, if there is one."""
    try:
        earlier = since - CREATION_ORDER_SLACK
    except OverflowError:  # since is the first minute of year 1
        return None
    ids = Delivery.objects.filter(created_at__lt=earlier).order_by("-created_at", "-id")
    return ids.values_list("id", flat=True).first()


def _id_below(until: datetime) -> int | None:
    """An id above every delivery created before `until`, if there is one."""
    try:
        later = until + CREATION_ORDER_SLACK
    except OverflowError:  # until is the last minute of year 9999
        return None
    ids = Delivery.objects.filter(created_at__gte=later).order_by("created_at", "id")
    return ids.values_list("id", flat=True).first()


def history_queryset(
    *, filters: HistoryFilters, before: int | None = None
) -> QuerySet[Delivery]:
    """The deliveries matching every filter but the text searches, older than
    `before`, newest first.

    A time bound is read as an id range too (see CREATION_ORDER_SLACK): with the
    created_at filter alone the database would walk the table from the newest row
    to the first match, or sort the filter's whole index by id.
    """
    qs = _filtered(filters)
    upper = before
    if filters.until is not None:
        below = _id_below(filters.until)
        if below is not None:
            upper = below if upper is None else min(upper, below)
    if upper is not None:
        qs = qs.filter(pk__lt=upper)
    if filters.since is not None:
        above = _id_above(filters.since)
        if above is not None:
            qs = qs.filter(pk__gt=above)
    return qs.order_by("-id")


# The text searches, kept on indexes at a million rows.
#
# A part of an event name, in any case, is no range of a b-tree index. But event
# names are a tracking plan's vocabulary, tens to hundreds however long the
# history: the search reads the distinct names from the event_name index, one
# seek each, matches them here (casefold, so any script's case), and filters on
# the names found. For an IN list on that index, each name's entries are already
# in id order, and SQLite stops reading each one once the page's LIMIT is full:
# on 1,000,000 rows, 21 names are read in 0.1 ms and a page of a 60,000-row name
# in 0.5 ms.
EVENT_NAMES_READ = 2000
# An id prefix is a range of each id's index. The ids of the rows in the three
# ranges are read from the indexes alone, up to this many per column, and the page
# is the newest of them that pass the other filters: one seek per id.
PREFIX_MATCHES_READ = 1000
# A search too broad for both (more distinct event names than EVENT_NAMES_READ,
# or a prefix with more matches than PREFIX_MATCHES_READ in a column) tests the
# newest rows one by one instead, at most this many per page (about 10 ms of
# reads at a million rows); a page that is not full then says how far down it
# looked, and "Older" goes on from there.
SEARCH_SCAN_ROWS = 5000
SEARCH_SCAN_FIRST_CHUNK = 200
_TEXT_COLUMNS = ("event_name", "message_id", "user_id", "anonymous_id")


@dataclass(frozen=True)
class _Search:
    """How a page answers the text filters."""

    # The event names and the ids the searches narrow the other filters to
    # (None: no such search, or one too broad to list).
    names: list[str] | None = None
    ids: list[int] | None = None
    # Nothing can match.
    empty: bool = False
    # A search too broad to list: the newest rows are tested one by one.
    scan: bool = False


def event_names(*, limit: int = EVENT_NAMES_READ) -> list[str]:
    """The distinct event names stored, in order, at most `limit` + 1 of them.

    A skip scan of the event_name index: one seek per name, however many rows.
    """
    table = connection.ops.quote_name(Delivery._meta.db_table)
    column = connection.ops.quote_name("event_name")
    sql = (
        "WITH RECURSIVE event_names(name, number) AS ("
        f" SELECT MIN({column}), 1 FROM {table}"
        " UNION ALL"
        f" SELECT (SELECT MIN({column}) FROM {table}"
        f" WHERE {column} > event_names.name), number + 1"
        " FROM event_names WHERE event_names.name IS NOT NULL AND number <= %s"
        ") SELECT name FROM event_names WHERE name IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [name for (name,) in cursor.fetchall()]


def _prefix_successor(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`, if any."""
    while prefix and prefix[-1] == "\U0010ffff":
        prefix = prefix[:-1]
    if not prefix:
        return None
    following = ord(prefix[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are never stored
        following = 0xE000
    return prefix[:-1] + chr(following)


def _starts_with(column: str, prefix: str) -> Q:
    if connection.vendor != "sqlite":
        # PostgreSQL reads LIKE 'prefix%' from Django's varchar_pattern_ops index.
        return Q(**{f"{column}__startswith": prefix})
    # SQLite's LIKE ignores ASCII case and so no BINARY index serves it; a range
    # does, and compares UTF-8 bytes, which sort as code points do.
    found = Q(**{f"{column}__gte": prefix})
    successor = _prefix_successor(prefix)
    if successor is not None:
        found &= Q(**{f"{column}__lt": successor})
    return found


def _search(filters: HistoryFilters) -> _Search:
    names = ids = None
    scan = False
    if filters.event_name:
        stored = event_names(limit=EVENT_NAMES_READ)
        if len(stored) > EVENT_NAMES_READ:
            scan = True
        else:
            needle = filters.event_name.casefold()
            names = [name for name in stored if needle in name.casefold()]
            if not names:
                return _Search(empty=True)
    if filters.search:
        found: set[int] = set()
        for column in ("message_id", "user_id", "anonymous_id"):
            matches = (
                Delivery.objects.filter(_starts_with(column, filters.search))
                .order_by()
                .values_list("id", flat=True)
            )
            column_ids = list(matches[: PREFIX_MATCHES_READ + 1])
            if len(column_ids) > PREFIX_MATCHES_READ:
                scan = True
                break
            found.update(column_ids)
        else:
            if not found:
                return _Search(empty=True)
            ids = sorted(found)
    return _Search(names=names, ids=ids, scan=scan)


def _rows(qs: QuerySet[Delivery]) -> QuerySet[Delivery]:
    return qs.select_related("target").defer(*ROW_DEFERRED)


def _scanned_page(
    filters: HistoryFilters, qs: QuerySet[Delivery], before: int | None, limit: int
) -> HistoryPage:
    """The page found by testing the rows of `qs` one by one, newest first, in
    growing chunks: a broad search that matches most rows reads little more
    than a page."""
    base = qs.values_list("id", *_TEXT_COLUMNS)
    matched: list[int] = []
    read, lowest, chunk = 0, before, SEARCH_SCAN_FIRST_CHUNK
    while len(matched) <= limit and read < SEARCH_SCAN_ROWS:
        size = min(chunk, SEARCH_SCAN_ROWS - read)
        window = list((base if lowest is None else base.filter(pk__lt=lowest))[:size])
        matched += [
            pk
            for pk, event_name, message_id, user_id, anonymous_id in window
            if filters.matches_text(
                event_name=event_name,
                message_id=message_id,
                user_id=user_id,
                anonymous_id=anonymous_id,
            )
        ]
        read += len(window)
        if len(window) < size:
            lowest = None  # the history ends here
            break
        lowest, chunk = window[-1][0], chunk * 4
    shown = matched[:limit]
    rows = list(_rows(Delivery.objects.filter(pk__in=shown).order_by("-id")))
    if len(matched) > limit:
        return HistoryPage(deliveries=rows, next_before=shown[-1])
    if lowest is not None:
        return HistoryPage(deliveries=rows, next_before=lowest, searched_down_to=lowest)
    return HistoryPage(deliveries=rows, next_before=None)


def delivery_history(
    *, filters: HistoryFilters, before: int | None = None, limit: int = PAGE_SIZE
) -> HistoryPage:
    """Newest first, keyset-paginated on the id (ids grow with creation time)."""
    search = _search(filters)
    if search.empty:
        return HistoryPage(deliveries=[], next_before=None)
    qs = history_queryset(filters=filters, before=before)
    if search.names is not None:
        qs = qs.filter(event_name__in=search.names)
    if search.ids is not None:
        qs = qs.filter(pk__in=search.ids)
    if search.scan:
        return _scanned_page(filters, qs, before, limit)
    if search.names is None and search.ids is None:
        rows = list(_rows(qs)[: limit + 1])
        more = len(rows) > limit
        ids = [row.pk for row in rows[:limit]]
        rows = rows[:limit]
    else:
        # The ids first, then their rows: under a join SQLite would sort every
        # row the names or ids match rather than stop each name at a page.
        ids = list(qs.values_list("id", flat=True)[: limit + 1])
        more = len(ids) > limit
        ids = ids[:limit]
        rows = list(_rows(Delivery.objects.filter(pk__in=ids).order_by("-id")))
    return HistoryPage(deliveries=rows, next_before=ids[-1] if more else None)


def delivery_get(*, pk: int) -> Delivery:
    return (
        Delivery.objects.select_related("target")
        .prefetch_related("attempts")
        .get(pk=pk)
    )


@dataclass(frozen=True)
class Latency:
    p50: int
    p95: int
    # Attempts with a measured latency, made for the last `deliveries` deliveries.
    attempts: int
    deliveries: int


# Latency is read from each subscription's most recent deliveries only: a bounded
# range of the (subscription, id) index, however long the history is.
LATENCY_WINDOW = 1000


def latency_by_subscription(
    *, subscription_ids: list[int], window: int = LATENCY_WINDOW
) -> dict[int, Latency]:
    """p50 and p95 in milliseconds of the attempts made for each subscription's
    last `window` deliveries."""
    found = {}
    for subscription_id in subscription_ids:
        recent = Delivery.objects.filter(subscription_id=subscription_id).order_by(
            "-id"
        )[:window]
        values = sorted(
            Attempt.objects.filter(
                delivery_id__in=recent.values("id"), latency_ms__isnull=False
            )
            .order_by()
            .values_list("latency_ms", flat=True)
        )
        if values:
            found[subscription_id] = Latency(
                p50=_percentile(values, 0.50),
                p95=_percentile(values, 0.95),
                attempts=len(values),
                deliveries=recent.count(),
            )
    return found


def _percentile(ordered: list[int], share: float) -> int:
    """Nearest-rank percentile: a value that was actually measured."""
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


async def open_deliveries_count() -> int:
    """Deliveries still pending or retrying, whoever holds them."""
    return await Delivery.objects.filter(state__in=OPEN_STATES).acount()


# The live watcher's reads (sandbox.delivery.broadcast): versions first, then only
# what an open page shows.


def delivery_versions_since(*, since: datetime) -> dict[int, datetime]:
    """id → updated_at of the deliveries changed since then.

    Without the model's default ordering SQLite answers from the updated_at index
    alone: no row is read.
    """
    changed = Delivery.objects.filter(updated_at__gte=since).order_by()
    return dict(changed.values_list("id", "updated_at"))


def delivery_versions(*, ids: list[int]) -> dict[int, datetime]:
    """id → updated_at of these deliveries (the ones still stored)."""
    found = Delivery.objects.filter(pk__in=ids).order_by()
    return dict(found.values_list("id", "updated_at"))


def delivery_run_ids(*, ids: list[int], runs: list[int]) -> set[int]:
    """Which of these runs the deliveries belong to."""
    found = Delivery.objects.filter(pk__in=ids, run_id__in=runs).order_by()
    return set(found.values_list("run_id", flat=True).distinct())


@dataclass(frozen=True)
class StateCount:
    state: str
    label: str
    number: int


@dataclass(frozen=True)
class RunProgress:
    run_id: int
    # In the order of the states, those that have deliveries only.
    counts: list[StateCount]
    total: int
    settled: int

    @property
    def by_state(self) -> dict[str, int]:
        return {count.state: count.number for count in self.counts}

    @property
    def is_settled(self) -> bool:
        """No delivery of the run is open (pending, retrying or in flight)."""
        return self.settled == self.total


def run_progress(*, run_id: int) -> RunProgress:
    """How many of a run's deliveries are in each state: one grouped count."""
    numbers = dict(
        Delivery.objects.filter(run_id=run_id)
        .order_by()
        .values_list("state")
        .annotate(number=Count("id"))
    )
    counts = [
        StateCount(state=state, label=label.lower(), number=numbers[state])
        for state, label in State.choices
        if numbers.get(state)
    ]
    total = sum(numbers.values())
    still_open = sum(numbers.get(state, 0) for state in OPEN_STATES)
    return RunProgress(
        run_id=run_id, counts=counts, total=total, settled=total - still_open
    )
