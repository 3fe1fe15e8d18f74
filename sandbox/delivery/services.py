"""Writes for deliveries: the one way into the pipeline, claiming, and attempts."""

import hashlib
import json
import os
import random
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Min, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from sandbox import spec
from sandbox.delivery import conditions as conditions_module
from sandbox.delivery import retry, runtime, webhook
from sandbox.delivery.models import (
    OPEN_STATES,
    Attempt,
    Delivery,
    Door,
    Outcome,
    Run,
    State,
)
from sandbox.delivery.transport import Exchange
from sandbox.display import safe_text
from sandbox.subscriptions.models import Subscription, custom_settings_problem

SUBSCRIPTION_DISABLED = "The subscription {name!r} is disabled; enable it to send."
SUBSCRIPTION_DELETED = "The subscription was deleted; no further attempts are made."
AD_HOC_NAME = "ad hoc: {url}"
DEDUPLICATED = (
    "Deduplicated: messageId {message_id!r} was already sent to {name} at "
    "{when:%Y-%m-%d %H:%M:%S} UTC (#{first}); Segment drops repeats within "
    "{window:g} h."
)
INJECTED_DUPLICATE = "A duplicate injected on purpose (same messageId as #{first})."
STOPPED = "Stopped by you after {attempts} attempt{s}; no further attempts are made."
NOT_OPEN = "Delivery #{pk} is {state}: there is nothing left to retry."
INTERRUPTED = (
    "The sandbox stopped before the endpoint answered; the endpoint may have "
    "received this attempt."
)
NOT_AN_EVENT = (
    "Not sent: an event must be a JSON object, and this is {kind}. Segment's API "
    "refuses anything else, so the sandbox cannot send it, not even anyway."
)
UNSENDABLE_EVENT = "Not sent: the event cannot travel as JSON: {reason}."
UNSENDABLE_SETTINGS = "Not sent: {problem}"
UNPREPARABLE = (
    "not sent: the sandbox could not build Segment's request from this stored "
    "event ({detail}). Delete it, or fix the event and send it again."
)
ENGINE_FAULT = (
    "not retried: the sandbox failed while making this attempt ({detail}); "
    "the endpoint may or may not have received it."
)
DELETED = "Delivery #{pk} deleted."
# The command line claims its delivery for this long before its engine takes it.
ENQUEUE_CLAIM = timedelta(minutes=5)


class SpecRejected(Exception):
    """The event breaks the Spec and the user has not confirmed sending it anyway."""

    def __init__(self, problems: list[spec.Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class DeliveryRefused(Exception):
    """The event cannot be enqueued or changed (disabled subscription, final state)."""


class EventRefused(DeliveryRefused):
    """The event (or its settings) cannot be sent at all, confirmed or not."""


@dataclass(frozen=True)
class Target:
    """Where and how to send: a stored subscription, or an ad hoc endpoint."""

    name: str
    endpoint_url: str
    api_key: str
    custom_settings: dict
    timeout_seconds: float
    retry_policy: str = retry.SEGMENT
    time_scale: float = 1.0
    # None: no deduplication.
    dedupe_window_hours: float | None = 24.0
    subscription: Subscription | None = None

    @classmethod
    def of(cls, subscription: Subscription) -> "Target":
        return cls(
            name=subscription.name,
            endpoint_url=subscription.endpoint_url,
            api_key=subscription.api_key,
            custom_settings=dict(subscription.custom_settings or {}),
            timeout_seconds=subscription.timeout_seconds,
            retry_policy=subscription.retry_policy,
            time_scale=subscription.time_scale,
            dedupe_window_hours=(
                subscription.dedupe_window_hours
                if subscription.dedupe_enabled
                else None
            ),
            subscription=subscription,
        )

    @classmethod
    def of_delivery(cls, delivery: Delivery) -> "Target":
        """The subscription as it is now, or the delivery's own snapshot."""
        if delivery.subscription is not None:
            return cls.of(delivery.subscription)
        return cls(
            name=delivery.subscription_name,
            endpoint_url=delivery.endpoint_url,
            api_key=delivery.api_key,
            custom_settings=delivery.custom_settings,
            timeout_seconds=delivery.timeout_seconds,
            retry_policy=delivery.retry_policy,
            time_scale=delivery.time_scale,
        )


def _text(payload: object, key: str, limit: int = 200) -> str:
    value = payload.get(key) if isinstance(payload, dict) else None
    return value[:limit] if isinstance(value, str) else ""


def dedupe_key(target: Target, message_id: str) -> str | None:
    """The key a messageId holds in its scope: per subscription, or per ad hoc URL."""
    if not message_id:
        return None
    scope = (
        f"subscription:{target.subscription.pk}"
        if target.subscription is not None
        else f"url:{target.endpoint_url}"
    )
    return hashlib.sha256(f"{scope}\n{message_id}".encode()).hexdigest()


def _key_holder(key: str | None) -> dict | None:
    if key is None:
        return None
    return Delivery.objects.filter(dedupe_key=key).values("pk", "created_at").first()


def _refuse_unsendable(target: Target, event: object) -> None:
    """What no confirmation can send: not an object, or not encodable as JSON."""
    if not isinstance(event, dict):
        kind = spec.validation.json_kind(event)
        raise EventRefused(NOT_AN_EVENT.format(kind=kind))
    reason = spec.value_problem(event)
    if reason is not None:
        raise EventRefused(UNSENDABLE_EVENT.format(reason=reason))
    problem = custom_settings_problem(target.custom_settings)
    if problem is not None:
        raise EventRefused(UNSENDABLE_SETTINGS.format(problem=problem))


@transaction.atomic
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
    """Normalise the event as Segment does, check it, dedupe it, store it due.

    The engine sends it; this never talks to the network. `as_is` sends a stored
    payload unchanged (a true duplicate). `claimed_by` lets the command line own
    the first attempt so no other engine takes it. The dedupe check and the insert
    are one step: the first delivery of a messageId holds a key the database keeps
    unique, so concurrent sends of one messageId dedupe exactly as sequential ones.
    """
    if target.subscription is not None and not target.subscription.enabled:
        raise DeliveryRefused(SUBSCRIPTION_DISABLED.format(name=target.name))
    _refuse_unsendable(target, event)
    now = now or timezone.now()
    payload = event if as_is else spec.normalise(event, now=now, fresh=fresh)
    problems = spec.validate_event(payload)
    if problems and not allow_problems:
        raise SpecRejected(problems)
    message_id = _text(payload, "messageId")
    delivery = Delivery(
        subscription=target.subscription,
        subscription_name=target.name[:120],
        endpoint_url=target.endpoint_url,
        api_key=target.api_key,
        custom_settings=target.custom_settings,
        timeout_seconds=target.timeout_seconds,
        retry_policy=target.retry_policy,
        time_scale=target.time_scale,
        door=door,
        resend_of=resend_of,
        run=run,
        message_id=message_id,
        event_type=_text(payload, "type", 32),
        event_name=_text(payload, "event"),
        user_id=_text(payload, "userId"),
        anonymous_id=_text(payload, "anonymousId"),
        payload=payload,
        spec_problems=[p.message for p in problems],
        state=State.PENDING,
        next_attempt_at=due_at or now,
        claimed_by=claimed_by,
        claimed_until=now + ENQUEUE_CLAIM if claimed_by else None,
    )
    if injected_duplicate_of is not None:
        delivery.injected_duplicate = True
        delivery.duplicate_of = injected_duplicate_of
        delivery.reason = INJECTED_DUPLICATE.format(first=injected_duplicate_of.pk)
        delivery.save()
    else:
        _store_deduped(delivery, target=target, now=now, bypass_dedupe=bypass_dedupe)
    transaction.on_commit(runtime.wake)
    return delivery


def _store_deduped(
    delivery: Delivery, *, target: Target, now: datetime, bypass_dedupe: bool
) -> None:
    """Save the delivery as the key's holder, or as deduplicated against it."""
    key = dedupe_key(target, delivery.message_id)
    window = target.dedupe_window_hours
    for _ in range(2):
        holder = _key_holder(key)
        current = holder is not None and (
            window is None or holder["created_at"] >= now - timedelta(hours=window)
        )
        if current and window is not None and not bypass_dedupe:
            _mark_deduplicated(delivery, holder, target=target)
            delivery.save()
            return
        try:
            with transaction.atomic():
                if key is not None and not current:
                    if holder is not None:
                        # A holder older than the window hands the key on.
                        Delivery.objects.filter(pk=holder["pk"]).update(dedupe_key=None)
                    delivery.dedupe_key = key
                delivery.save()
            return
        except IntegrityError:
            # Another send of this messageId took the key first: look again.
            delivery.pk, delivery.dedupe_key = None, None
    raise AssertionError("the dedupe key changed hands twice during one enqueue")


def _mark_deduplicated(delivery: Delivery, first: dict, *, target: Target) -> None:
    delivery.state = State.DEDUPLICATED
    delivery.duplicate_of_id = first["pk"]
    delivery.next_attempt_at = None
    delivery.claimed_by, delivery.claimed_until = "", None
    delivery.reason = DEDUPLICATED.format(
        message_id=delivery.message_id,
        name=target.name,
        when=first["created_at"],
        first=first["pk"],
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
    run = Run.objects.create(
        door=door,
        label=label,
        conditions=conditions.__dict__,
        applied=conditions_module.describe(conditions, plan),
        concurrency=conditions.concurrency,
    )
    # Created in the order the events were composed; the plan's due times decide
    # the order they go out in (shuffled, jittered).
    items = sorted(plan.items, key=lambda item: (item.duplicate, item.index))
    originals: dict[int, Delivery] = {}
    for item in items:
        due_at = now + timedelta(seconds=item.due_in_seconds)
        if item.duplicate:
            original = originals[item.index]
            delivery_enqueue(
                target=target,
                event=original.payload,
                door=door,
                as_is=True,
                allow_problems=True,
                run=run,
                due_at=due_at,
                injected_duplicate_of=original,
                now=now,
            )
            continue
        originals[item.index] = delivery_enqueue(
            target=target,
            event=event,
            door=door,
            # The first copy is the event as composed; the others are new events.
            fresh=item.index > 0,
            allow_problems=allow_problems,
            run=run,
            due_at=due_at,
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


# Claiming -----------------------------------------------------------------------


def worker_name() -> str:
    """host:pid:nonce; the host and pid let a restarted server see a dead claimer."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass(frozen=True)
class Claimed:
    delivery: Delivery
    attempt: Attempt


def _pick(
    candidates: list[tuple[int, int | None, int | None]],
    limit: int,
    in_flight_by_run: dict[int, int],
) -> list[int]:
    """Rows in due order, keeping each run within its concurrency."""
    taken = dict(in_flight_by_run)
    picked = []
    for pk, run_id, run_concurrency in candidates:
        if run_id is not None:
            if taken.get(run_id, 0) >= (run_concurrency or 1):
                continue
            taken[run_id] = taken.get(run_id, 0) + 1
        picked.append(pk)
        if len(picked) == limit:
            break
    return picked


@transaction.atomic
def deliveries_claim(
    *,
    claimer: str,
    token: str,
    limit: int,
    lease_seconds: float,
    only_ids: list[int] | None = None,
    in_flight_by_run: dict[int, int] | None = None,
) -> list[Claimed]:
    """Claim due deliveries for one engine and write their attempts ahead.

    One transaction (SQLite takes the write lock at its start), re-checking the
    claim in the UPDATE, so two engines never take the same row. Each claimed
    delivery gets its next Attempt row, request included, before anything is sent.
    """
    now = timezone.now()
    claimable = Q(state__in=OPEN_STATES, next_attempt_at__lte=now) & (
        Q(claimed_until__isnull=True) | Q(claimed_by=claimer)
    )
    candidates = Delivery.objects.filter(claimable)
    if only_ids is not None:
        candidates = candidates.filter(pk__in=only_ids)
    rows = list(
        candidates.order_by("next_attempt_at", "id").values_list(
            "pk", "run_id", "run__concurrency"
        )[: limit * 4]
    )
    picked = _pick(rows, limit, in_flight_by_run or {})
    if not picked:
        return []
    Delivery.objects.filter(claimable, pk__in=picked).update(
        claimed_by=token, claimed_until=now + timedelta(seconds=lease_seconds)
    )
    # The stored JSON comes as text and is decoded row by row below, so a row
    # whose payload cannot be read or sent ends alone instead of failing the claim.
    rows = (
        Delivery.objects.filter(pk__in=picked, claimed_by=token)
        .defer("payload", "custom_settings")
        .annotate(
            payload_text=Cast("payload", TextField()),
            settings_text=Cast("custom_settings", TextField()),
        )
        .order_by("pk")
    )
    ready: list[tuple[Delivery, Attempt]] = []
    for delivery in rows:
        try:
            ready.append((delivery, _attempt_ahead(delivery, now)))
        except Exception as error:
            _end_unpreparable(delivery, error, now)
    attempts = Attempt.objects.bulk_create([attempt for _, attempt in ready])
    return [Claimed(d, a) for (d, _), a in zip(ready, attempts, strict=True)]


def _end_unpreparable(delivery: Delivery, error: Exception, now: datetime) -> None:
    detail = _describe_fault(error)
    Delivery.objects.filter(pk=delivery.pk).update(
        state=State.FAILED,
        outcome=Outcome.RED,
        reason=UNPREPARABLE.format(detail=detail)[:500],
        next_attempt_at=None,
        claimed_by="",
        claimed_until=None,
        updated_at=now,
    )


def _describe_fault(error: BaseException) -> str:
    if isinstance(error, UnicodeError):
        return "it holds a lone UTF-16 surrogate, which is not valid Unicode"
    if isinstance(error, RecursionError):
        return "it is nested too deeply to encode"
    detail = safe_text(str(error) or type(error).__name__)
    return detail if len(detail) <= 200 else detail[:197] + "..."


def _attempt_ahead(delivery: Delivery, now: datetime) -> Attempt:
    request = webhook.build_request(
        url=delivery.endpoint_url,
        api_key=delivery.api_key,
        custom_settings=json.loads(delivery.settings_text or "{}") or {},
        event=json.loads(delivery.payload_text),
    )
    return Attempt(
        delivery=delivery,
        number=delivery.attempt_count + 1,
        due_at=delivery.next_attempt_at,
        started_at=now,
        request_method=request.method,
        request_url=request.url,
        request_headers=[list(pair) for pair in request.headers],
        request_body=request.body.decode("utf-8", errors="replace"),
        outcome="",
    )


def _is_dead_here(claimed_by: str) -> bool:
    """Whether the claimer was a process on this host that no longer runs."""
    host, _, rest = claimed_by.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@transaction.atomic
def deliveries_recover(*, now: datetime | None = None) -> int:
    """Free the claims of engines that died or overran their lease.

    An attempt they had in flight is recorded as interrupted, never sent again
    as the same attempt: its retry follows Segment's schedule (at once if late).
    """
    now = now or timezone.now()
    stale = [
        delivery
        for delivery in Delivery.objects.filter(state__in=OPEN_STATES)
        .exclude(claimed_by="")
        .defer("payload", "custom_settings", "spec_problems")
        if delivery.claimed_until < now or _is_dead_here(delivery.claimed_by)
    ]
    for delivery in stale:
        in_flight = delivery.attempts.filter(outcome="").order_by("-number").first()
        if in_flight is None:
            Delivery.objects.filter(pk=delivery.pk).update(
                claimed_by="", claimed_until=None, updated_at=now
            )
            continue
        verdict = webhook.classify_error(INTERRUPTED)
        step = retry.next_step(
            verdict=verdict,
            policy=retry.Policy(delivery.retry_policy, delivery.time_scale),
            attempts_made=in_flight.number,
            started_at=in_flight.started_at,
        )
        in_flight.outcome = Outcome.RED
        in_flight.error_kind = Attempt.ErrorKind.INTERRUPTED
        in_flight.error_message = INTERRUPTED
        in_flight.reason = INTERRUPTED
        in_flight.save()
        Delivery.objects.filter(pk=delivery.pk).update(
            state=step.state,
            outcome=Outcome.RED,
            response_status=None,
            latency_ms=None,
            reason=step.reason,
            attempt_count=in_flight.number,
            next_attempt_at=max(step.next_attempt_at, now)
            if step.next_attempt_at
            else None,
            claimed_by="",
            claimed_until=None,
            updated_at=now,
        )
    return len(stale)


def deliveries_next_due(*, after: datetime) -> datetime | None:
    """When the earliest open, unclaimed delivery due after `after` falls due (the
    engine sleeps until then, so a retry leaves on time, not at the next poll)."""
    found = Delivery.objects.filter(
        state__in=OPEN_STATES, claimed_until__isnull=True, next_attempt_at__gt=after
    ).aggregate(due=Min("next_attempt_at"))
    return found["due"]


@dataclass(frozen=True)
class AttemptResult:
    exchange: Exchange
    verdict: webhook.Verdict
    step: retry.Step


@transaction.atomic
def attempt_record(*, claimed: Claimed, result: AttemptResult) -> Attempt:
    """Complete the attempt written ahead and move the delivery on."""
    attempt, exchange = claimed.attempt, result.exchange
    # Whatever the endpoint said is stored as text any page can show.
    answered = {
        "response_status": exchange.status,
        "response_headers": [
            [safe_text(name), safe_text(value)] for name, value in exchange.headers
        ],
        "response_body": safe_text(exchange.body),
        "response_truncated": exchange.truncated,
        "latency_ms": exchange.latency_ms,
        "error_kind": exchange.error_kind,
        "error_message": safe_text(exchange.error_message)[:1000],
        "outcome": result.verdict.outcome,
        "reason": safe_text(result.verdict.reason)[:500],
    }
    for name, value in answered.items():
        setattr(attempt, name, value)
    # An update, never an insert: a delivery deleted meanwhile stays deleted.
    Attempt.objects.filter(pk=attempt.pk).update(**answered)
    now = timezone.now()
    measured = {
        "outcome": result.verdict.outcome,
        "response_status": exchange.status,
        "latency_ms": exchange.latency_ms,
        "attempt_count": attempt.number,
        "claimed_by": "",
        "claimed_until": None,
        "updated_at": now,
    }
    moved = Delivery.objects.filter(
        pk=claimed.delivery.pk, state__in=OPEN_STATES
    ).update(
        state=result.step.state,
        reason=safe_text(result.step.reason)[:500],
        next_attempt_at=result.step.next_attempt_at,
        **measured,
    )
    if not moved:
        # The user stopped it meanwhile: keep their decision, record the numbers.
        Delivery.objects.filter(pk=claimed.delivery.pk).update(**measured)
    return attempt


@transaction.atomic
def attempt_record_fault(*, claimed: Claimed, error: BaseException) -> None:
    """The engine itself failed on this attempt: end the delivery, saying so.

    Not retried, since the same fault would recur; the attempt was written ahead,
    so it may have reached the endpoint.
    """
    reason = ENGINE_FAULT.format(detail=_describe_fault(error))[:500]
    now = timezone.now()
    Attempt.objects.filter(pk=claimed.attempt.pk).update(
        outcome=Outcome.RED,
        error_kind=Attempt.ErrorKind.OTHER,
        error_message=reason[:1000],
        reason=reason,
    )
    Delivery.objects.filter(pk=claimed.delivery.pk).update(
        state=State.FAILED,
        outcome=Outcome.RED,
        reason=reason,
        attempt_count=claimed.attempt.number,
        next_attempt_at=None,
        claimed_by="",
        claimed_until=None,
        updated_at=now,
    )


@transaction.atomic
def delivery_delete(*, delivery: Delivery) -> None:
    """Remove a delivery and its attempts; an open one stops first."""
    Delivery.objects.filter(duplicate_of=delivery).update(duplicate_of=None)
    delivery.delete()
