"""Resend as new and delivery-condition copies keep the event's messageId format."""

import random
import re

import pytest

from sandbox import spec
from sandbox.delivery import conditions, services
from sandbox.delivery.models import Door
from tests.factories import make_delivery, make_subscription
from tests.spec.test_sources import UUID7

UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
FORMATS = {
    "analytics.js": rf"ajs-next-\d{{13}}-{UUID4}",
    "ios": UUID4.upper(),
    "node": rf"node-next-\d{{13}}-{UUID4}",
    "node-classic": rf"node-[0-9a-f]{{32}}-{UUID4}",
}


@pytest.mark.django_db
@pytest.mark.parametrize("source", FORMATS)
def test_resend_as_new_keeps_the_message_id_format(source):
    event = spec.sample_event("track", source=source, rng=random.Random(1))
    first = make_delivery(subscription=make_subscription(), event=event)
    again = services.delivery_resend(delivery=first, as_new=True)
    assert again.message_id != first.message_id
    assert re.fullmatch(FORMATS[source], again.message_id)
    assert again.payload["messageId"] == again.message_id


@pytest.mark.django_db
def test_resend_keeps_the_message_id_itself():
    first = make_delivery(subscription=make_subscription())
    again = services.delivery_resend(delivery=first, as_new=False, bypass_dedupe=True)
    assert again.message_id == first.message_id


@pytest.mark.django_db
def test_copies_under_delivery_conditions_keep_the_message_id_format():
    event = spec.sample_event("track", source="analytics.js", rng=random.Random(3))
    run = services.run_enqueue(
        target=services.Target.of(make_subscription()),
        event=event,
        door=Door.COMPOSER,
        conditions=conditions.Conditions(copies=4),
        rng=random.Random(0),
    )
    ids = [d.message_id for d in run.deliveries.order_by("pk")]
    assert ids[0] == event["messageId"]
    assert len(set(ids)) == 4
    for message_id in ids:
        assert re.fullmatch(FORMATS["analytics.js"], message_id)


@pytest.mark.django_db
def test_an_event_without_a_message_id_gets_a_uuid():
    event = {"type": "track", "event": "No Id", "userId": "u-1"}
    delivery = make_delivery(subscription=make_subscription(), event=event)
    assert re.fullmatch(UUID7, delivery.message_id)
