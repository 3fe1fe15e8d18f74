"""Writes for subscriptions: create, update, delete and demo seeding, all validated."""

from typing import Any

from django.db import transaction

from sandbox.subscriptions.models import (
    DEFAULT_DEDUPE_WINDOW_HOURS,
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
) -> Subscription:
    subscription = Subscription(
        name=name,
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
def subscription_delete(*, subscription: Subscription) -> None:
    """Delete it; its history stays, and its pending retries stop with a reason."""
    # Imported here: delivery depends on subscriptions, not the other way round.
    from sandbox.delivery.services import deliveries_stop_for_deleted_subscription

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
