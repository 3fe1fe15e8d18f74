"""Reads for deliveries: the live feed, history with filters, one delivery."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

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
)


@dataclass(frozen=True)
class HistoryFilters:
    subscription_id: int | None = None
    event_type: str = ""
    event_name: str = ""
    outcome: str = ""
    state: str = ""
    injected_duplicates: bool = False
    status: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str = ""


@dataclass(frozen=True)
class HistoryPage:
    deliveries: list[Delivery]
    next_before: int | None


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
    qs = Delivery.objects.all()
    if filters.subscription_id is not None:
        qs = qs.filter(subscription_id=filters.subscription_id)
    if filters.event_type:
        qs = qs.filter(event_type=filters.event_type)
    if filters.event_name:
        qs = qs.filter(event_name=filters.event_name)
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
    if filters.search:
        term = filters.search
        qs = qs.filter(Q(message_id=term) | Q(user_id=term) | Q(anonymous_id=term))
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
    """The deliveries matching `filters` older than `before`, newest first.

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


def delivery_history(
    *, filters: HistoryFilters, before: int | None = None, limit: int = PAGE_SIZE
) -> HistoryPage:
    """Newest first, keyset-paginated on the id (ids grow with creation time)."""
    qs = history_queryset(filters=filters, before=before)
    rows = list(qs.select_related("target").defer(*ROW_DEFERRED)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return HistoryPage(deliveries=rows, next_before=rows[-1].pk if more else None)


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
