"""Migration 0013 gives stored dedupe keys the ordered form, and back."""

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from sandbox import spec
from sandbox.delivery import services
from sandbox.delivery.models import Delivery
from tests.factories import make_delivery, make_subscription

BEFORE = [("delivery", "0012_readiness_door")]
AFTER = [("delivery", "0013_ordered_dedupe_keys")]
URL = "http://127.0.0.1:9/hook"


def _migrate(to=None) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(to or executor.loader.graph.leaf_nodes())


def _send(target, message_id: str) -> Delivery:
    return services.delivery_enqueue(
        target=target,
        event={**spec.sample_event("track"), "messageId": message_id},
        door="composer",
        allow_problems=True,
    )


def _old(scope: str, message_id: str) -> str:
    return hashlib.sha256(f"{scope}\n{message_id}".encode()).hexdigest()


def _keys() -> dict[int, str | None]:
    return dict(Delivery.objects.values_list("pk", "dedupe_key"))


@pytest.mark.django_db(transaction=True)
def test_stored_keys_take_the_ordered_form_and_give_it_back():
    subscription = make_subscription()
    kept = make_subscription(name="Kept")
    ad_hoc = services.Target(
        name="Ad hoc",
        endpoint_url=URL,
        api_key="k",
        custom_settings={},
        timeout_seconds=5,
    )
    long_id = "m" * 90
    by_subscription = _send(services.Target.of(kept), "id-1")
    by_url = _send(ad_hoc, "id-1")
    too_long = _send(services.Target.of(kept), long_id)
    orphan = make_delivery(subscription=subscription)
    assert by_subscription.dedupe_key == f"s{kept.pk}:id-1"
    assert by_url.dedupe_key.endswith(":id-1")
    assert too_long.dedupe_key == _old(f"subscription:{kept.pk}", long_id)
    try:
        _migrate(BEFORE)
        hashed = _keys()
        assert hashed[by_subscription.pk] == _old(f"subscription:{kept.pk}", "id-1")
        assert hashed[by_url.pk] == _old(f"url:{URL}", "id-1")
        assert hashed[too_long.pk] == too_long.dedupe_key
        subscription.delete()  # its deliveries keep a key no scope can meet
        _migrate(AFTER)
        ordered = _keys()
    finally:
        _migrate()
    assert ordered[by_subscription.pk] == by_subscription.dedupe_key
    assert ordered[by_url.pk] == by_url.dedupe_key
    assert ordered[too_long.pk] == too_long.dedupe_key
    assert ordered[orphan.pk] is None
    again = _send(services.Target.of(kept), "id-1")
    assert again.state == "deduplicated"
    assert again.duplicate_of_id == by_subscription.pk
