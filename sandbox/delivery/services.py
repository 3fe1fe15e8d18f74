"""Writes for deliveries: the one way into the pipeline, and recording attempts."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from sandbox import spec
from sandbox.delivery import retry, runtime
from sandbox.delivery.models import OPEN_STATES, Attempt, Delivery, Door, State
from sandbox.delivery.transport import Exchange
from sandbox.delivery.webhook import WebhookRequest
from sandbox.subscriptions.models import Subscription

SUBSCRIPTION_DISABLED = "The subscription {name!r} is disabled; enable it to send."
SUBSCRIPTION_DELETED = "The subscription was deleted; no further attempts are made."
NO_TARGET = "Choose a subscription, or give an endpoint URL."
AD_HOC_NAME = "ad hoc: {url}"


class SpecRejected(Exception):
    """The event breaks the Spec and the user has not confirmed sending it anyway."""

    def __init__(self, problems: list[spec.Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class DeliveryRefused(Exception):
    """The event cannot be enqueued (disabled subscription, no target)."""


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
    subscription: Subscription | None = None

    @classmethod
    def of(cls, subscription: Subscription) -> "Target":
        return cls(
            name=subscription.name,
            endpoint_url=subscription.endpoint_url,
            api_key=subscription.api_key,
            custom_settings=dict(subscription.custom_settings or {}),
            timeout_seconds=subscription.timeout_seconds,
            retry_policy=getattr(subscription, "retry_policy", retry.SEGMENT),
            time_scale=getattr(subscription, "time_scale", 1.0),
            subscription=subscription,
        )


def _text(payload: object, key: str, limit: int = 200) -> str:
    value = payload.get(key) if isinstance(payload, dict) else None
    return value[:limit] if isinstance(value, str) else ""


def delivery_enqueue(
    *,
    target: Target,
    event: object,
    door: str,
    fresh: bool = False,
    as_is: bool = False,
    allow_problems: bool = False,
    resend_of: Delivery | None = None,
    claimed_by: str = "",
    now: datetime | None = None,
) -> Delivery:
    """Normalise the event as Segment does, check it, and store a due delivery.

    The engine sends it; this never talks to the network. `claimed_by` lets the
    caller (the command line) own the first attempt so no other engine takes it.
    `as_is` sends a stored payload unchanged: a true duplicate, as Segment's
    at-least-once delivery makes one.
    """
    if target.subscription is not None and not target.subscription.enabled:
        raise DeliveryRefused(SUBSCRIPTION_DISABLED.format(name=target.name))
    now = now or timezone.now()
    normalisable = isinstance(event, dict) and not as_is
    payload = spec.normalise(event, now=now, fresh=fresh) if normalisable else event
    problems = spec.validate_event(payload)
    if problems and not allow_problems:
        raise SpecRejected(problems)
    delivery = Delivery.objects.create(
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
        message_id=_text(payload, "messageId"),
        event_type=_text(payload, "type", 32),
        event_name=_text(payload, "event"),
        user_id=_text(payload, "userId"),
        anonymous_id=_text(payload, "anonymousId"),
        payload=payload,
        spec_problems=[p.message for p in problems],
        state=State.PENDING,
        next_attempt_at=now,
        claimed_by=claimed_by,
        claimed_until=now + timezone.timedelta(minutes=5) if claimed_by else None,
    )
    transaction.on_commit(runtime.wake)
    return delivery


def delivery_resend(
    *, delivery: Delivery, as_new: bool, door: str = Door.RESEND
) -> Delivery:
    """Send a stored event again: same messageId (idempotency) or as a new event."""
    if delivery.subscription is not None:
        target = Target.of(delivery.subscription)
    else:
        target = Target(
            name=delivery.subscription_name,
            endpoint_url=delivery.endpoint_url,
            api_key=delivery.api_key,
            custom_settings=delivery.custom_settings,
            timeout_seconds=delivery.timeout_seconds,
            retry_policy=delivery.retry_policy,
            time_scale=delivery.time_scale,
        )
    return delivery_enqueue(
        target=target,
        event=delivery.payload,
        door=door,
        fresh=as_new,
        as_is=not as_new,
        allow_problems=True,
        resend_of=delivery,
    )


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


def deliveries_claim(
    *, claimer: str, limit: int, lease_seconds: float, only_ids: list[int] | None = None
) -> list[Delivery]:
    """Claim due deliveries for one engine; a single UPDATE so two never share a row."""
    now = timezone.now()
    claimable = Q(state__in=OPEN_STATES, next_attempt_at__lte=now) & (
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now) | Q(claimed_by=claimer)
    )
    candidates = Delivery.objects.filter(claimable)
    if only_ids is not None:
        candidates = candidates.filter(pk__in=only_ids)
    ids = candidates.order_by("next_attempt_at", "id").values("pk")[:limit]
    token = f"{claimer}:{now.timestamp()}"
    Delivery.objects.filter(claimable, pk__in=ids).update(
        claimed_by=token,
        claimed_until=now + timezone.timedelta(seconds=lease_seconds),
    )
    claimed = list(Delivery.objects.filter(claimed_by=token))
    if claimed:
        Delivery.objects.filter(claimed_by=token).update(claimed_by=claimer)
    return claimed


@dataclass(frozen=True)
class AttemptRecord:
    started_at: datetime
    request: WebhookRequest
    exchange: Exchange
    outcome: str
    reason: str
    state: str
    next_attempt_at: datetime | None = None


@transaction.atomic
def attempt_record(*, delivery: Delivery, record: AttemptRecord) -> Attempt:
    """Store one attempt and move the delivery on, in one transaction."""
    exchange = record.exchange
    number = delivery.attempt_count + 1
    attempt = Attempt.objects.create(
        delivery=delivery,
        number=number,
        started_at=record.started_at,
        request_method=record.request.method,
        request_url=record.request.url,
        request_headers=[list(pair) for pair in record.request.headers],
        request_body=record.request.body.decode("utf-8", errors="replace"),
        response_status=exchange.status,
        response_headers=[list(pair) for pair in exchange.headers],
        response_body=exchange.body,
        response_truncated=exchange.truncated,
        latency_ms=exchange.latency_ms,
        error_kind=exchange.error_kind,
        error_message=exchange.error_message,
        outcome=record.outcome,
        reason=record.reason,
    )
    Delivery.objects.filter(pk=delivery.pk).update(
        state=record.state,
        outcome=record.outcome,
        response_status=exchange.status,
        latency_ms=exchange.latency_ms,
        reason=record.reason,
        attempt_count=number,
        next_attempt_at=record.next_attempt_at,
        claimed_by="",
        claimed_until=None,
        updated_at=timezone.now(),
    )
    return attempt
