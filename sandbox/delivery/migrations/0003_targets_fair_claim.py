"""Targets are rows; attempts keep their headers, the event body is stored once;
runs know when they settle, and the claim reads due rows per run from an index."""

import hashlib
import json

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

TARGET_FIELDS = (
    "subscription_id",
    "subscription_name",
    "endpoint_url",
    "api_key",
    "custom_settings",
    "timeout_seconds",
    "retry_policy",
    "time_scale",
)


def content_key(
    kind, subscription_id, name, url, api_key, settings, timeout, policy, scale
):
    # The same derivation as sandbox.delivery.targets.content_key.
    content = [
        kind,
        subscription_id,
        name,
        url,
        api_key,
        settings,
        timeout,
        policy,
        scale,
    ]
    raw = json.dumps(content, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def fill_targets(apps, schema_editor):
    """One target row per distinct copy the deliveries held; attempts point at
    their delivery's."""
    Delivery = apps.get_model("delivery", "Delivery")
    DeliveryTarget = apps.get_model("delivery", "DeliveryTarget")
    Attempt = apps.get_model("delivery", "Attempt")
    Run = apps.get_model("delivery", "Run")
    targets = {}
    for row in Delivery.objects.order_by("id").values("id", *TARGET_FIELDS).iterator():
        values = [row[name] for name in TARGET_FIELDS]
        key = content_key("webhook", *values)
        if key not in targets:
            target, _ = DeliveryTarget.objects.get_or_create(
                content_key=key,
                defaults={
                    "kind": "webhook",
                    "subscription_id": row["subscription_id"],
                    "name": row["subscription_name"][:120],
                    "endpoint_url": row["endpoint_url"],
                    "api_key": row["api_key"],
                    "custom_settings": row["custom_settings"],
                    "timeout_seconds": row["timeout_seconds"],
                    "retry_policy": row["retry_policy"],
                    "time_scale": row["time_scale"],
                },
            )
            targets[key] = target.pk
        Delivery.objects.filter(pk=row["id"]).update(target_id=targets[key])
    for delivery_id, target_id in Delivery.objects.values_list("id", "target_id"):
        Attempt.objects.filter(delivery_id=delivery_id).update(target_id=target_id)
    open_runs = Delivery.objects.filter(
        state__in=("pending", "retrying"), run_id__isnull=False
    ).values("run_id")
    Run.objects.exclude(pk__in=open_runs).update(settled_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0002_dedupe_key_attempt_due_at"),
        ("subscriptions", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="DeliveryTarget",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("webhook", "Webhook")],
                        default="webhook",
                        max_length=16,
                    ),
                ),
                ("name", models.CharField(max_length=120)),
                ("endpoint_url", models.CharField(max_length=2000)),
                ("api_key", models.CharField(blank=True, max_length=500)),
                ("custom_settings", models.JSONField(blank=True, default=dict)),
                ("timeout_seconds", models.FloatField(default=5.0)),
                ("retry_policy", models.CharField(default="segment", max_length=16)),
                ("time_scale", models.FloatField(default=1.0)),
                ("content_key", models.CharField(max_length=64, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.AddField(
            model_name="attempt",
            name="exchanges",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="run",
            name="settled_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("settled_at__isnull", True)),
                fields=["id"],
                name="run_open",
            ),
        ),
        migrations.AddField(
            model_name="deliverytarget",
            name="subscription",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="targets",
                to="subscriptions.subscription",
            ),
        ),
        migrations.AddField(
            model_name="attempt",
            name="target",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="attempts",
                to="delivery.deliverytarget",
            ),
        ),
        migrations.AddField(
            model_name="delivery",
            name="target",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="deliveries",
                to="delivery.deliverytarget",
            ),
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                fields=["run", "next_attempt_at", "id"], name="delivery_due_by_run"
            ),
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("claimed_until__isnull", False)),
                fields=["run"],
                name="delivery_run_in_flight",
            ),
        ),
        migrations.RunPython(fill_targets, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="delivery",
            name="target",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="deliveries",
                to="delivery.deliverytarget",
            ),
        ),
        migrations.AlterField(
            model_name="attempt",
            name="target",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="attempts",
                to="delivery.deliverytarget",
            ),
        ),
        migrations.RemoveField(
            model_name="attempt",
            name="request_body",
        ),
        migrations.RemoveField(
            model_name="delivery",
            name="api_key",
        ),
        migrations.RemoveField(
            model_name="delivery",
            name="custom_settings",
        ),
        migrations.RemoveField(
            model_name="delivery",
            name="endpoint_url",
        ),
        migrations.RemoveField(
            model_name="delivery",
            name="retry_policy",
        ),
        migrations.RemoveField(
            model_name="delivery",
            name="subscription_name",
        ),
        migrations.RemoveField(
            model_name="delivery",
            name="time_scale",
        ),
        migrations.RemoveField(
            model_name="delivery",
            name="timeout_seconds",
        ),
    ]
