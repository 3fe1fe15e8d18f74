"""Create or update a subscription from a terminal (scripts and CI set up a
sandbox without the page).

`subscription create NAME (--endpoint URL | --function FILE.js) --api-key KEY
[--settings JSON]` creates the subscription, or updates the one with that name;
with --function it is a function subscription running that file's JavaScript (a
changed file is saved as a new version). Exit codes: 0 done, 2 bad arguments or
input (the URL, the function, the settings, the name).
"""

import argparse
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from sandbox import spec
from sandbox.functions.services import (
    SourceFileRefused,
    function_version_save,
    source_of_file,
)
from sandbox.subscriptions.models import (
    Subscription,
    custom_settings_problem,
    endpoint_url_problem,
)
from sandbox.subscriptions.services import subscription_create, subscription_update

BAD_URL = "--endpoint {url!r}: {problem}"
BAD_SETTINGS = "--settings: {detail}"
NOT_SAVED = "The subscription was not saved: {problems}"
CREATED = "Created subscription {name!r} → {url}"
UPDATED = "Updated subscription {name!r} → {url}"
TARGET_REQUIRED = "Give --endpoint URL or --function FILE.js."
TARGET_BOTH = "Give either --endpoint or --function, not both."
FUNCTION_REFUSED = "--function {path}: {reason}"


class Command(BaseCommand):
    # manage.py passes `--settings JSON` here as --custom-settings (see manage.py).
    suppressed_base_arguments = {"--settings"}
    help = (
        "Create a subscription, or update the one with this name "
        "(`subscription create`). Exits 0 when done, 2 for bad arguments or input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser(
            "create", help="create a subscription, or update the one with this name"
        )
        _verbosity_anywhere(create)
        create.add_argument("name", metavar="NAME")
        create.add_argument("--endpoint", metavar="URL")
        create.add_argument(
            "--function",
            metavar="FILE_JS",
            help="a function subscription running this JavaScript file",
        )
        create.add_argument(
            "--api-key",
            metavar="KEY",
            required=True,
            help="sent as Basic auth (use --api-key '' for an empty key)",
        )
        create.add_argument(
            "--custom-settings",
            metavar="JSON",
            dest="custom_settings",
            help="custom settings as a JSON object (also --settings)",
        )

    def handle(self, *args, **options) -> None:
        url, path = options["endpoint"], options["function"]
        if url and path:
            raise CommandError(TARGET_BOTH, returncode=2)
        if not url and not path:
            raise CommandError(TARGET_REQUIRED, returncode=2)
        source = None
        if path:
            source = _function_source(path)
            fields = {"kind": Subscription.Kind.FUNCTION, "endpoint_url": ""}
        else:
            problem = endpoint_url_problem(url)
            if problem is not None:
                raise CommandError(
                    BAD_URL.format(url=url, problem=problem), returncode=2
                )
            fields = {"kind": Subscription.Kind.WEBHOOK, "endpoint_url": url}
        fields["api_key"] = options["api_key"]
        if options["custom_settings"] is not None:
            fields["custom_settings"] = _settings(options["custom_settings"])
        existing = Subscription.objects.filter(name=options["name"]).first()
        try:
            with transaction.atomic():
                if existing is None:
                    subscription = subscription_create(name=options["name"], **fields)
                else:
                    subscription = subscription_update(subscription=existing, **fields)
                if source is not None:
                    version, _ = function_version_save(
                        subscription=subscription, source=source
                    )
                    url = f"function {Path(path).name} ({version.label})"
        except ValidationError as error:
            problems = " ".join(error.messages)
            raise CommandError(
                NOT_SAVED.format(problems=problems), returncode=2
            ) from None
        if options["verbosity"] > 0:
            done = UPDATED if existing is not None else CREATED
            self.stdout.write(done.format(name=subscription.name, url=url))


def _function_source(path: str) -> str:
    try:
        return source_of_file(path)
    except SourceFileRefused as refused:
        raise CommandError(
            FUNCTION_REFUSED.format(path=path, reason=refused), returncode=2
        ) from None


def _settings(text: str) -> dict:
    value, error = spec.parse_json(text)
    if error is not None:
        raise CommandError(BAD_SETTINGS.format(detail=error.message), returncode=2)
    problem = custom_settings_problem(value)
    if problem is not None:
        raise CommandError(BAD_SETTINGS.format(detail=problem), returncode=2)
    return value


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
