"""Deliveries store their event as the webhook sends it (compact UTF-8 JSON).

The column's type is unchanged: only the encoder Django writes it with. Rows
stored before are written again in that form, so each stored text is its body.
"""

import json

from django.db import migrations, models

import sandbox.delivery.webhook

CHUNK = 2000


def rewrite_payloads(apps, schema_editor) -> None:
    connection = schema_editor.connection
    encoder = sandbox.delivery.webhook.BodyEncoder()
    last = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT id, CAST(payload AS TEXT) FROM delivery_delivery "
                "WHERE id > %s ORDER BY id LIMIT %s",
                [last, CHUNK],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            last = rows[-1][0]
            changed = []
            for pk, text in rows:
                try:
                    compact = encoder.encode(json.loads(text))
                    compact.encode()
                except (ValueError, RecursionError):
                    # Left as stored: the engine ends such a row alone, saying why.
                    continue
                if compact != text:
                    changed.append((compact, pk))
            if changed:
                cursor.executemany(
                    "UPDATE delivery_delivery SET payload = %s WHERE id = %s", changed
                )


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0004_page_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="delivery",
                    name="payload",
                    field=models.JSONField(
                        encoder=sandbox.delivery.webhook.BodyEncoder
                    ),
                ),
            ],
        ),
        migrations.RunPython(rewrite_payloads, migrations.RunPython.noop),
    ]
