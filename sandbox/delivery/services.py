"""Writes for deliveries: the one way into the pipeline, and what a user does to a
delivery (retry now, stop, resend, delete). The engine's side is sandbox.delivery.queue.
"""

import functools
import hashlib
import json
import random
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models.base import ModelState
from django.utils import timezone

from sandbox import spec
from sandbox.delivery import conditions as conditions_module
from sandbox.delivery import queue, runtime, webhook
from sandbox.delivery.models import OPEN_STATES, Delivery, Door, Run, State
from sandbox.delivery.runs import run_create
from sandbox.delivery.targets import Target, target_row
from sandbox.subscriptions.models import Subscription, custom_settings_problem

__all__ = ["Target"]

SUBSCRIPTION_DISABLED = "The subscription {name!r} is disabled; enable it to send."
SUBSCRIPTION_DELETED = "The subscription was deleted; no further attempts are made."
# The claim stops a disabled subscription's deliveries in the same words.
SUBSCRIPTION_DISABLED_STOPPED = queue.SUBSCRIPTION_DISABLED
AD_HOC_NAME = "ad hoc: {url}"
DEDUPLICATED = (
    "Deduplicated: messageId {message_id!r} was already sent to {name} at "
    "{when:%Y-%m-%d %H:%M:%S} UTC (#{first}); Segment drops repeats within "
    "{window:g} h."
)
INJECTED_DUPLICATE = "A duplicate injected on purpose (same messageId as #{first})."
STOPPED = "Stopped by you after {attempts} attempt{s}; no further attempts are made."
NOT_OPEN = "Delivery #{pk} is {state}: there is nothing left to retry."
NOT_AN_EVENT = (
    "Not sent: an event must be a JSON object, and this is {kind}. Segment's API "
    "refuses anything else, so the sandbox cannot send it, not even anyway."
)
UNSENDABLE_EVENT = "Not sent: the event cannot travel as JSON: {reason}."
UNSENDABLE_SETTINGS = "Not sent: {problem}"
IN_BATCH = "Event {number} of {count}: {message}"
DELETED = "Delivery #{pk} deleted."
# The command line claims its delivery for this long before its engine takes it.
ENQUEUE_CLAIM = timedelta(minutes=5)


class SpecRejected(Exception):
    """The event breaks the Spec and the user has not confirmed sending it anyway."""

    def __init__(self, problems: list[spec.Problem], *, index: int | None = None):
        super().__init__(" ".join(p.message for p in problems))
        self.problems = problems
        # Which event of a batch, counted from 0; None for a single event.
        self.index = index


class DeliveryRefused(Exception):
    """The event cannot be enqueued or changed (disabled subscription, final state)."""


class EventRefused(DeliveryRefused):
    """The event (or its settings) cannot be sent at all, confirmed or not."""


def _text(payload: object, key: str, limit: int = 200) -> str:
    value = payload.get(key) if isinstance(payload, dict) else None
    return value[:limit] if isinstance(value, str) else ""


DEDUPE_KEY_LENGTH = Delivery._meta.get_field("dedupe_key").max_length
MESSAGE_ID_KEPT = Delivery._meta.get_field("message_id").max_length


def message_id_of(delivery: Delivery) -> str:
    """The delivery's messageId whole: the column keeps its first
    MESSAGE_ID_KEPT characters (Segment allows 100), and two longer ids that
    begin alike are still two messages, deduplicated each on its own."""
    return delivery.__dict__.get("whole_message_id") or delivery.message_id


def dedupe_key(target: Target, message_id: str) -> str | None:
    """The key a messageId holds in its scope: per subscription, or per ad hoc URL.

    The scope's tag and the messageId as they are, so keys sort as messageIds
    do and a replay's time-ordered ids land in order in the unique index; a
    key that would not fit in the column is their hash (which has no ":")."""
    if not message_id:
        return None
    if target.subscription is not None:
        tag = f"s{target.subscription.pk}"
        scope = f"subscription:{target.subscription.pk}"
    else:
        tag, scope = _url_tag(target.endpoint_url), f"url:{target.endpoint_url}"
    key = f"{tag}:{message_id}"
    if len(key) <= DEDUPE_KEY_LENGTH:
        return key
    return hashlib.sha256(f"{scope}\n{message_id}".encode()).hexdigest()


@functools.lru_cache(maxsize=64)
def _url_tag(url: str) -> str:
    # Once per URL, not once per event of a replay to it.
    return "u" + hashlib.sha256(url.encode()).hexdigest()[:16]


def _event_problem(event: object) -> tuple[bytes | None, str | None]:
    """The event as the client sent it, encoded (spec.encoded_or_problem), or
    what no confirmation can send: not an object, or not encodable as JSON."""
    if not isinstance(event, dict):
        return None, NOT_AN_EVENT.format(kind=spec.validation.json_kind(event))
    encoded, reason = spec.encoded_or_problem(event)
    if reason is not None:
        return None, UNSENDABLE_EVENT.format(reason=reason)
    return encoded, None


# The payload column's text, refusing what the webhook cannot send.
_STRICT_BODY = webhook.BodyEncoder(allow_nan=False)


def _encoded(event: object, payload: object) -> tuple[str | None, int | None]:
    """The payload's stored text (its webhook body) and the size of the event
    as the client sent it, from one encoding of the payload; (None, None) when
    that cannot tell, and _event_problem must look.

    normalise() keeps the event's members and adds or replaces a few: those are
    measured alone and taken off (and any replaced member of the event measured
    and put back), so the event itself is not encoded a second time. A bulk
    door spent about a sixth of its time on that second encoding.
    """
    if not isinstance(event, dict) or not isinstance(payload, dict):
        return None, None
    try:
        text = _STRICT_BODY.encode(payload)
        size = len(text.encode("utf-8"))  # a lone surrogate raises here
        if text.count("{") + text.count("[") > spec.MAX_DEPTH:
            return None, None  # deep, perhaps too deep: encoded_or_problem walks it
        added = 0
        if payload is not event:
            for key, value in payload.items():
                if key not in event:
                    size -= spec.member_size(key, value)
                    added += 1
                elif event[key] is not value:
                    size += spec.member_size(key, event[key])
                    size -= spec.member_size(key, value)
    except (ValueError, TypeError, RecursionError):
        return None, None
    if len(payload) - added != len(event):
        return None, None  # a member taken away: not normalise()'s doing
    # The commas that joined the added members.
    size -= added if event else max(added - 1, 0)
    return text, size


def _in_batch(message: str, index: int, count: int) -> str:
    return (
        message
        if count == 1
        else IN_BATCH.format(number=index + 1, count=count, message=message)
    )


def deliveries_build(
    *,
    target: Target,
    events: list[object],
    door: str,
    now: datetime,
    run: Run | None = None,
    fresh: bool = False,
    as_is: bool = False,
    allow_problems: bool = False,
    resend_of: Delivery | None = None,
    due_at: list[datetime] | datetime | None = None,
    claimed_by: str = "",
) -> list[Delivery]:
    """deliveries_enqueue's deliveries, normalised and checked, not stored: an
    event that cannot be sent refuses them all, naming it."""
    if target.subscription is not None and not target.subscription.enabled:
        raise DeliveryRefused(SUBSCRIPTION_DISABLED.format(name=target.name))
    count = len(events)
    payloads, texts, sizes = [], [], []
    for index, event in enumerate(events):
        # A new messageId keeps the format of the event's own (its library's).
        payload = (
            event
            if as_is or not isinstance(event, dict)
            else spec.normalise(
                event,
                now=now,
                fresh=fresh,
                new_message_id=spec.message_id_like(event, now=now),
            )
        )
        text, size = _encoded(event, payload)
        if text is None:
            sent, problem = _event_problem(event)
            if problem is not None:
                raise EventRefused(_in_batch(problem, index, count))
            size = len(sent) if sent is not None else None
        payloads.append(payload)
        texts.append(text)
        sizes.append(size)
    problem = custom_settings_problem(target.custom_settings)
    if problem is not None:
        raise EventRefused(UNSENDABLE_SETTINGS.format(problem=problem))
    due_times = due_at if isinstance(due_at, list) else [due_at or now] * count
    row = target_row(target)
    deliveries = []
    for index, payload in enumerate(payloads):
        if resend_of is not None:
            # The same event again: its problems are the ones found when it was
            # first sent, measured on what the client sent (the stored event also
            # holds what Segment added on the way).
            messages = list(resend_of.spec_problems)
        else:
            problems = spec.validate_event(payload, sent_size=sizes[index])
            if problems and not allow_problems:
                raise SpecRejected(problems, index=None if count == 1 else index)
            messages = [p.message for p in problems]
        deliveries.append(
            _new_delivery(
                subscription_id=target.subscription_id,
                target_id=row.pk,
                door=door,
                resend_of_id=resend_of.pk if resend_of is not None else None,
                run_id=run.pk if run is not None else None,
                message_id=_text(payload, "messageId"),
                event_type=_text(payload, "type", 32),
                event_name=_text(payload, "event"),
                user_id=_text(payload, "userId"),
                anonymous_id=_text(payload, "anonymousId"),
                payload=payload,
                spec_problems=messages,
                state=State.PENDING,
                next_attempt_at=due_times[index],
                claimed_by=claimed_by,
                claimed_until=now + ENQUEUE_CLAIM if claimed_by else None,
                payload_text=texts[index],
            )
        )
    for delivery, payload in zip(deliveries, payloads, strict=True):
        # What a door reads next costs no query.
        _cache(delivery, "subscription", target.subscription)
        whole = payload.get("messageId") if isinstance(payload, dict) else None
        if isinstance(whole, str) and len(whole) > MESSAGE_ID_KEPT:
            delivery.__dict__["whole_message_id"] = whole
        _cache(delivery, "target", row)
        _cache(delivery, "run", run)
        _cache(delivery, "resend_of", resend_of)
    return deliveries


@transaction.atomic
def deliveries_enqueue(
    *,
    target: Target,
    events: list[object],
    door: str,
    run: Run | None = None,
    fresh: bool = False,
    as_is: bool = False,
    allow_problems: bool = False,
    bypass_dedupe: bool = False,
    resend_of: Delivery | None = None,
    due_at: list[datetime] | datetime | None = None,
    duplicates_of: list[Delivery] | None = None,
    claimed_by: str = "",
    now: datetime | None = None,
) -> list[Delivery]:
    """Normalise each event as Segment does, check it, dedupe it, store it due.

    One transaction for the whole batch, all or nothing: an event that cannot be
    sent refuses the batch, naming it. Deduplication is looked up for the whole
    batch in one query and applies inside the batch too (the first of a messageId
    holds its key, which the database keeps unique, so concurrent sends of one
    messageId dedupe exactly as sequential ones). The engine is woken once, on
    commit; this never talks to the network.

    `as_is` sends stored payloads unchanged (true duplicates). `duplicates_of`
    marks each event as a duplicate injected on purpose of that delivery.
    `claimed_by` lets the command line own the first attempt.
    """
    now = now or timezone.now()
    deliveries = deliveries_build(
        target=target,
        events=events,
        door=door,
        run=run,
        fresh=fresh,
        as_is=as_is,
        allow_problems=allow_problems,
        resend_of=resend_of,
        due_at=due_at,
        claimed_by=claimed_by,
        now=now,
    )
    if duplicates_of is not None:
        for delivery, first in zip(deliveries, duplicates_of, strict=True):
            delivery.injected_duplicate = True
            delivery.duplicate_of = first
            delivery.reason = INJECTED_DUPLICATE.format(first=first.pk)
        stored = _insert(deliveries, now)
    else:
        stored = _store_deduped(
            deliveries, target=target, now=now, bypass_dedupe=bypass_dedupe
        )
    if run is not None:
        # New deliveries open their run again: a run found empty a moment before
        # (created, then filled by a later call) was settled, and the engine
        # reads only open runs.
        Run.objects.filter(pk=run.pk, settled_at__isnull=False).update(settled_at=None)
    ids = [delivery.pk for delivery in stored]
    transaction.on_commit(runtime.wake)
    transaction.on_commit(lambda: runtime.changed(ids))
    return stored


def delivery_enqueue(
    *,
    target: Target,
    event: object,
    door: str,
    fresh: bool = False,
    as_is: bool = False,
    allow_problems: bool = False,
    bypass_dedupe: bool = False,
    resend_of: Delivery | None = None,
    run: Run | None = None,
    due_at: datetime | None = None,
    claimed_by: str = "",
    injected_duplicate_of: Delivery | None = None,
    now: datetime | None = None,
) -> Delivery:
    """One event through the bulk door (see deliveries_enqueue)."""
    [delivery] = deliveries_enqueue(
        target=target,
        events=[event],
        door=door,
        run=run,
        fresh=fresh,
        as_is=as_is,
        allow_problems=allow_problems,
        bypass_dedupe=bypass_dedupe,
        resend_of=resend_of,
        due_at=due_at,
        duplicates_of=None
        if injected_duplicate_of is None
        else [injected_duplicate_of],
        claimed_by=claimed_by,
        now=now,
    )
    return delivery


def _store_deduped(
    deliveries: list[Delivery], *, target: Target, now: datetime, bypass_dedupe: bool
) -> list[Delivery]:
    """Store each delivery as its key's holder, or as deduplicated against the
    holder (stored earlier, or earlier in this batch)."""
    as_built = [(d.next_attempt_at, d.claimed_by, d.claimed_until) for d in deliveries]
    for _ in range(2):
        try:
            with transaction.atomic():
                return _store_deduped_once(
                    deliveries, target=target, now=now, bypass_dedupe=bypass_dedupe
                )
        except IntegrityError:
            # Another send of one of these messageIds took its key first: again.
            for delivery, (due, claimer, until) in zip(
                deliveries, as_built, strict=True
            ):
                delivery.pk, delivery.dedupe_key = None, None
                delivery.duplicate_of = None
                delivery.state, delivery.reason = State.PENDING, ""
                delivery.next_attempt_at = due
                delivery.claimed_by, delivery.claimed_until = claimer, until
    raise AssertionError("a dedupe key changed hands twice during one enqueue")


def _store_deduped_once(
    deliveries: list[Delivery], *, target: Target, now: datetime, bypass_dedupe: bool
) -> list[Delivery]:
    window = target.dedupe_window_hours
    keys = [dedupe_key(target, message_id_of(delivery)) for delivery in deliveries]
    holders = _holders({key for key in keys if key is not None})
    stale, firsts, later = [], [], []
    first_in_batch: dict[str, Delivery] = {}
    for delivery, key in zip(deliveries, keys, strict=True):
        if key is None:
            firsts.append(delivery)
            continue
        holder = holders.get(key)
        current = holder is not None and (
            window is None or holder[1] >= now - timedelta(hours=window)
        )
        deduplicating = window is not None and not bypass_dedupe
        if current and deduplicating:
            _mark_deduplicated(delivery, holder[0], holder[1], target=target)
            firsts.append(delivery)
        elif key in first_in_batch:
            if deduplicating:
                later.append((delivery, first_in_batch[key]))
            else:
                firsts.append(delivery)
        else:
            first_in_batch[key] = delivery
            if not current:
                if holder is not None:
                    stale.append(holder[0])
                delivery.dedupe_key = key
            firsts.append(delivery)
    if stale:
        # Holders older than the window hand their keys on.
        Delivery.objects.filter(pk__in=stale).update(dedupe_key=None)
    _insert(firsts, now)
    for delivery, first in later:
        _mark_deduplicated(delivery, first.pk, now, target=target)
    _insert([delivery for delivery, _ in later], now)
    return deliveries


def _holders(keys: set[str]) -> dict[str, tuple[int, datetime]]:
    """Each dedupe key's holder (id, created_at), for the keys that have one.

    Straight SQL: built through the ORM, this one query cost a single-event send
    more than the rest of its enqueue (the model's ordering alone is compiled
    and thrown away)."""
    holders = {}
    found = list(keys)
    per_statement = connection.features.max_query_params
    for start in range(0, len(found), per_statement):
        chunk = found[start : start + per_statement]
        for key, pk, created_at in queue.rows(
            f"SELECT dedupe_key, id, created_at FROM {Delivery._meta.db_table}"
            f" WHERE dedupe_key IN ({', '.join(['%s'] * len(chunk))})",
            chunk,
        ):
            holders[key] = (pk, queue.aware(created_at))
    return holders


_INSERTED = (
    "subscription_id",
    "target_id",
    "door",
    "resend_of_id",
    "run_id",
    "duplicate_of_id",
    "injected_duplicate",
    "message_id",
    "dedupe_key",
    "event_type",
    "event_name",
    "user_id",
    "anonymous_id",
    "payload",
    "spec_problems",
    "state",
    "outcome",
    "reason",
    "response_status",
    "latency_ms",
    "attempt_count",
    "next_attempt_at",
    "claimed_by",
    "claimed_until",
    "created_at",
    "updated_at",
)
_JSON_COLUMNS = frozenset({"payload", "spec_problems"})
# The payload column's own encoder: the stored text is the webhook's body.
_BODY = webhook.BodyEncoder()


def forget_deleted_subscriptions(deliveries: list[Delivery]) -> None:
    """A delivery built for a subscription deleted since (a replay's answer
    that came back after it) is stored as a deleted subscription's history is:
    without it, its target row saying where it went."""
    wanted = {d.subscription_id for d in deliveries if d.subscription_id is not None}
    if not wanted:
        return
    there = set(Subscription.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    if len(there) == len(wanted):
        return
    for delivery in deliveries:
        if (
            delivery.subscription_id is not None
            and delivery.subscription_id not in there
        ):
            delivery.subscription_id = None


def _insert(deliveries: list[Delivery], now: datetime) -> list[Delivery]:
    """Store built deliveries with multi-row INSERTs, ids read back.

    What bulk_create does, without preparing every field of every row through
    the ORM: the bulk doors (a 2,500-event batch, a replay) spend most of their
    time there otherwise. JSON is encoded as the fields encode it.
    """
    if not deliveries:
        return deliveries
    adapt = queue.stamp_of
    json_mark = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    row = (
        "("
        + ", ".join(
            json_mark if column in _JSON_COLUMNS else "%s" for column in _INSERTED
        )
        + ")"
    )
    per_statement = max(1, connection.features.max_query_params // len(_INSERTED))
    stamp = adapt(now)
    table = Delivery._meta.db_table
    for start in range(0, len(deliveries), per_statement):
        chunk = deliveries[start : start + per_statement]
        params: list = []
        for d in chunk:
            params += [
                d.subscription_id,
                d.target_id,
                d.door,
                d.resend_of_id,
                d.run_id,
                d.duplicate_of_id,
                d.injected_duplicate,
                d.message_id,
                d.dedupe_key,
                d.event_type,
                d.event_name,
                d.user_id,
                d.anonymous_id,
                d.__dict__.pop("payload_text", None) or _BODY.encode(d.payload),
                json.dumps(d.spec_problems) if d.spec_problems else "[]",
                d.state,
                d.outcome,
                d.reason,
                d.response_status,
                d.latency_ms,
                d.attempt_count,
                adapt(d.next_attempt_at),
                d.claimed_by,
                adapt(d.claimed_until),
                stamp,
                stamp,
            ]
        inserted = queue.rows(
            f"INSERT INTO {table} ({', '.join(_INSERTED)}) VALUES "
            + ", ".join(row for _ in chunk)
            + " RETURNING id",
            params,
        )
        # Ids grow in the order the rows were inserted.
        ids = sorted(pk for (pk,) in inserted)
        for delivery, pk in zip(chunk, ids, strict=True):
            delivery.pk = pk
            delivery.created_at = delivery.updated_at = now
            delivery._state.adding = False
            delivery._state.db = connection.alias
    return deliveries


# Every column's default; none is mutable (payload and spec_problems are given).
_DEFAULTS = {
    field.attname: field.get_default()
    for field in Delivery._meta.concrete_fields
    if field.attname not in {"payload", "spec_problems"}
}


def _new_delivery(**values) -> Delivery:
    """A Delivery built straight from its column values, as Model.__init__ would
    leave it (every concrete field set, no relation loaded yet): the bulk doors
    build thousands, and __init__ (its signals and a setattr per field) costs
    several times more. Nothing in the sandbox listens to Delivery's init
    signals."""
    delivery = Delivery.__new__(Delivery)
    delivery.__dict__.update(_DEFAULTS)
    delivery.__dict__.update(values)
    delivery._state = ModelState()
    return delivery


def _cache(delivery: Delivery, relation: str, value) -> None:
    Delivery._meta.get_field(relation).set_cached_value(delivery, value)


def _mark_deduplicated(
    delivery: Delivery, first_pk: int, first_at: datetime, *, target: Target
) -> None:
    delivery.state = State.DEDUPLICATED
    delivery.duplicate_of_id = first_pk
    delivery.next_attempt_at = None
    delivery.claimed_by, delivery.claimed_until = "", None
    delivery.reason = DEDUPLICATED.format(
        message_id=delivery.message_id,
        name=target.name,
        when=first_at,
        first=first_pk,
        window=target.dedupe_window_hours,
    )


@transaction.atomic
def run_enqueue(
    *,
    target: Target,
    event: object,
    door: str,
    conditions: conditions_module.Conditions,
    allow_problems: bool = False,
    label: str = "",
    rng: random.Random | None = None,
) -> Run:
    """Send an event as `copies` events (fresh messageIds) under delivery conditions.

    All or nothing: a Spec problem in the event refuses the whole run.
    """
    now = timezone.now()
    plan = conditions_module.plan(conditions.copies, conditions, rng=rng)
    run = run_create(
        door=door,
        label=label,
        conditions=conditions.__dict__,
        applied=conditions_module.describe(conditions, plan),
        concurrency=conditions.concurrency,
    )
    # Created in the order the events were composed; the plan's due times decide
    # the order they go out in (shuffled, jittered).
    originals = sorted(
        (item for item in plan.items if not item.duplicate), key=lambda i: i.index
    )
    due = {
        (item.index, item.duplicate): now + timedelta(seconds=item.due_in_seconds)
        for item in plan.items
    }
    stored: list[Delivery] = []
    # The first copy is the event as composed; the others are new events.
    for fresh, items in ((False, originals[:1]), (True, originals[1:])):
        if items:
            stored += deliveries_enqueue(
                target=target,
                events=[event] * len(items),
                door=door,
                fresh=fresh,
                allow_problems=allow_problems,
                run=run,
                due_at=[due[(item.index, False)] for item in items],
                now=now,
            )
    by_index = {item.index: d for item, d in zip(originals, stored, strict=True)}
    duplicates = sorted(
        (item for item in plan.items if item.duplicate), key=lambda i: i.index
    )
    if duplicates:
        deliveries_enqueue(
            target=target,
            events=[by_index[item.index].payload for item in duplicates],
            door=door,
            as_is=True,
            allow_problems=True,
            run=run,
            due_at=[due[(item.index, True)] for item in duplicates],
            duplicates_of=[by_index[item.index] for item in duplicates],
            now=now,
        )
    return run


def delivery_send(
    *,
    target: Target,
    event: object,
    door: str,
    conditions: conditions_module.Conditions,
    allow_problems: bool = False,
) -> tuple[Delivery, Run | None]:
    """One event, or a run of copies when delivery conditions are asked for."""
    if conditions == conditions_module.Conditions():
        delivery = delivery_enqueue(
            target=target, event=event, door=door, allow_problems=allow_problems
        )
        return delivery, None
    run = run_enqueue(
        target=target,
        event=event,
        door=door,
        conditions=conditions,
        allow_problems=allow_problems,
    )
    return run.deliveries.order_by("pk").first(), run


def delivery_resend(
    *,
    delivery: Delivery,
    as_new: bool,
    bypass_dedupe: bool = False,
    door: str = Door.RESEND,
) -> Delivery:
    """Send a stored event again: the same messageId (idempotency) or as new."""
    return delivery_enqueue(
        target=Target.of_delivery(delivery),
        event=delivery.payload,
        door=door,
        fresh=as_new,
        as_is=not as_new,
        allow_problems=True,
        bypass_dedupe=bypass_dedupe,
        resend_of=delivery,
    )


def _open_delivery(delivery: Delivery) -> None:
    if delivery.state not in OPEN_STATES:
        raise DeliveryRefused(
            NOT_OPEN.format(pk=delivery.pk, state=delivery.get_state_display().lower())
        )


def delivery_retry_now(*, delivery: Delivery) -> Delivery:
    """Bring the next attempt forward to now."""
    _open_delivery(delivery)
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk, state__in=OPEN_STATES).update(
        next_attempt_at=now, updated_at=now
    )
    transaction.on_commit(runtime.wake)
    delivery.refresh_from_db()
    return delivery


def delivery_stop_retrying(*, delivery: Delivery) -> Delivery:
    """End an open delivery as failed; an attempt already in flight still lands."""
    _open_delivery(delivery)
    attempts = delivery.attempt_count
    Delivery.objects.filter(pk=delivery.pk, state__in=OPEN_STATES).update(
        state=State.FAILED,
        reason=STOPPED.format(attempts=attempts, s="" if attempts == 1 else "s"),
        next_attempt_at=None,
        updated_at=timezone.now(),
    )
    delivery.refresh_from_db()
    return delivery


def deliveries_stop_for_deleted_subscription(*, subscription_id: int) -> int:
    """Open deliveries of a subscription being deleted end as failed, saying why."""
    return Delivery.objects.filter(
        subscription_id=subscription_id, state__in=OPEN_STATES
    ).update(
        state=State.FAILED,
        reason=SUBSCRIPTION_DELETED,
        next_attempt_at=None,
        claimed_by="",
        claimed_until=None,
        updated_at=timezone.now(),
    )


def deliveries_stop_for_disabled_subscription(
    *, subscription_id: int, name: str
) -> int:
    """A disabled subscription's open deliveries stop now, saying why (a claim
    that races with this stops them the same way)."""
    stopped = Delivery.objects.filter(
        subscription_id=subscription_id, state__in=OPEN_STATES, claimed_until=None
    ).update(
        state=State.FAILED,
        reason=SUBSCRIPTION_DISABLED_STOPPED.format(name=name),
        next_attempt_at=None,
        updated_at=timezone.now(),
    )
    transaction.on_commit(lambda: runtime.changed())
    return stopped


@transaction.atomic
def delivery_delete(*, delivery: Delivery) -> None:
    """Remove a delivery and its attempts; an open one stops first."""
    Delivery.objects.filter(duplicate_of=delivery).update(duplicate_of=None)
    delivery.delete()
