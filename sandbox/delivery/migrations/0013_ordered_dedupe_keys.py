"""Dedupe keys in messageId order (services.dedupe_key): the scope's tag and the
messageId as they are, where they fit in 64 characters; the hash otherwise, as
before. A key whose scope is gone (its subscription deleted) is let go."""

import hashlib

from django.db import migrations

BATCH = 5000


def _hashed(scope: str, message_id: str) -> str:
    return hashlib.sha256(f"{scope}\n{message_id}".encode()).hexdigest()


def _ordered(tag: str, message_id: str, scope: str) -> str:
    # The same derivation as sandbox.delivery.services.dedupe_key.
    key = f"{tag}:{message_id}"
    return key if len(key) <= 64 else _hashed(scope, message_id)


def _new_key(row) -> str | None:
    _, subscription_id, target_subscription_id, url, message_id, old = row
    for pk in {subscription_id, target_subscription_id} - {None}:
        scope = f"subscription:{pk}"
        if _hashed(scope, message_id) == old:
            return _ordered(f"s{pk}", message_id, scope)
    scope = f"url:{url}"
    if url is not None and _hashed(scope, message_id) == old:
        tag = "u" + hashlib.sha256(url.encode()).hexdigest()[:16]
        return _ordered(tag, message_id, scope)
    return None


def _old_key(row) -> str | None:
    _, _, _, url, message_id, key = row
    tag, colon, _ = key.partition(":")
    if not colon:  # hashed already
        return key
    if tag.startswith("s"):
        return _hashed(f"subscription:{tag[1:]}", message_id)
    return _hashed(f"url:{url}", message_id) if url is not None else None


def _rekey(apps, schema_editor, new_key) -> None:
    Delivery = apps.get_model("delivery", "Delivery")
    DeliveryTarget = apps.get_model("delivery", "DeliveryTarget")
    deliveries = Delivery._meta.db_table
    targets = DeliveryTarget._meta.db_table
    last = 0
    with schema_editor.connection.cursor() as cursor:
        while True:
            cursor.execute(
                f"SELECT d.id, d.subscription_id, t.subscription_id, t.endpoint_url, "
                f"d.message_id, d.dedupe_key FROM {deliveries} d "
                f"LEFT JOIN {targets} t ON t.id = d.target_id "
                "WHERE d.dedupe_key IS NOT NULL AND d.id > %s ORDER BY d.id LIMIT %s",
                [last, BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            last = rows[-1][0]
            changed = [(new, row[0]) for row in rows if (new := new_key(row)) != row[5]]
            # An ordered key has a ":", a hashed one none: none meets another.
            cursor.executemany(
                f"UPDATE {deliveries} SET dedupe_key = %s WHERE id = %s", changed
            )


def order_dedupe_keys(apps, schema_editor):
    _rekey(apps, schema_editor, _new_key)


def hash_dedupe_keys(apps, schema_editor):
    _rekey(apps, schema_editor, _old_key)


class Migration(migrations.Migration):
    dependencies = [("delivery", "0012_readiness_door")]

    operations = [
        migrations.RunPython(order_dedupe_keys, hash_dedupe_keys),
    ]
