"""Writes for subscriptions: create, update, delete and demo seeding, all validated."""

from typing import Any

from django.conf import settings
from django.db import transaction

from sandbox.subscriptions.models import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BATCH_WINDOW_SECONDS,
    DEFAULT_DEDUPE_WINDOW_HOURS,
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_SECONDS,
    EDITABLE_FIELDS,
    Subscription,
)


@transaction.atomic
def subscription_create(
    *,
    name: str,
    endpoint_url: str,
    api_key: str = "",
    custom_settings: dict[str, Any] | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    retry_policy: str = Subscription.RetryPolicy.SEGMENT,
    time_scale: float = 1.0,
    dedupe_enabled: bool = True,
    dedupe_window_hours: float = DEFAULT_DEDUPE_WINDOW_HOURS,
    enabled: bool = True,
    kind: str = Subscription.Kind.WEBHOOK,
    memory_mb: int = DEFAULT_MEMORY_MB,
    batch_size: int = DEFAULT_BATCH_SIZE,
    batch_window_seconds: float = DEFAULT_BATCH_WINDOW_SECONDS,
) -> Subscription:
    subscription = Subscription(
        name=name,
        kind=kind,
        memory_mb=memory_mb,
        batch_size=batch_size,
        batch_window_seconds=batch_window_seconds,
        endpoint_url=endpoint_url,
        api_key=api_key,
        custom_settings={} if custom_settings is None else custom_settings,
        timeout_seconds=timeout_seconds,
        retry_policy=retry_policy,
        time_scale=time_scale,
        dedupe_enabled=dedupe_enabled,
        dedupe_window_hours=dedupe_window_hours,
        enabled=enabled,
    )
    subscription.full_clean()
    subscription.save()
    return subscription


@transaction.atomic
def subscription_update(*, subscription: Subscription, **fields: Any) -> Subscription:
    unknown = fields.keys() - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"Not editable on a subscription: {', '.join(sorted(unknown))}")
    was_enabled = subscription.enabled
    for field_name, value in fields.items():
        setattr(subscription, field_name, value)
    subscription.full_clean()
    subscription.save()
    if was_enabled and not subscription.enabled:
        # Imported here: delivery depends on subscriptions, not the other way round.
        from sandbox.delivery.services import (
            deliveries_stop_for_disabled_subscription,
        )

        deliveries_stop_for_disabled_subscription(
            subscription_id=subscription.pk, name=subscription.name
        )
    return subscription


@transaction.atomic
def subscription_create_with_code(**fields: Any) -> Subscription:
    """Create it (as subscription_create); a function starts with Segment's
    boilerplate as version 1."""
    subscription = subscription_create(**fields)
    _function_code_ensure(subscription=subscription)
    return subscription


@transaction.atomic
def subscription_update_with_code(
    *, subscription: Subscription, **fields: Any
) -> Subscription:
    """Update it (as subscription_update); a webhook turned into a function starts
    with Segment's boilerplate when it has no code yet."""
    subscription_update(subscription=subscription, **fields)
    _function_code_ensure(subscription=subscription)
    return subscription


def _function_code_ensure(*, subscription: Subscription) -> None:
    """A function the page made always has code to run: the boilerplate, sending
    to the demo mock endpoint."""
    if not subscription.is_function or subscription.function_versions.exists():
        return
    # Imported here: functions depend on subscriptions, not the other way round.
    from sandbox.functions.services import boilerplate, function_version_save

    function_version_save(
        subscription=subscription,
        source=boilerplate(f"{settings.BASE_URL}/mock/demo/"),
    )


@transaction.atomic
def subscription_delete(*, subscription: Subscription) -> None:
    """Delete it; its history stays, and its pending retries stop with a reason."""
    # Imported here: delivery depends on subscriptions, not the other way round.
    from sandbox.delivery.services import deliveries_stop_for_deleted_subscription
    from sandbox.replay.services import replays_stop_for_deleted_subscription

    replays_stop_for_deleted_subscription(subscription_id=subscription.pk)
    deliveries_stop_for_deleted_subscription(subscription_id=subscription.pk)
    subscription.delete()


@transaction.atomic
def subscription_ensure(
    *,
    name: str,
    endpoint_url: str,
    api_key: str,
    custom_settings: dict[str, Any] | None = None,
) -> Subscription:
    """Create the named subscription unless it exists; an existing one is left as the
    user edited it, so seeding again never undoes their changes."""
    existing = Subscription.objects.filter(name=name).first()
    if existing is not None:
        return existing
    return subscription_create(
        name=name,
        endpoint_url=endpoint_url,
        api_key=api_key,
        custom_settings=custom_settings,
    )
