"""Create the demo: a mock endpoint, a subscription pointing at it, and a source
(write key DEMO_WRITE_KEY, shown in the README) connected to the subscription.

Running it again keeps what exists, including the user's edits, with one
exception: while the demo subscription points at the sandbox's own demo mock
endpoint, it follows the sandbox to wherever it is served now (`make run
PORT=8001` after `make run`), so its first send still reaches the mock. Pointed
anywhere else, it is left alone. Exits 2 when the demo cannot be made
(SANDBOX_BASE_URL is not a usable URL).
"""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sandbox.mock.services import mock_endpoint_ensure
from sandbox.sources.services import source_ensure
from sandbox.subscriptions.models import Subscription
from sandbox.subscriptions.selectors import subscription_get_by_name
from sandbox.subscriptions.services import subscription_ensure, subscription_update

DEMO_SLUG = "demo"
DEMO_NAME = "Demo subscription"
DEMO_API_KEY = "demo-api-key-4242"
DEMO_SETTINGS = {"workspace": "acme-demo", "region": "us-east-1", "sendRevenue": True}
DEMO_SOURCE_NAME = "Demo source"
# Fixed, so the README can show it: point an SDK at the sandbox with it.
DEMO_WRITE_KEY = "demo-write-key-4242"

KEPT = "{name!r} already exists; kept as it is."
CREATED = "Created {name!r} → {url}"
MOVED = "{name!r} now points at the sandbox where it is served: {old} → {url}"
NOT_CREATED = "The demo could not be created: {problems}"
SOURCE_READY = "{name!r}: write key {write_key}"


class Command(BaseCommand):
    help = (
        "Create the demo subscription, its mock endpoint and the demo source "
        "(idempotent)."
    )

    def handle(self, *args, **options) -> None:
        try:
            source_message, message = self._seed()
        except ValidationError as error:
            problems = " ".join(error.messages)
            raise CommandError(
                NOT_CREATED.format(problems=problems), returncode=2
            ) from None
        if options["verbosity"] > 0:
            self.stdout.write(source_message)
            self.stdout.write(message)

    @transaction.atomic
    def _seed(self) -> tuple[str, str]:
        message = self._seed_subscription()
        subscription = subscription_get_by_name(name=DEMO_NAME)
        source = source_ensure(
            name=DEMO_SOURCE_NAME,
            write_key=DEMO_WRITE_KEY,
            subscriptions=[subscription],
        )
        source_message = SOURCE_READY.format(
            name=source.name, write_key=source.write_key
        )
        return source_message, message

    def _seed_subscription(self) -> str:
        mock_endpoint_ensure(slug=DEMO_SLUG, name="Demo endpoint", api_key=DEMO_API_KEY)
        url = f"{settings.BASE_URL}/mock/{DEMO_SLUG}/"
        try:
            subscription = subscription_get_by_name(name=DEMO_NAME)
        except Subscription.DoesNotExist:
            subscription_ensure(
                name=DEMO_NAME,
                endpoint_url=url,
                api_key=DEMO_API_KEY,
                custom_settings=DEMO_SETTINGS,
            )
            return CREATED.format(name=DEMO_NAME, url=url)
        old = subscription.endpoint_url
        if old != url and _is_own_demo_mock(old, base_url=settings.BASE_URL):
            subscription_update(subscription=subscription, endpoint_url=url)
            return MOVED.format(name=DEMO_NAME, old=old, url=url)
        return KEPT.format(name=DEMO_NAME)


def _is_own_demo_mock(url: str, *, base_url: str) -> bool:
    """Whether url is the demo mock endpoint of a sandbox on this machine (or on
    the host the sandbox is served from now), whatever its port: where the seed of
    an earlier run pointed the demo, not somewhere the user chose."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        base_host = urlsplit(base_url).hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return False
    if parts.path != f"/mock/{DEMO_SLUG}/" or parts.query or parts.fragment:
        return False
    return host is not None and (host == base_host or _is_local(host))


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
