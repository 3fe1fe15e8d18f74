"""Reads for the Event Tester: what the composer starts with."""

from sandbox import spec
from sandbox.delivery.models import Delivery
from sandbox.delivery.selectors import delivery_get
from sandbox.subscriptions.selectors import subscription_first_enabled
from sandbox.tester.composer import editor_text

DEFAULT_TEMPLATE = "Order Completed"


def composer_initial(*, from_delivery: str | None = None) -> dict:
    """A ready-to-send Order Completed, or a stored event for "Edit & resend"."""
    first = subscription_first_enabled()
    initial = {
        "subscription": first.pk if first else None,
        "event_type": "track",
        "source": "analytics.js",
        "template": DEFAULT_TEMPLATE,
    }
    delivery = _stored_delivery(from_delivery)
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


def _stored_delivery(pk: str | None) -> Delivery | None:
    if not pk or not pk.isdigit():
        return None
    try:
        return delivery_get(pk=int(pk))
    except Delivery.DoesNotExist:
        return None
