"""Create the demo: a mock endpoint and a subscription pointing at it.

Running it again changes nothing: what exists, including the user's edits, is kept.
"""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from sandbox.mock.services import mock_endpoint_ensure
from sandbox.subscriptions.models import Subscription
from sandbox.subscriptions.services import subscription_create

DEMO_SLUG = "demo"
DEMO_NAME = "Demo subscription"
DEMO_API_KEY = "demo-api-key-4242"
DEMO_SETTINGS = {"workspace": "acme-demo", "region": "us-east-1", "sendRevenue": True}


class Command(BaseCommand):
    help = "Create the demo subscription and its mock endpoint (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        mock_endpoint_ensure(slug=DEMO_SLUG, name="Demo endpoint", api_key=DEMO_API_KEY)
        if Subscription.objects.filter(name=DEMO_NAME).exists():
            message = f"{DEMO_NAME!r} already exists; kept as it is."
        else:
            subscription_create(
                name=DEMO_NAME,
                endpoint_url=f"{settings.BASE_URL}/mock/{DEMO_SLUG}/",
                api_key=DEMO_API_KEY,
                custom_settings=DEMO_SETTINGS,
            )
            message = f"Created {DEMO_NAME!r} → {settings.BASE_URL}/mock/{DEMO_SLUG}/"
        if options["verbosity"] > 0:
            self.stdout.write(message)
