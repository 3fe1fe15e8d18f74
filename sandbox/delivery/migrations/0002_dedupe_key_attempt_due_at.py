"""One holder per dedupe key, enforced by the database; attempts keep their due time."""

import hashlib
from datetime import timedelta

from django.db import migrations, models


def dedupe_key(scope: str, message_id: str) -> str:
    # The same derivation as sandbox.delivery.services.dedupe_key.
    return hashlib.sha256(f"{scope}\n{message_id}".encode()).hexdigest()


def fill_dedupe_keys(apps, schema_editor):
    """Replay history in order: a send holds its key unless the holder is still
    inside the subscription's window, as sandbox.delivery.services decides."""
    Delivery = apps.get_model("delivery", "Delivery")
    Subscription = apps.get_model("subscriptions", "Subscription")
    windows = dict(Subscription.objects.values_list("pk", "dedupe_window_hours"))
    holders: dict[str, tuple[int, object]] = {}
    rows = (
        Delivery.objects.exclude(message_id="")
        .exclude(state="deduplicated")
        .filter(injected_duplicate=False)
        .order_by("id")
        .values_list(
            "id", "subscription_id", "endpoint_url", "message_id", "created_at"
        )
    )
    for pk, subscription_id, endpoint_url, message_id, created_at in rows.iterator():
        scope = (
            f"subscription:{subscription_id}"
            if subscription_id is not None
            else f"url:{endpoint_url}"
        )
        key = dedupe_key(scope, message_id)
        window = timedelta(hours=windows.get(subscription_id) or 24.0)
        holder = holders.get(key)
        if holder is None or created_at - holder[1] > window:
            holders[key] = (pk, created_at)
    for key, (pk, _) in holders.items():
        Delivery.objects.filter(pk=pk).update(dedupe_key=key)


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0001_initial"),
        ("subscriptions", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="dedupe_key",
            field=models.CharField(blank=True, max_length=64, null=True, unique=True),
        ),
        migrations.AddField(
            model_name="attempt",
            name="due_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(fill_dedupe_keys, migrations.RunPython.noop),
    ]
