"""Writes for deliveries: the one way into the pipeline, claiming, and attempts."""

import os
import random
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
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
from sandbox.subscriptions.models import Subscription

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
# The command line claims its delivery for this long before its engine takes it.
ENQUEUE_CLAIM = timedelta(minutes=5)


class SpecRejected(Exception):
    """The event breaks the Spec and the user has not confirmed sending it anyway."""

    def __init__(self, problems: list[spec.Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class DeliveryRefused(Exception):
    """The event cannot be enqueued or changed (disabled subscription, final state)."""


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


SENT_STATES = [state for state in State.values if state != State.DEDUPLICATED]


def _first_with_message_id(
    target: Target, message_id: str, now: datetime
) -> dict | None:
    """The earlier delivery this one repeats, per subscription (or ad hoc URL)."""
    if not message_id or target.dedupe_window_hours is None:
        return None
    scope = (
        {"subscription": target.subscription}
        if target.subscription is not None
        else {"subscription": None, "endpoint_url": target.endpoint_url}
    )
    earlier = Delivery.objects.filter(
        message_id=message_id,
        created_at__gte=now - timedelta(hours=target.dedupe_window_hours),
        injected_duplicate=False,
        state__in=SENT_STATES,
        **scope,
    )
    return earlier.order_by("pk").values("pk", "created_at").first()


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
    the first attempt so no other engine takes it.
    """
    if target.subscription is not None and not target.subscription.enabled:
        raise DeliveryRefused(SUBSCRIPTION_DISABLED.format(name=target.name))
    now = now or timezone.now()
    normalisable = isinstance(event, dict) and not as_is
    payload = spec.normalise(event, now=now, fresh=fresh) if normalisable else event
    problems = spec.validate_event(payload)
    if problems and not allow_problems:
        raise SpecRejected(problems)
    message_id = _text(payload, "messageId")
    first = None
    if not bypass_dedupe and injected_duplicate_of is None:
        first = _first_with_message_id(target, message_id, now)
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
    if first is not None:
        delivery.state = State.DEDUPLICATED
        delivery.duplicate_of_id = first["pk"]
        delivery.next_attempt_at = None
        delivery.claimed_by, delivery.claimed_until = "", None
        delivery.reason = DEDUPLICATED.format(
            message_id=message_id,
            name=target.name,
            when=first["created_at"],
            first=first["pk"],
            window=target.dedupe_window_hours,
        )
    if injected_duplicate_of is not None:
        delivery.injected_duplicate = True
        delivery.duplicate_of = injected_duplicate_of
        delivery.reason = INJECTED_DUPLICATE.format(first=injected_duplicate_of.pk)
    delivery.save()
    transaction.on_commit(runtime.wake)
    return delivery


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
    claimed = list(
        Delivery.objects.filter(pk__in=picked, claimed_by=token).order_by("pk")
    )
    attempts = Attempt.objects.bulk_create(
        [_attempt_ahead(delivery, now) for delivery in claimed]
    )
    return [Claimed(d, a) for d, a in zip(claimed, attempts, strict=True)]


def _attempt_ahead(delivery: Delivery, now: datetime) -> Attempt:
    request = webhook.build_request(
        url=delivery.endpoint_url,
        api_key=delivery.api_key,
        custom_settings=delivery.custom_settings or {},
        event=delivery.payload,
    )
    return Attempt(
        delivery=delivery,
        number=delivery.attempt_count + 1,
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
        for delivery in Delivery.objects.filter(state__in=OPEN_STATES).exclude(
            claimed_by=""
        )
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


@dataclass(frozen=True)
class AttemptResult:
    exchange: Exchange
    verdict: webhook.Verdict
    step: retry.Step


@transaction.atomic
def attempt_record(*, claimed: Claimed, result: AttemptResult) -> Attempt:
    """Complete the attempt written ahead and move the delivery on."""
    attempt, exchange = claimed.attempt, result.exchange
    attempt.response_status = exchange.status
    attempt.response_headers = [list(pair) for pair in exchange.headers]
    attempt.response_body = exchange.body
    attempt.response_truncated = exchange.truncated
    attempt.latency_ms = exchange.latency_ms
    attempt.error_kind = exchange.error_kind
    attempt.error_message = exchange.error_message
    attempt.outcome = result.verdict.outcome
    attempt.reason = result.verdict.reason
    attempt.save()
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
        reason=result.step.reason,
        next_attempt_at=result.step.next_attempt_at,
        **measured,
    )
    if not moved:
        # The user stopped it meanwhile: keep their decision, record the numbers.
        Delivery.objects.filter(pk=claimed.delivery.pk).update(**measured)
    return attempt
