from django.db import migrations, models


def names_of_subscriptions(apps, schema_editor):
    """Replays made before: the name of the subscription each still has."""
    Replay = apps.get_model("replay", "Replay")
    for replay in Replay.objects.filter(subscription__isnull=False).select_related(
        "subscription"
    ):
        Replay.objects.filter(pk=replay.pk).update(
            subscription_name=replay.subscription.name[:200]
        )


class Migration(migrations.Migration):
    dependencies = [
        ("replay", "0005_lane_item"),
    ]

    operations = [
        migrations.AddField(
            model_name="replay",
            name="subscription_name",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(names_of_subscriptions, migrations.RunPython.noop),
    ]
