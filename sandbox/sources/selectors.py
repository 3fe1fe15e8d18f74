"""Reads for sources: the sources, and the events their write keys brought."""

from django.db.models import CharField, Func, QuerySet

from sandbox.delivery.models import Delivery
from sandbox.sources.models import IngestedEvent, Source

# How many events a source's debugger shows at once.
EVENTS_SHOWN = 100


def source_list() -> QuerySet[Source]:
    """Every source with its connected subscriptions, by name."""
    return Source.objects.prefetch_related("subscriptions").order_by("name")


def source_get(*, pk: int) -> Source:
    return Source.objects.get(pk=pk)


def source_get_by_name(*, name: str) -> Source:
    return Source.objects.get(name=name)


def source_get_by_write_key(*, write_key: str) -> Source:
    return Source.objects.get(write_key=write_key)


def ingested_event_list(
    *,
    source: Source | None,
    limit: int = EVENTS_SHOWN,
    before_id: int | None = None,
    status: str | None = None,
) -> list[IngestedEvent]:
    """A source's ingested events, newest first (source None: the events whose
    write key no source has, and requests refused before a key was read).
    Payloads are left out; ingested_event_get reads one with its deliveries."""
    events = IngestedEvent.objects.filter(source=source).defer("payload")
    if before_id is not None:
        events = events.filter(pk__lt=before_id)
    if status is not None:
        events = events.filter(status=status)
    return list(events.order_by("-id")[:limit])


def ingested_event_get(*, pk: int) -> IngestedEvent:
    """One ingested event, its source read with it."""
    return IngestedEvent.objects.select_related("source").get(pk=pk)


def ingested_event_deliveries(*, event: IngestedEvent) -> list[Delivery]:
    """The deliveries an ingested event produced, one per subscription, oldest
    first (a delivery deleted from history is missing here)."""
    ids = list(event.delivery_links.values_list("delivery_id", flat=True))
    return list(
        Delivery.objects.filter(pk__in=ids).select_related("target").order_by("pk")
    )


def ingested_event_latest(*, source: Source) -> IngestedEvent | None:
    """The newest accepted event of a source (the composer loads one to edit)."""
    return (
        IngestedEvent.objects.filter(
            source=source, status=IngestedEvent.Status.ACCEPTED
        )
        .order_by("-id")
        .first()
    )


def ingested_events_by_ids(
    *, source_id: int | None, ids: list[int]
) -> list[IngestedEvent]:
    """These events of one source (None: of no source), newest first, without
    their payloads: the debugger's rows."""
    return list(
        IngestedEvent.objects.filter(source_id=source_id, pk__in=ids)
        .defer("payload")
        .order_by("-id")[:EVENTS_SHOWN]
    )


def source_last_event(*, source: Source) -> IngestedEvent | None:
    """The newest event a source's write key brought, accepted or dropped."""
    return (
        IngestedEvent.objects.filter(source=source)
        .defer("payload")
        .order_by("-id")
        .first()
    )


def ingested_event_recent(*, limit: int = 20) -> list[IngestedEvent]:
    """The newest events of every source that hold an event object, accepted
    or dropped: what the composer can load."""
    return list(
        IngestedEvent.objects.annotate(shape=_JsonType("payload"))
        .filter(shape="object")
        .select_related("source")
        .defer("payload")
        .order_by("-id")[:limit]
    )


class _JsonType(Func):
    """The JSON type of a column's value ("object", "array", ...), in SQL."""

    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="json_type", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="jsonb_typeof", **extra)
