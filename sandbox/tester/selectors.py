"""Reads for the Event Tester: what the composer starts with."""

from sandbox import spec
from sandbox.converters import id_from
from sandbox.delivery.models import Delivery
from sandbox.delivery.selectors import delivery_get
from sandbox.subscriptions.selectors import subscription_first_enabled
from sandbox.tester.composer import editor_text, event_selects

DEFAULT_TEMPLATE = "Order Completed"


def composer_initial(
    *, delivery: Delivery | None = None, event: dict | None = None
) -> dict:
    """A ready-to-send Order Completed, a stored event for "Edit & resend", or an
    event a source received ("Load event from source")."""
    first = subscription_first_enabled()
    initial = {
        "subscription": first.pk if first else None,
        "event_type": "track",
        "source": "analytics.js",
        "template": DEFAULT_TEMPLATE,
    }
    if delivery is not None:
        # The selects show the stored event's own type, source and name.
        shown = event_selects(delivery.payload)
        initial.update(
            payload=editor_text(delivery.payload),
            event_type=shown["event_type"] or delivery.event_type or "track",
            template=shown["template"] or "",
        )
        if shown["source"]:
            initial["source"] = shown["source"]
        if delivery.subscription_id:
            initial["subscription"] = delivery.subscription_id
    elif event is not None:
        shown = event_selects(event)
        initial.update(
            payload=editor_text(event),
            event_type=shown["event_type"] or "track",
            template=shown["template"] or "",
        )
        if shown["source"]:
            initial["source"] = shown["source"]
    else:
        initial["payload"] = editor_text(
            spec.sample_event("track", template=DEFAULT_TEMPLATE)
        )
    return initial


def delivery_to_edit(*, pk: str | None) -> Delivery | None:
    """The stored delivery "Edit & resend" names, if there is one."""
    number = id_from(pk)
    if number is None:
        return None
    try:
        return delivery_get(pk=number)
    except Delivery.DoesNotExist:
        return None
