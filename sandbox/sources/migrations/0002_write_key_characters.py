# The write key's characters: what SDKs can send.

import django.core.validators
from django.db import migrations, models

import sandbox.sources.models


class Migration(migrations.Migration):
    dependencies = [
        ("sources", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="source",
            name="write_key",
            field=models.CharField(
                default=sandbox.sources.models.new_write_key,
                error_messages={"unique": "Another source already has this write key."},
                max_length=200,
                unique=True,
                validators=[
                    django.core.validators.RegexValidator(
                        "\\A[A-Za-z0-9._~-]+\\Z",
                        "A write key may hold only letters, digits, '.', '_', '~' and '-' (SDKs send it in a URL and before the colon of Basic auth, where other characters break it).",
                        code="invalid_write_key",
                    )
                ],
            ),
        ),
    ]
