"""Concurrent sends of one messageId: one goes out, the rest are deduplicated."""

import threading
import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from sandbox import spec
from sandbox.delivery import services
from sandbox.delivery.models import Delivery, Door, State
from tests.factories import make_subscription

pytestmark = pytest.mark.django_db(transaction=True)

SENDERS = 8


def _send_at_once(target: services.Target, event: dict) -> list[Exception]:
    """SENDERS threads, each with its own database connection, released together."""
    barrier = threading.Barrier(SENDERS)
    errors: list[Exception] = []

    def send() -> None:
        try:
            barrier.wait()
            services.delivery_enqueue(target=target, event=event, door=Door.COMPOSER)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.slow
def test_concurrent_sends_of_one_message_id_go_out_once():
    subscription = make_subscription()
    target = services.Target.of(subscription)
    for _ in range(13):
        message_id = str(uuid.uuid4())
        event = {**spec.sample_event("track"), "messageId": message_id}
        assert _send_at_once(target, event) == []
        rows = Delivery.objects.filter(message_id=message_id)
        assert rows.count() == SENDERS
        first = rows.exclude(state=State.DEDUPLICATED).get()
        assert first.dedupe_key is not None
        assert set(
            rows.filter(state=State.DEDUPLICATED).values_list(
                "duplicate_of_id", flat=True
            )
        ) == {first.pk}


def test_the_database_refuses_a_second_holder_of_a_dedupe_key():
    subscription = make_subscription()
    target = services.Target.of(subscription)
    first = services.delivery_enqueue(
        target=target, event=spec.sample_event("track"), door=Door.COMPOSER
    )
    bypass = services.delivery_enqueue(
        target=target,
        event=first.payload,
        door=Door.RESEND,
        as_is=True,
        bypass_dedupe=True,
    )
    assert bypass.state == State.PENDING
    assert bypass.dedupe_key is None
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.filter(pk=bypass.pk).update(dedupe_key=first.dedupe_key)


def test_an_expired_holder_hands_the_key_on():
    subscription = make_subscription(dedupe_window_hours=1)
    target = services.Target.of(subscription)
    event = spec.sample_event("track")
    first = services.delivery_enqueue(target=target, event=event, door=Door.COMPOSER)
    Delivery.objects.filter(pk=first.pk).update(
        created_at=first.created_at.replace(year=first.created_at.year - 1)
    )
    again = services.delivery_enqueue(
        target=target, event=first.payload, door=Door.RESEND, as_is=True
    )
    assert again.state == State.PENDING
    first.refresh_from_db()
    assert first.dedupe_key is None
    assert again.dedupe_key == services.dedupe_key(target, first.message_id)
    third = services.delivery_enqueue(
        target=target, event=first.payload, door=Door.RESEND, as_is=True
    )
    assert third.state == State.DEDUPLICATED
    assert third.duplicate_of_id == again.pk
