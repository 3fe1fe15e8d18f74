"""Reads for subscriptions."""

from django.db.models import QuerySet

from sandbox.rows import row_or_none
from sandbox.subscriptions.models import Subscription


def subscription_list(*, enabled_only: bool = False) -> QuerySet[Subscription]:
    subscriptions = Subscription.objects.all()
    if enabled_only:
        subscriptions = subscriptions.filter(enabled=True)
    return subscriptions


def subscription_get(*, pk: int) -> Subscription:
    return Subscription.objects.get(pk=pk)


def subscription_get_by_name(*, name: str) -> Subscription:
    return Subscription.objects.get(name=name)


def subscription_first_enabled() -> Subscription | None:
    """The oldest enabled subscription, the one a new event goes to by default."""
    return Subscription.objects.filter(enabled=True).order_by("pk").first()


def subscription_get_or_none(*, pk: int) -> Subscription | None:
    """One subscription by id, or None: read with one plain statement
    (sandbox.rows), as the composer does on every send."""
    return row_or_none(Subscription, "id", pk)
