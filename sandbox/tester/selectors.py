"""Reads for the Event Tester: what the composer starts with."""

from sandbox import spec
from sandbox.delivery.models import Delivery
from sandbox.subscriptions.models import Subscription
from sandbox.tester.composer import editor_text

DEFAULT_TEMPLATE = "Order Completed"


def composer_initial(*, from_delivery: str | None = None) -> dict:
    """A ready-to-send Order Completed, or a stored event for "Edit & resend"."""
    first = Subscription.objects.filter(enabled=True).order_by("pk").first()
    initial = {
        "subscription": first.pk if first else None,
        "event_type": "track",
        "source": "analytics.js",
        "template": DEFAULT_TEMPLATE,
    }
    delivery = None
    if from_delivery and from_delivery.isdigit():
        delivery = Delivery.objects.filter(pk=int(from_delivery)).first()
    if delivery is not None:
        initial.update(
            payload=editor_text(delivery.payload),
            event_type=delivery.event_type or "track",
            template="",
        )
        if delivery.subscription_id:
            initial["subscription"] = delivery.subscription_id
    else:
        initial["payload"] = editor_text(
            spec.sample_event("track", template=DEFAULT_TEMPLATE)
        )
    return initial
