"""Reads for deliveries: the live feed, history with filters, one delivery."""

import math
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet

from sandbox.delivery.models import OPEN_STATES, Attempt, Delivery

FEED_SIZE = 30
PAGE_SIZE = 50

# A row (feed, history, live push) never needs the event or the exchanged bodies:
# ten 2.4 MB events in view would otherwise be read and held for every render.
ROW_DEFERRED = ("payload", "custom_settings", "spec_problems")
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
    return queryset.defer(*ROW_DEFERRED).prefetch_related(
        Prefetch("attempts", queryset=attempts)
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


def delivery_history(
    *, filters: HistoryFilters, before: int | None = None, limit: int = PAGE_SIZE
) -> HistoryPage:
    """Newest first, keyset-paginated on the id (ids grow with creation time)."""
    qs = _filtered(filters)
    if before is not None:
        qs = qs.filter(pk__lt=before)
    rows = list(qs.defer(*ROW_DEFERRED).order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return HistoryPage(deliveries=rows, next_before=rows[-1].pk if more else None)


def delivery_get(*, pk: int) -> Delivery:
    return Delivery.objects.prefetch_related("attempts").get(pk=pk)


@dataclass(frozen=True)
class Latency:
    p50: int
    p95: int
    attempts: int


LATENCY_SAMPLE = 1000


def latency_by_subscription(
    *, subscription_ids: list[int], sample: int = LATENCY_SAMPLE
) -> dict[int, Latency]:
    """p50 and p95 of each subscription's most recent attempts, in milliseconds."""
    found = {}
    for subscription_id in subscription_ids:
        values = sorted(
            Attempt.objects.filter(
                delivery__subscription_id=subscription_id, latency_ms__isnull=False
            )
            .order_by("-id")
            .values_list("latency_ms", flat=True)[:sample]
        )
        if values:
            found[subscription_id] = Latency(
                p50=_percentile(values, 0.50),
                p95=_percentile(values, 0.95),
                attempts=len(values),
            )
    return found


def _percentile(ordered: list[int], share: float) -> int:
    """Nearest-rank percentile: a value that was actually measured."""
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


async def open_deliveries_count() -> int:
    """Deliveries still pending or retrying, whoever holds them."""
    return await Delivery.objects.filter(state__in=OPEN_STATES).acount()
