"""Create the demo: a mock endpoint and a subscription pointing at it.

Running it again changes nothing: what exists, including the user's edits, is kept.
Exits 2 when the demo cannot be made (SANDBOX_BASE_URL is not a usable URL).
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sandbox.mock.services import mock_endpoint_ensure
from sandbox.subscriptions.models import Subscription
from sandbox.subscriptions.selectors import subscription_get_by_name
from sandbox.subscriptions.services import subscription_ensure

DEMO_SLUG = "demo"
DEMO_NAME = "Demo subscription"
DEMO_API_KEY = "demo-api-key-4242"
DEMO_SETTINGS = {"workspace": "acme-demo", "region": "us-east-1", "sendRevenue": True}

KEPT = "{name!r} already exists; kept as it is."
CREATED = "Created {name!r} → {url}"
NOT_CREATED = "The demo could not be created: {problems}"


class Command(BaseCommand):
    help = "Create the demo subscription and its mock endpoint (idempotent)."

    def handle(self, *args, **options) -> None:
        try:
            message = self._seed()
        except ValidationError as error:
            problems = " ".join(error.messages)
            raise CommandError(
                NOT_CREATED.format(problems=problems), returncode=2
            ) from None
        if options["verbosity"] > 0:
            self.stdout.write(message)

    @transaction.atomic
    def _seed(self) -> str:
        mock_endpoint_ensure(slug=DEMO_SLUG, name="Demo endpoint", api_key=DEMO_API_KEY)
        try:
            subscription_get_by_name(name=DEMO_NAME)
        except Subscription.DoesNotExist:
            url = f"{settings.BASE_URL}/mock/{DEMO_SLUG}/"
            subscription_ensure(
                name=DEMO_NAME,
                endpoint_url=url,
                api_key=DEMO_API_KEY,
                custom_settings=DEMO_SETTINGS,
            )
            return CREATED.format(name=DEMO_NAME, url=url)
        return KEPT.format(name=DEMO_NAME)
