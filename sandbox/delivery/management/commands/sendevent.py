"""Send one event through the pipeline from a terminal, as the composer would.

Exit codes: 0 green or yellow, 1 red, 2 bad arguments or input.
"""

import asyncio
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

from sandbox import spec
from sandbox.delivery import services
from sandbox.delivery.engine import Engine
from sandbox.delivery.models import Delivery, Door, State
from sandbox.subscriptions.models import (
    DEFAULT_TIMEOUT_SECONDS,
    Subscription,
    custom_settings_problem,
    endpoint_url_problem,
)

UNKNOWN_SUBSCRIPTION = "No subscription named {name!r}. Known: {known}."
TARGET_REQUIRED = "Give --to SUBSCRIPTION_NAME, or --endpoint URL with --api-key KEY."
TARGET_BOTH = "Give either --to or --endpoint, not both."
API_KEY_REQUIRED = "--endpoint needs --api-key (use --api-key '' for an empty key)."
BAD_URL = "--endpoint {url!r}: {problem}"
BAD_SETTINGS = "--settings: {detail}"
DEDUPLICATED = "Not sent. {reason}\nThe first: {link}"
UNKNOWN_WHAT = (
    "Unknown type or template {what!r}. Types: {types}. "
    "Templates are semantic event names such as 'Order Completed'."
)
NOT_AN_OBJECT = "An event must be a JSON object, not {kind}."
TYPE_MISMATCH = "The file holds a {found!r} event, but the command asked for {asked!r}."
UNREADABLE = "Cannot read {path}: {detail}"


class BadInput(Exception):
    pass


class Command(BaseCommand):
    # manage.py passes `--settings JSON` here as --custom-settings (see manage.py).
    suppressed_base_arguments = {"--settings"}
    help = (
        "Send a Segment event to a subscription through the sandbox's pipeline "
        "and print the request and the outcome. Exits 0 for green or yellow, "
        "1 for red, 2 for bad arguments or input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "what",
            metavar="TYPE_OR_TEMPLATE",
            help="identify, track, … or e.g. 'Order Completed'",
        )
        parser.add_argument("--to", metavar="SUBSCRIPTION_NAME")
        parser.add_argument("--endpoint", metavar="URL")
        parser.add_argument("--api-key", metavar="KEY")
        parser.add_argument(
            "--custom-settings",
            metavar="JSON",
            dest="custom_settings",
            help="custom settings as a JSON object (also accepted as --settings)",
        )
        parser.add_argument(
            "--file", metavar="EVENT_JSON", help="send this event ('-' for stdin)"
        )
        parser.add_argument(
            "--source",
            default="analytics.js",
            choices=list(spec.SOURCES),
            help="context for generated samples",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="send even if the event breaks the Spec",
        )

    def handle(self, *args, **options) -> None:
        self.verbosity = options["verbosity"]
        try:
            target = self._target(options)
            event = self._event(options)
        except BadInput as error:
            self.stderr.write(str(error))
            sys.exit(2)
        engine = Engine(concurrency=1)
        try:
            delivery = services.delivery_enqueue(
                target=target,
                event=event,
                door=Door.CLI,
                allow_problems=options["force"],
                claimed_by=engine.name,
            )
        except services.SpecRejected as rejected:
            for problem in rejected.problems:
                self.stderr.write(f"Spec: {problem.message}")
            self.stderr.write("Not sent. Add --force to send it anyway.")
            sys.exit(2)
        except services.DeliveryRefused as refusal:
            self.stderr.write(str(refusal))
            sys.exit(2)
        asyncio.run(self._deliver(engine, delivery.pk))
        delivery = Delivery.objects.get(pk=delivery.pk)
        self._report(delivery)
        sys.exit(0 if delivery.outcome in {"green", "yellow"} else 1)

    async def _deliver(self, engine: Engine, pk: int) -> None:
        try:
            await engine.run_due(only_ids=[pk])
        finally:
            await engine.close()

    def _target(self, options: dict) -> services.Target:
        if options["to"] and options["endpoint"]:
            raise BadInput(TARGET_BOTH)
        if options["to"]:
            try:
                return services.Target.of(Subscription.objects.get(name=options["to"]))
            except Subscription.DoesNotExist:
                known = (
                    ", ".join(
                        repr(n)
                        for n in Subscription.objects.values_list("name", flat=True)
                    )
                    or "none"
                )
                raise BadInput(
                    UNKNOWN_SUBSCRIPTION.format(name=options["to"], known=known)
                ) from None
        if not options["endpoint"]:
            raise BadInput(TARGET_REQUIRED)
        url = options["endpoint"]
        problem = endpoint_url_problem(url)
        if problem is not None:
            raise BadInput(BAD_URL.format(url=url, problem=problem))
        if options["api_key"] is None:
            raise BadInput(API_KEY_REQUIRED)
        custom_settings: object = {}
        if options["custom_settings"]:
            custom_settings, error = spec.parse_json(options["custom_settings"])
            if error is not None:
                raise BadInput(BAD_SETTINGS.format(detail=error.message))
            problem = custom_settings_problem(custom_settings)
            if problem is not None:
                raise BadInput(BAD_SETTINGS.format(detail=problem))
        return services.Target(
            name=services.AD_HOC_NAME.format(url=url),
            endpoint_url=url,
            api_key=options["api_key"],
            custom_settings=custom_settings,
            timeout_seconds=DEFAULT_TIMEOUT_SECONDS,
        )

    def _event(self, options: dict) -> object:
        what = options["what"]
        is_type = what in spec.EVENT_TYPES
        if options["file"]:
            path = options["file"]
            try:
                text = (
                    sys.stdin.read()
                    if path == "-"
                    else Path(path).read_text(encoding="utf-8")
                )
            except (OSError, UnicodeDecodeError) as error:
                raise BadInput(UNREADABLE.format(path=path, detail=error)) from None
            event, error = spec.parse_event_json(text)
            if error is not None:
                raise BadInput(f"{path}: {error.message}")
            if not isinstance(event, dict):
                kind = spec.validation.json_kind(event)
                raise BadInput(f"{path}: {NOT_AN_OBJECT.format(kind=kind)}")
            found = event.get("type")
            expected = what if is_type else "track"
            if found != expected:
                raise BadInput(TYPE_MISMATCH.format(found=found, asked=what))
            return event
        if is_type:
            return spec.sample_event(what, source=options["source"])
        if what in spec.TEMPLATES:
            return spec.sample_event("track", source=options["source"], template=what)
        raise BadInput(
            UNKNOWN_WHAT.format(what=what, types=", ".join(spec.EVENT_TYPES))
        )

    def _report(self, delivery: Delivery) -> None:
        attempt = delivery.attempts.order_by("-number").first()
        if delivery.state == State.DEDUPLICATED:
            path = reverse("delivery:detail", args=[delivery.duplicate_of_id])
            link = f"{settings.BASE_URL}{path}"
            self.stderr.write(DEDUPLICATED.format(reason=delivery.reason, link=link))
            return
        if attempt is None:
            self.stderr.write(f"No attempt was made: {delivery.reason}")
            return
        self.stdout.write(f"{attempt.request_method} {attempt.request_url}")
        what = attempt.response_status or attempt.get_error_kind_display()
        self.stdout.write(f"{what} · {attempt.latency_ms} ms · {attempt.outcome}")
        self.stdout.write(attempt.reason)
        if delivery.state == State.RETRYING and delivery.next_attempt_at:
            self.stdout.write(
                f"Segment would retry at {delivery.next_attempt_at:%H:%M:%S} UTC; "
                "a running sandbox server makes the retries."
            )
        if self.verbosity > 1:
            self.stdout.write(
                f"delivery #{delivery.pk}, messageId {delivery.message_id}"
            )
