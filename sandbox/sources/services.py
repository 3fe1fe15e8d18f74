"""Writes for sources: create and update them, store tracking API requests, and
expand stored requests into ingested events and deliveries (the pipeline's
bulk door)."""

import json
import logging
import os
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from sandbox import spec
from sandbox.delivery import queue
from sandbox.delivery.models import Door
from sandbox.delivery.services import (
    DeliveryRefused,
    SpecRejected,
    Target,
    deliveries_enqueue,
)
from sandbox.display import mask_secret
from sandbox.sources import broadcast, spool, tracking
from sandbox.sources.models import IngestedDelivery, IngestedEvent, Source
from sandbox.subscriptions.models import Subscription

logger = logging.getLogger("sandbox.sources")

UNKNOWN_WRITE_KEY = (
    "Unknown write key {masked}: no source has it. Segment answers 200 and "
    "drops the event."
)
DUPLICATE_MESSAGE_ID = (
    "Duplicate messageId {message_id!r}: already received on this source at "
    "{when:%Y-%m-%d %H:%M:%S} UTC; Segment drops repeats within {window:g} h."
)
NOT_FORWARDED = "Not forwarded to {name!r}: {reason}"
NO_SUBSCRIPTION = "No enabled subscription is connected to this source."
NOT_EXPANDED = "The sandbox could not read this request's events ({error})."
EMPTY_NAME = "A source needs a name."
WRITE_KEY_BLANK = "A write key cannot be blank."
# Stored requests expanded in one transaction, up to about this many events
# (a single request is never split: its events are enqueued together).
EXPAND_EVENTS = 1_000


# --- sources ------------------------------------------------------------------


@transaction.atomic
def source_save(
    *,
    name: str,
    subscriptions: Iterable[Subscription],
    write_key: str | None = None,
) -> tuple[Source, bool]:
    """Create the named source, or update the existing one (its write key only
    when one is given); it is connected to exactly these subscriptions.
    Returns (source, created)."""
    if not name.strip():
        raise ValidationError({"name": EMPTY_NAME})
    if write_key is not None and not write_key.strip():
        raise ValidationError({"write_key": WRITE_KEY_BLANK})
    source = Source.objects.filter(name=name).first()
    created = source is None
    if created:
        source = Source(name=name)
    if write_key is not None:
        source.write_key = write_key
    source.full_clean()
    source.save()
    source.subscriptions.set(list(subscriptions))
    return source, created


@transaction.atomic
def source_ensure(
    *, name: str, write_key: str, subscriptions: Iterable[Subscription]
) -> Source:
    """Create the named source unless it exists (the demo seed): an existing one
    is left as the user made it."""
    existing = Source.objects.filter(name=name).first()
    if existing is not None:
        return existing
    source, _ = source_save(name=name, subscriptions=subscriptions, write_key=write_key)
    return source


@transaction.atomic
def source_update(
    *,
    source: Source,
    name: str,
    subscriptions: Iterable[Subscription],
    write_key: str | None = None,
) -> Source:
    """Rename a source, give it a new write key (when one is given) and connect
    it to exactly these subscriptions; its ingested events stay its own."""
    if not name.strip():
        raise ValidationError({"name": EMPTY_NAME})
    if write_key is not None and not write_key.strip():
        raise ValidationError({"write_key": WRITE_KEY_BLANK})
    source.name = name
    if write_key is not None:
        source.write_key = write_key
    source.full_clean()
    source.save()
    source.subscriptions.set(list(subscriptions))
    return source


def source_delete(*, source: Source) -> None:
    """Delete a source and its ingested events; their deliveries stay in history."""
    source.delete()


# --- the door's writes ----------------------------------------------------------


@dataclass(frozen=True)
class ArrivedRequest:
    """One tracking API request, as the door stores it."""

    endpoint: str
    write_key: str
    body: str
    refusal: str
    client_ip: str
    user_agent: str
    received_at: datetime

    def row(self) -> tuple:
        return (
            self.endpoint,
            self.write_key[:200],
            self.body,
            self.refusal[:500],
            self.client_ip[:64],
            self.user_agent[:500],
            self.received_at.isoformat(),
        )


def ingest_requests_store(*, requests: list[ArrivedRequest]) -> None:
    """Store arrived requests in the spool, in one transaction (the door's group
    commit); the answer to each request waits for this commit."""
    if requests:
        spool.append(_spool(), [request.row() for request in requests])


def ingest_spool_prepare() -> None:
    """Open (and if new, create) the spool, numbered after the database's last
    request number; before the door stores anything."""
    _spool()


def ingest_requests_waiting() -> int:
    """Stored requests not yet expanded."""
    return spool.waiting(_spool())


def ingest_requests_lag() -> float | None:
    """Seconds the oldest unexpanded request has waited, or None."""
    oldest = spool.oldest_waiting(_spool())
    if oldest is None:
        return None
    return (timezone.now() - datetime.fromisoformat(oldest)).total_seconds()


def _spool():
    return spool.connection(first_id=_last_request_number)


def _last_request_number() -> int:
    # A new spool numbers its requests after every number events already keep.
    last = IngestedEvent.objects.aggregate(last=Max("request_number"))["last"]
    return last or 0


# --- expansion -------------------------------------------------------------------

# How long an expansion holds the requests it claimed; one that dies lets them go.
CLAIM_SECONDS = 300.0
# Requests claimed at once.
CLAIM_REQUESTS = 200
_OWNER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class _Planned:
    """One event of a stored request, on its way to becoming an IngestedEvent."""

    request: spool.SpooledRequest
    received_at: datetime
    source: Source | None
    status: str
    reason: str = ""
    payload: object = None
    event_id: int | None = None
    deliveries: list[int] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)


def ingest_requests_expand(*, max_events: int = EXPAND_EVENTS) -> int:
    """Expand the oldest stored requests (up to about max_events events) into
    ingested events and deliveries, in one transaction; returns how many
    requests were taken (0: none waiting).

    Reading, enriching and checking happen before the transaction; inside it
    duplicates are looked up, events stored and deliveries enqueued through the
    pipeline's bulk door. An event the pipeline refuses is recorded with its
    reason; the others go on. The requests leave the spool after the commit;
    a request whose events are already stored (the process died in between)
    only leaves it. On an error the requests are given back, and it is raised.
    """
    db = _spool()
    claimed = _claim(db, limit=CLAIM_REQUESTS)
    if not claimed:
        return 0
    try:
        return _expand(db, claimed, max_events=max_events)
    except BaseException:
        spool.release(db, [r.id for r in claimed])
        raise


def ingest_requests_expand_pass(*, max_events: int = EXPAND_EVENTS) -> int:
    """One expansion, where one request cannot hold up the others: when a group
    fails, the oldest request is expanded alone, and when it fails alone it is
    recorded as dropped with the error and leaves the spool. Returns how many
    requests were taken (0: none waiting)."""
    try:
        return ingest_requests_expand(max_events=max_events)
    except Exception:
        logger.exception("expanding stored tracking API requests failed")
    db = _spool()
    claimed = _claim(db, limit=1)
    if not claimed:
        return 0
    try:
        return _expand(db, claimed, max_events=1)
    except Exception as error:
        logger.exception("tracking API request %s was dropped", claimed[0].id)
        _give_up(claimed[0], error)
        spool.remove(db, [claimed[0].id])
        return 1


def _claim(db, *, limit: int) -> list[spool.SpooledRequest]:
    return spool.claim(
        db,
        owner=f"{_OWNER}:{threading.get_ident()}",
        limit=limit,
        lease_seconds=CLAIM_SECONDS,
    )


def _expand(db, claimed: list[spool.SpooledRequest], *, max_events: int) -> int:
    done = set(
        IngestedEvent.objects.filter(
            request_number__in=[r.id for r in claimed]
        ).values_list("request_number", flat=True)
    )
    spool.remove(db, sorted(done))
    chosen: list[spool.SpooledRequest] = []
    plans: list[_Planned] = []
    waiting = [r for r in claimed if r.id not in done]
    sources = _sources_by_key({r.write_key for r in waiting})
    for request in waiting:
        planned = _plan(request, sources.get(request.write_key))
        if chosen and len(plans) + len(planned) > max_events:
            break
        chosen.append(request)
        plans += planned
    spool.release(db, [r.id for r in waiting[len(chosen) :]])
    if chosen:
        with transaction.atomic():
            _drop_duplicates(plans)
            _note_unconnected(plans)
            _store_events(plans)
            _forward(plans)
            _store_links(plans)
            stored = [(p.source.pk if p.source else None, p.event_id) for p in plans]
            # Live updates only: a failure there must not touch the stored events.
            transaction.on_commit(lambda: broadcast.events_stored(stored), robust=True)
        spool.remove(db, [r.id for r in chosen])
    return len(done) + len(chosen)


@transaction.atomic
def _give_up(request: spool.SpooledRequest, error: Exception) -> None:
    try:
        received_at = datetime.fromisoformat(request.received_at)
    except (TypeError, ValueError):
        received_at = timezone.now()
    IngestedEvent.objects.create(
        source=Source.objects.filter(write_key=request.write_key).first(),
        write_key=request.write_key,
        endpoint=request.endpoint,
        request_number=request.id,
        status=IngestedEvent.Status.DROPPED,
        reason=NOT_EXPANDED.format(error=f"{type(error).__name__}: {error}")[:500],
        payload=request.body[: tracking.REFUSED_BODY_PREVIEW],
        client_ip=request.client_ip,
        received_at=received_at,
    )


def _sources_by_key(keys: set[str]) -> dict[str, Source]:
    found = Source.objects.filter(write_key__in=[k for k in keys if k])
    return {
        source.write_key: source
        for source in found.prefetch_related("subscriptions").order_by("pk")
    }


def _plan(request: spool.SpooledRequest, source: Source | None) -> list[_Planned]:
    received_at = datetime.fromisoformat(request.received_at)

    def dropped(reason: str, payload: object = None) -> _Planned:
        return _Planned(
            request, received_at, source, IngestedEvent.Status.DROPPED, reason, payload
        )

    if request.refusal:
        # Refused at the door (answered 400): one row says why.
        return [dropped(request.refusal, request.body)]
    body, error = tracking.parse_body(request.body)
    if error is not None:
        return [dropped(error.message, request.body[: tracking.REFUSED_BODY_PREVIEW])]
    items, shared = tracking.events_of(body, endpoint=request.endpoint)
    if len(items) > tracking.MAX_BATCH_EVENTS:
        # Answered 200 at the door, as Segment answers; every event is dropped.
        reason = tracking.TOO_MANY_EVENTS.format(count=len(items))
        return [dropped(reason, _arrived(item, request)) for item in items]
    if source is None:
        reason = UNKNOWN_WRITE_KEY.format(masked=mask_secret(request.write_key))
        return [dropped(reason, _arrived(item, request)) for item in items]
    plans = []
    for item in items:
        problem = tracking.item_problem(item, endpoint=request.endpoint)
        if problem is not None:
            plans.append(dropped(problem, _arrived(item, request)))
            continue
        event = tracking.prepared(
            item,
            endpoint=request.endpoint,
            shared=shared,
            client_ip=request.client_ip,
        )
        enriched = tracking.enrich(
            event, received_at=received_at, project_id=source.project_id
        )
        problems = spec.validate_event(enriched)
        if problems:
            plans.append(dropped(" ".join(p.message for p in problems), enriched))
            continue
        plans.append(
            _Planned(
                request,
                received_at,
                source,
                IngestedEvent.Status.ACCEPTED,
                payload=enriched,
            )
        )
    return plans


def _arrived(item: object, request: spool.SpooledRequest) -> object:
    return tracking.as_arrived(item, endpoint=request.endpoint)


def _message_id(plan: _Planned) -> str:
    value = plan.payload.get("messageId") if isinstance(plan.payload, dict) else None
    return value if isinstance(value, str) else ""


def _drop_duplicates(plans: list[_Planned]) -> None:
    """Segment dedupes on messageId per source (the partner FAQ's reading),
    within the source's window of each event's arrival: one query for the
    batch, and repeats inside it count too."""
    accepted = [p for p in plans if p.status == IngestedEvent.Status.ACCEPTED]
    by_source: dict[int, list[_Planned]] = {}
    for plan in accepted:
        by_source.setdefault(plan.source.pk, []).append(plan)
    for source_plans in by_source.values():
        source = source_plans[0].source
        window = timedelta(hours=source.dedupe_window_hours)
        earliest = min(p.received_at for p in source_plans)
        # The latest accepted arrival of each messageId: the window slides.
        seen = dict(
            IngestedEvent.objects.filter(
                source=source,
                status=IngestedEvent.Status.ACCEPTED,
                message_id__in={_message_id(p) for p in source_plans},
                received_at__gte=earliest - window,
            )
            .order_by("received_at")
            .values_list("message_id", "received_at")
        )
        for plan in source_plans:
            message_id = _message_id(plan)
            last = seen.get(message_id)
            if last is not None and last >= plan.received_at - window:
                plan.status = IngestedEvent.Status.DROPPED
                plan.reason = DUPLICATE_MESSAGE_ID.format(
                    message_id=message_id,
                    when=last,
                    window=source.dedupe_window_hours,
                )
            else:
                seen[message_id] = plan.received_at


def _text(payload: object, key: str, limit: int = 200) -> str:
    value = payload.get(key) if isinstance(payload, dict) else None
    return value[:limit] if isinstance(value, str) else ""


_EVENT_COLUMNS = (
    "source_id",
    "write_key",
    "endpoint",
    "request_number",
    "status",
    "reason",
    "message_id",
    "event_type",
    "event_name",
    "user_id",
    "anonymous_id",
    "library",
    "client_ip",
    "payload",
    "received_at",
    "created_at",
)


def _store_events(plans: list[_Planned]) -> None:
    """Multi-row INSERTs, ids read back: what bulk_create does, without
    preparing every field of every row through the ORM (it cost more than
    enqueueing the deliveries)."""
    adapt = queue.stamp_of
    now = adapt(timezone.now())
    rows = []
    for plan in plans:
        payload = plan.payload
        rows.append(
            [
                plan.source.pk if plan.source is not None else None,
                plan.request.write_key,
                plan.request.endpoint,
                plan.request.id,
                plan.status,
                plan.reason[:500],
                _text(payload, "messageId"),
                _text(payload, "type", 32) or tracking.path_type(plan.request.endpoint),
                _text(payload, "event") or _text(payload, "name"),
                _text(payload, "userId"),
                _text(payload, "anonymousId"),
                tracking.library_name(payload),
                plan.request.client_ip,
                None if payload is None else json.dumps(payload, ensure_ascii=False),
                adapt(plan.received_at),
                now,
            ]
        )
    ids = _insert(
        IngestedEvent._meta.db_table, _EVENT_COLUMNS, rows, json_column="payload"
    )
    for plan, pk in zip(plans, ids, strict=True):
        plan.event_id = pk


def _insert(
    table: str, columns: tuple[str, ...], rows: list[list], *, json_column: str = ""
) -> list[int]:
    """Insert rows in statements as large as the database takes; their ids in
    the order given (ids grow in the order rows are inserted)."""
    mark = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    row = "(" + ", ".join(mark if c == json_column else "%s" for c in columns) + ")"
    per_statement = max(1, connection.features.max_query_params // len(columns))
    ids: list[int] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                + ", ".join(row for _ in chunk)
                + " RETURNING id",
                [value for values in chunk for value in values],
            )
            ids += sorted(pk for (pk,) in cursor.fetchall())
    return ids


def _note_unconnected(plans: list[_Planned]) -> None:
    for plan in plans:
        if plan.status == IngestedEvent.Status.ACCEPTED and not any(
            s.enabled for s in plan.source.subscriptions.all()
        ):
            plan.reason = NO_SUBSCRIPTION


def _forward(plans: list[_Planned]) -> None:
    """Every accepted event to each connected, enabled subscription, through the
    bulk door: one call per subscription for the whole group."""
    by_subscription: dict[int, tuple[Subscription, list[_Planned]]] = {}
    for plan in plans:
        if plan.status != IngestedEvent.Status.ACCEPTED:
            continue
        subscriptions = [s for s in plan.source.subscriptions.all() if s.enabled]
        for subscription in subscriptions:
            by_subscription.setdefault(subscription.pk, (subscription, []))[1].append(
                plan
            )
    # One moment for the whole group: its deliveries are enqueued together.
    now = timezone.now()
    for subscription, group in by_subscription.values():
        _enqueue(subscription, group, now=now)
    for plan in plans:
        if plan.refusals:
            plan.reason = " ".join(plan.refusals)[:500]
            if not plan.deliveries:
                plan.status = IngestedEvent.Status.DROPPED
            IngestedEvent.objects.filter(pk=plan.event_id).update(
                status=plan.status, reason=plan.reason
            )


def _enqueue(subscription: Subscription, group: list[_Planned], *, now) -> None:
    target = Target.of(subscription)
    try:
        with transaction.atomic():
            deliveries = deliveries_enqueue(
                target=target,
                events=[plan.payload for plan in group],
                door=Door.SOURCE,
                as_is=True,
                now=now,
            )
    except (SpecRejected, DeliveryRefused):
        # One event (or the subscription) is refused: each alone, so the rest go.
        for plan in group:
            try:
                with transaction.atomic():
                    [delivery] = deliveries_enqueue(
                        target=target,
                        events=[plan.payload],
                        door=Door.SOURCE,
                        as_is=True,
                        now=now,
                    )
            except (SpecRejected, DeliveryRefused) as refusal:
                plan.refusals.append(
                    NOT_FORWARDED.format(name=subscription.name, reason=refusal)
                )
            else:
                plan.deliveries.append(delivery.pk)
        return
    for plan, delivery in zip(group, deliveries, strict=True):
        plan.deliveries.append(delivery.pk)


def _store_links(plans: list[_Planned]) -> None:
    _insert(
        IngestedDelivery._meta.db_table,
        ("event_id", "delivery_id"),
        [
            [plan.event_id, delivery_id]
            for plan in plans
            for delivery_id in plan.deliveries
        ],
    )
