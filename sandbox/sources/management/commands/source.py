"""Create, update and list sources from a terminal (scripts and CI set up a
sandbox without the page).

`source create NAME --to SUBSCRIPTION_NAME [--to ...] [--write-key KEY]` creates
the source, or updates the one with that name, and prints its write key alone on
the last line. `source list [--show-keys]` lists sources, their write keys
(masked unless asked) and connections. Exit codes: 0 done, 2 bad arguments or
input (an unknown subscription, a write key another source has).
"""

import argparse

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox.sources.selectors import source_list
from sandbox.sources.services import source_save
from sandbox.subscriptions.models import Subscription
from sandbox.subscriptions.selectors import subscription_get_by_name, subscription_list

UNKNOWN_SUBSCRIPTION = "No subscription named {name!r}. Known: {known}."
NOT_SAVED = "The source was not saved: {problems}"
CREATED = "Created source {name!r} → {subscriptions}"
UPDATED = "Updated source {name!r} → {subscriptions}"
NO_SOURCES = "No sources. Create one: manage.py source create NAME --to SUBSCRIPTION"
LIST_HEADER = ("name", "write key", "subscriptions")


class Command(BaseCommand):
    help = (
        "Create or update a source (`source create`) or list sources "
        "(`source list`). Exits 0 when done, 2 for bad arguments or input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser(
            "create", help="create a source, or update the one with this name"
        )
        _verbosity_anywhere(create)
        create.add_argument("name", metavar="NAME")
        create.add_argument(
            "--to",
            metavar="SUBSCRIPTION_NAME",
            action="append",
            required=True,
            help="a subscription its events go to (repeat for several)",
        )
        create.add_argument(
            "--write-key",
            metavar="KEY",
            help="the write key its SDKs send (made up when a new source has none)",
        )
        listing = actions.add_parser("list", help="list sources and connections")
        listing.add_argument(
            "--show-keys", action="store_true", help="print write keys in full"
        )
        _verbosity_anywhere(listing)

    def handle(self, *args, **options) -> None:
        if options["action"] == "create":
            self._create(options)
        else:
            self._list(options)

    def _create(self, options: dict) -> None:
        # Named twice is connected once.
        subscriptions = [_subscription(name) for name in dict.fromkeys(options["to"])]
        try:
            source, created = source_save(
                name=options["name"],
                subscriptions=subscriptions,
                write_key=options["write_key"],
            )
        except ValidationError as error:
            problems = " ".join(error.messages)
            raise CommandError(
                NOT_SAVED.format(problems=problems), returncode=2
            ) from None
        if options["verbosity"] > 0:
            names = ", ".join(s.name for s in subscriptions)
            done = CREATED if created else UPDATED
            self.stdout.write(done.format(name=source.name, subscriptions=names))
        self.stdout.write(source.write_key)

    def _list(self, options: dict) -> None:
        sources = list(source_list())
        if not sources:
            self.stdout.write(NO_SOURCES)
            return
        rows = [
            (
                source.name,
                source.write_key if options["show_keys"] else source.masked_write_key,
                ", ".join(s.name for s in source.subscriptions.all()) or "(none)",
            )
            for source in sources
        ]
        widths = [max(len(row[i]) for row in [LIST_HEADER, *rows]) for i in (0, 1)]
        for name, key, connected in [LIST_HEADER, *rows]:
            self.stdout.write(f"{name:<{widths[0]}}  {key:<{widths[1]}}  {connected}")


def _subscription(name: str) -> Subscription:
    try:
        return subscription_get_by_name(name=name)
    except Subscription.DoesNotExist:
        names = subscription_list().values_list("name", flat=True)
        known = ", ".join(repr(n) for n in names) or "none"
        raise CommandError(
            UNKNOWN_SUBSCRIPTION.format(name=name, known=known), returncode=2
        ) from None


def _verbosity_anywhere(parser: argparse.ArgumentParser) -> None:
    """-v also after the action's own arguments (`... create NAME -v 0`)."""
    parser.add_argument(
        "-v",
        "--verbosity",
        type=int,
        choices=[0, 1, 2, 3],
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
