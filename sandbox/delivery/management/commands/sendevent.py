"""Send one event through the pipeline from a terminal, as the composer would.

Exit codes: 0 green or yellow, 1 red, 2 bad arguments or input. When the event is
not delivered it prints the response's status, the first lines of its body and
the delivery's page; -v 2 prints the whole request and response.
"""

import asyncio
import sys
from http import HTTPStatus
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from sandbox import spec
from sandbox.delivery import services
from sandbox.delivery.engine import Engine
from sandbox.delivery.models import (
    Attempt,
    Delivery,
    Door,
    Outcome,
    State,
    TargetKind,
)
from sandbox.delivery.selectors import delivery_get
from sandbox.display import mask_headers, safe_text
from sandbox.functions import services as function_services
from sandbox.subscriptions.models import (
    DEFAULT_TIMEOUT_SECONDS,
    Subscription,
    custom_settings_problem,
    endpoint_url_problem,
)
from sandbox.subscriptions.selectors import subscription_get_by_name, subscription_list

UNKNOWN_SUBSCRIPTION = "No subscription named {name!r}. Known: {known}."
TARGET_REQUIRED = (
    "Give --to SUBSCRIPTION_NAME, --endpoint URL with --api-key KEY, "
    "or --function FILE.js."
)
TARGET_BOTH = "Give one of --to, --endpoint and --function, not two."
FUNCTION_REFUSED = "--function {path}: {reason}"
NO_FUNCTION_VERSION = (
    "The function subscription {name!r} has no saved source yet: open its code "
    "page and save it."
)
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
SPEC_REFUSED = "Not sent. Add --force to send it anyway."
NO_ATTEMPT = "No attempt was made: {reason}"
NOT_DELIVERED = "Not delivered: {state}."
RESPONSE = "Response: {status}"
NO_RESPONSE = "No response: {error}"
BODY_MORE = "  … {count} more line{s} (the whole body: -v 2 or the delivery's page)"
EMPTY_BODY = "  (empty body)"
DELIVERY_PAGE = "Delivery: {url}"
TRUNCATED = "(the body was cut at the sandbox's response body limit)"
# How much of the response body a failure shows without -v 2.
BODY_LINES = 10
BODY_LINE_CHARACTERS = 200


class BadInput(Exception):
    pass


def add_target_arguments(parser: CommandParser) -> None:
    """--to, or --endpoint with --api-key and --settings: where a command sends."""
    parser.add_argument("--to", metavar="SUBSCRIPTION_NAME")
    parser.add_argument("--endpoint", metavar="URL")
    parser.add_argument(
        "--function",
        metavar="FILE_JS",
        help="run this JavaScript subscription function, as Segment would",
    )
    parser.add_argument("--api-key", metavar="KEY")
    parser.add_argument(
        "--custom-settings",
        metavar="JSON",
        dest="custom_settings",
        help="custom settings for --endpoint as a JSON object (also --settings)",
    )


def target_from_options(options: dict) -> services.Target:
    """The target `--to` or `--endpoint`/`--api-key`/`--settings` name (the
    command line's, shared by sendevent and runsuite); BadInput otherwise."""
    given = [name for name in ("to", "endpoint", "function") if options.get(name)]
    if len(given) > 1:
        raise BadInput(TARGET_BOTH)
    if options["to"]:
        try:
            subscription = subscription_get_by_name(name=options["to"])
        except Subscription.DoesNotExist:
            names = subscription_list().values_list("name", flat=True)
            known = ", ".join(repr(n) for n in names) or "none"
            raise BadInput(
                UNKNOWN_SUBSCRIPTION.format(name=options["to"], known=known)
            ) from None
        target = services.Target.of(subscription)
        if subscription.is_function and target.function_version is None:
            raise BadInput(NO_FUNCTION_VERSION.format(name=subscription.name))
        return target
    if options.get("function"):
        return _function_target(options)
    if not options["endpoint"]:
        raise BadInput(TARGET_REQUIRED)
    url = options["endpoint"]
    problem = endpoint_url_problem(url)
    if problem is not None:
        raise BadInput(BAD_URL.format(url=url, problem=problem))
    if options["api_key"] is None:
        raise BadInput(API_KEY_REQUIRED)
    return services.Target(
        name=services.AD_HOC_NAME.format(url=url),
        endpoint_url=url,
        api_key=options["api_key"],
        custom_settings=_custom_settings(options),
        timeout_seconds=DEFAULT_TIMEOUT_SECONDS,
    )


def _custom_settings(options: dict) -> object:
    custom_settings: object = {}
    if options["custom_settings"]:
        custom_settings, error = spec.parse_json(options["custom_settings"])
        if error is not None:
            raise BadInput(BAD_SETTINGS.format(detail=error.message))
        problem = custom_settings_problem(custom_settings)
        if problem is not None:
            raise BadInput(BAD_SETTINGS.format(detail=problem))
    return custom_settings


def _function_target(options: dict) -> services.Target:
    """An ad hoc function: the file's source, checked, kept as a version."""
    path = options["function"]
    try:
        source = function_services.source_of_file(path)
    except function_services.SourceFileRefused as refused:
        raise BadInput(FUNCTION_REFUSED.format(path=path, reason=refused)) from None
    custom_settings = _custom_settings(options)
    return services.Target(
        name=services.AD_HOC_NAME.format(url=f"function {Path(path).name}"),
        endpoint_url="",
        api_key=options["api_key"] or "",
        custom_settings=custom_settings,
        timeout_seconds=DEFAULT_TIMEOUT_SECONDS,
        kind=TargetKind.FUNCTION,
        function_version=function_services.ad_hoc_version(source),
    )


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
        add_target_arguments(parser)
        parser.add_argument(
            "--file", metavar="EVENT_JSON", help="send this event ('-' for stdin)"
        )
        parser.add_argument(
            "--source",
            default="analytics.js",
            choices=list(spec.SOURCES),
            help="the library whose events the generated sample imitates: "
            + "; ".join(f"{key}: {label}" for key, label in spec.SOURCES.items()),
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="send even if the event breaks the Spec",
        )

    def handle(self, *args, **options) -> None:
        self.verbosity = options["verbosity"]
        try:
            target = target_from_options(options)
            event = self._event(options)
        except BadInput as error:
            raise CommandError(str(error), returncode=2) from None
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
            raise CommandError(SPEC_REFUSED, returncode=2) from None
        except services.DeliveryRefused as refusal:
            raise CommandError(str(refusal), returncode=2) from None
        asyncio.run(self._deliver(engine, delivery.pk))
        delivery = delivery_get(pk=delivery.pk)
        failure = self._report(delivery)
        if failure is not None:
            raise CommandError(failure, returncode=1)

    async def _deliver(self, engine: Engine, pk: int) -> None:
        try:
            await engine.run_due(only_ids=[pk])
        finally:
            await engine.close()

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
        if not is_type and what not in spec.TEMPLATES:
            raise BadInput(
                UNKNOWN_WHAT.format(what=what, types=", ".join(spec.EVENT_TYPES))
            )
        event_type, template = (what, None) if is_type else ("track", what)
        problem = spec.sample_problem(
            event_type, source=options["source"], template=template
        )
        if problem is not None:
            raise BadInput(problem)
        return spec.sample_event(
            event_type, source=options["source"], template=template
        )

    def _report(self, delivery: Delivery) -> str | None:
        """Print what happened; the reason it was not delivered, if it was not."""
        attempt = delivery.attempts.order_by("-number").first()
        if delivery.state == State.DEDUPLICATED:
            path = reverse("delivery:detail", args=[delivery.duplicate_of_id])
            link = f"{settings.BASE_URL}{path}"
            return DEDUPLICATED.format(reason=delivery.reason, link=link)
        if attempt is None:
            page = DELIVERY_PAGE.format(url=self._page(delivery))
            return f"{NO_ATTEMPT.format(reason=delivery.reason)}\n{page}"
        if attempt.invocation:
            return self._report_function(delivery, attempt)
        self.stdout.write(f"{attempt.request_method} {attempt.request_url}")
        what = attempt.response_status or attempt.get_error_kind_display()
        self.stdout.write(f"{what} · {attempt.latency_ms} ms · {attempt.outcome}")
        self.stdout.write(attempt.reason)
        if delivery.state == State.RETRYING and delivery.next_attempt_at:
            self.stdout.write(
                f"Segment would retry at {delivery.next_attempt_at:%H:%M:%S} UTC; "
                "a running sandbox server makes the retries."
            )
        delivered = delivery.outcome in {Outcome.GREEN, Outcome.YELLOW}
        if self.verbosity > 1:
            self.stdout.write(
                f"delivery #{delivery.pk}, messageId {delivery.message_id}"
            )
            self._exchange(attempt)
        elif not delivered:
            self._response_start(attempt)
        if not delivered:
            self.stdout.write(DELIVERY_PAGE.format(url=self._page(delivery)))
            return NOT_DELIVERED.format(state=delivery.get_state_display().lower())
        return None

    def _report_function(self, delivery: Delivery, attempt: Attempt) -> str | None:
        """What Segment's test pane shows: the Callback Return, the Log Output,
        each fetch the function made, and the outcome."""
        run = attempt.invocation
        self.stdout.write(
            f"{run.get('handler') or '(no handler)'} · v{run.get('version')} · "
            f"{attempt.latency_ms} ms · {attempt.outcome}"
        )
        self.stdout.write(attempt.reason)
        self.stdout.write("Callback Return:")
        returned = run.get("return")
        self.stdout.write(f"  {'undefined' if returned is None else returned}")
        self.stdout.write("Log Output:")
        for line in run.get("logs") or []:
            self.stdout.write(f"  [{line.get('level')}] {line.get('message')}")
        if not run.get("logs"):
            self.stdout.write("  (none)")
        error = run.get("error")
        if error and self.verbosity > 1:
            self.stdout.write("Error:")
            self.stdout.write(f"  {error.get('stack') or error.get('message')}")
        self.stdout.write(f"Fetches: {len(attempt.exchanges)}")
        for exchange in attempt.exchanges:
            request = exchange.get("request", {})
            answered = exchange.get("response")
            what = answered.get("status") if answered else exchange.get("error")
            self.stdout.write(
                f"  {request.get('method')} {request.get('url')} → {what} "
                f"({exchange.get('latency_ms')} ms)"
            )
        if delivery.state == State.RETRYING and delivery.next_attempt_at:
            self.stdout.write(
                f"Segment would retry at {delivery.next_attempt_at:%H:%M:%S} UTC; "
                "a running sandbox server makes the retries."
            )
        if delivery.outcome in {Outcome.GREEN, Outcome.YELLOW}:
            return None
        self.stdout.write(DELIVERY_PAGE.format(url=self._page(delivery)))
        return NOT_DELIVERED.format(state=delivery.get_state_display().lower())

    def _page(self, delivery: Delivery) -> str:
        return f"{settings.BASE_URL}{reverse('delivery:detail', args=[delivery.pk])}"

    def _response_start(self, attempt: Attempt) -> None:
        """The status and the first lines of the body: enough to see why."""
        if attempt.response_status is None:
            error = attempt.error_message or attempt.get_error_kind_display()
            self.stdout.write(NO_RESPONSE.format(error=error))
            return
        self.stdout.write(RESPONSE.format(status=_status_line(attempt)))
        lines = safe_text(attempt.response_body).splitlines()
        if not lines:
            self.stdout.write(EMPTY_BODY)
        for line in lines[:BODY_LINES]:
            if len(line) > BODY_LINE_CHARACTERS:
                line = line[: BODY_LINE_CHARACTERS - 1] + "…"
            self.stdout.write(f"  {line}")
        more = len(lines) - BODY_LINES
        if more > 0:
            self.stdout.write(BODY_MORE.format(count=more, s="" if more == 1 else "s"))

    def _exchange(self, attempt: Attempt) -> None:
        """The whole request and response, as sent and as answered (the API key
        masked, as on every page)."""
        self.stdout.write("")
        self.stdout.write(f"{attempt.request_method} {attempt.request_url}")
        for name, value in mask_headers(attempt.request_headers):
            self.stdout.write(f"{name}: {value}")
        self.stdout.write("")
        self.stdout.write(safe_text(attempt.request_body))
        self.stdout.write("")
        if attempt.response_status is None:
            error = attempt.error_message or attempt.get_error_kind_display()
            self.stdout.write(NO_RESPONSE.format(error=error))
            return
        self.stdout.write(_status_line(attempt))
        for name, value in attempt.response_headers:
            self.stdout.write(f"{name}: {value}")
        self.stdout.write("")
        self.stdout.write(safe_text(attempt.response_body))
        if attempt.response_truncated:
            self.stdout.write(TRUNCATED)
        self.stdout.write("")


def _status_line(attempt: Attempt) -> str:
    status = attempt.response_status
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
