"""Run a suite through the pipeline from a terminal or CI, without the web server.

The engine runs in this process, as sendevent's does; the steps are deliveries,
so they are in history and an open browser shows them live. Prints progress and
a summary table, and writes JUnit XML, a JSON result and an HTML report when
asked. With --variations each step's variants follow it, and the summary says
which ones the endpoint handled differently (they never change the exit code).
Exit codes: 0 every expectation held, 1 any failed, 2 bad arguments or input.
"""

import asyncio
from pathlib import Path

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox.delivery.conditions import (
    CONCURRENCY_RANGE,
    DUPLICATE_RATE_RANGE,
    JITTER_RANGE,
    MAX_CONCURRENCY,
    MAX_JITTER_MS,
)
from sandbox.delivery.management.commands.sendevent import (
    BadInput,
    add_target_arguments,
    target_from_options,
)
from sandbox.delivery.models import Delivery
from sandbox.delivery.services import DeliveryRefused, Target
from sandbox.display import mask_secret_in, safe_text
from sandbox.suites import fileformat, reports, results, selectors, services
from sandbox.suites.models import SuiteRun, SuiteSource

NOT_UNICODE = "--{option} holds a lone UTF-16 surrogate, which is not valid Unicode."
BAD_CONCURRENCY = "--concurrency {value!r}: " + CONCURRENCY_RANGE
BAD_DUPLICATE_RATE = "--duplicate-rate {value!r}: " + DUPLICATE_RATE_RANGE
BAD_JITTER = "--jitter {value!r}: " + JITTER_RANGE
NOT_RUN = "Note: {path} is not run: {why}"
BAD_TIMEOUT = "--timeout {value!r}: must be a number of seconds above 0."
NO_OUTPUT_DIRECTORY = "{option} {path}: the directory {directory} does not exist."
UNWRITABLE = "Cannot write {path}: {detail}"
TIMED_OUT = "The run did not settle within {seconds:g} s; open steps count as failed."
FAILED = "{failed} of {count} step{s} failed (the summary above says why)."
STARTED = "Running {name!r} ({count} step{s}) against {target}: {applied}"
PROGRESS = "  {number}/{count} {label}: {what}"
VARIANT_PROGRESS = "    variant {name}: {what}"
# The reason says when the next attempt goes ("retry 1 of 9 at 11:00:37 UTC").
RETRYING = "  {number}/{count} {label}: attempt {attempt} {reason}"
VARIANT_DIFFERS = "step {number} ({label}) variant {line}"
WROTE = "Wrote {what} to {path}"


class Command(BaseCommand):
    # Django's own --settings names its settings module; custom settings are
    # --custom-settings here.
    suppressed_base_arguments = {"--settings"}
    api_key = ""
    help = (
        "Run an event suite (a stored or built-in suite's name, or a "
        "*.suite.json file) against a subscription or an endpoint, through the "
        "sandbox's pipeline. Exits 0 when every expectation holds, 1 when any "
        "fails, 2 for bad arguments or input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("suite", metavar="SUITE_NAME_OR_FILE")
        add_target_arguments(parser)
        parser.add_argument("--junit", metavar="OUT_XML")
        parser.add_argument("--json", metavar="OUT_JSON")
        parser.add_argument("--report", metavar="OUT_HTML")
        parser.add_argument(
            "--concurrency",
            default="1",
            metavar="N",
            help="steps in flight at once; 1 (the default) sends each step only "
            "once the one before has its final outcome, retries included",
        )
        parser.add_argument("--shuffle", action="store_true")
        parser.add_argument(
            "--duplicate-rate",
            default="0",
            metavar="P",
            help="share of steps delivered a second time with the same messageId, "
            "as at-least-once delivery does; told beside the step, never changes "
            "the exit code",
        )
        parser.add_argument(
            "--jitter",
            default="0",
            metavar="MS",
            help="up to this many milliseconds between steps",
        )
        parser.add_argument(
            "--variations",
            action="store_true",
            help="after each step, also send its variants (the event as other "
            "SDKs and customers shape it) and report which ones the endpoint "
            "handled differently; variants never change the exit code",
        )
        parser.add_argument(
            "--timeout",
            default=str(services.DEFAULT_RUN_TIMEOUT_SECONDS),
            metavar="SECONDS",
            help="how long to wait for the run to settle",
        )

    def handle(self, *args, **options) -> None:
        self.verbosity = options["verbosity"]
        try:
            found = self._suite(options["suite"])
            target = self._target(options)
            self.api_key = target.api_key
            concurrency = self._concurrency(options["concurrency"])
            duplicate_rate = self._duplicate_rate(options["duplicate_rate"])
            jitter_ms = self._jitter(options["jitter"])
            timeout = self._timeout(options["timeout"])
            outputs = self._outputs(options)
        except BadInput as error:
            raise CommandError(str(error), returncode=2) from None
        except fileformat.SuiteFileError as error:
            for problem in error.problems[:-1]:
                self.stderr.write(problem)
            raise CommandError(error.problems[-1], returncode=2) from None
        try:
            suite_run = services.suite_run_start(
                found=found,
                target=target,
                concurrency=concurrency,
                shuffle=options["shuffle"],
                duplicate_rate=duplicate_rate,
                jitter_ms=jitter_ms,
                variations=options["variations"],
            )
        except (services.SuiteRefused, DeliveryRefused) as refusal:
            raise CommandError(str(refusal), returncode=2) from None
        self._say(
            STARTED.format(
                name=found.suite.name,
                count=len(suite_run.steps),
                s="" if len(suite_run.steps) == 1 else "s",
                target=target.name,
                applied=suite_run.run.applied,
            )
        )
        settled = asyncio.run(self._deliver(suite_run, timeout))
        if not settled:
            self.stderr.write(TIMED_OUT.format(seconds=timeout))
        suite_run = services.suite_run_finish(suite_run=suite_run)
        self._summary(suite_run)
        for option, path in outputs.items():
            self._write(option, path, suite_run, self.api_key)
        if not suite_run.passed:
            count = len(suite_run.results)
            failed = sum(not result["passed"] for result in suite_run.results)
            raise CommandError(
                FAILED.format(failed=failed, count=count, s="" if count == 1 else "s"),
                returncode=1,
            )

    def _say(self, line: str, level: int = 1) -> None:
        if self.verbosity >= level:
            self._out(line)

    def _out(self, line: str) -> None:
        """A line for the terminal (a CI log others read): the key masked where
        the endpoint echoed it."""
        self.stdout.write(mask_secret_in(line, self.api_key))

    # Input ----------------------------------------------------------------------

    def _suite(self, given: str) -> selectors.FoundSuite:
        path = Path(given)
        if given.endswith(".json") or _is_file(path):
            suite = selectors.suite_file_read(path=path)
            return selectors.FoundSuite(suite=suite, source=SuiteSource.FILE, path=path)
        # Files that hold a suite of this name but are not listed: a run by
        # that name says which, and why, rather than pass over them in silence.
        unlisted = selectors.suite_files_not_listed(name=given)
        try:
            found = selectors.suite_find(name=given)
        except selectors.SuiteNotFound as error:
            if unlisted:
                raise BadInput(
                    "\n".join(f"{path}: {why}" for path, why in unlisted)
                ) from None
            raise BadInput(str(error)) from None
        for path, why in unlisted:
            self.stderr.write(NOT_RUN.format(path=path, why=why))
        return found

    def _target(self, options: dict) -> Target:
        for option in ("to", "endpoint", "api_key"):
            value = options[option]
            if value is not None and safe_text(value) != value:
                raise BadInput(NOT_UNICODE.format(option=option.replace("_", "-")))
        return target_from_options(options)

    def _concurrency(self, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise BadInput(BAD_CONCURRENCY.format(value=value)) from None
        if not 1 <= number <= MAX_CONCURRENCY:
            raise BadInput(BAD_CONCURRENCY.format(value=value))
        return number

    def _duplicate_rate(self, value: str) -> float:
        try:
            rate = float(value)
        except ValueError:
            raise BadInput(BAD_DUPLICATE_RATE.format(value=value)) from None
        if not 0.0 <= rate <= 1.0:
            raise BadInput(BAD_DUPLICATE_RATE.format(value=value))
        return rate

    def _jitter(self, value: str) -> int:
        try:
            milliseconds = int(value)
        except ValueError:
            raise BadInput(BAD_JITTER.format(value=value)) from None
        if not 0 <= milliseconds <= MAX_JITTER_MS:
            raise BadInput(BAD_JITTER.format(value=value))
        return milliseconds

    def _timeout(self, value: str) -> float:
        try:
            seconds = float(value)
        except ValueError:
            raise BadInput(BAD_TIMEOUT.format(value=value)) from None
        if not 0 < seconds < float("inf"):
            raise BadInput(BAD_TIMEOUT.format(value=value))
        return seconds

    def _outputs(self, options: dict) -> dict[str, Path]:
        outputs = {}
        for option in ("junit", "json", "report"):
            if options[option]:
                path = Path(options[option])
                directory = path.parent
                if not directory.is_dir():
                    raise BadInput(
                        NO_OUTPUT_DIRECTORY.format(
                            option=f"--{option}", path=path, directory=directory
                        )
                    )
                outputs[option] = path
        return outputs

    # The run --------------------------------------------------------------------

    async def _deliver(self, suite_run: SuiteRun, timeout: float) -> bool:
        shown: set[int] = set()
        numbers = {step["delivery_id"]: step for step in suite_run.steps}
        variants = {
            variant["delivery_id"]: variant["name"]
            for step in suite_run.steps
            for variant in step.get("variants", [])
        }
        count = len(suite_run.steps)
        settled = sync_to_async(_settled_rows)
        retrying = sync_to_async(_retrying_rows)
        # Attempts already told of, per retrying delivery.
        told: dict[int, int] = {}

        async def progress() -> None:
            if self.verbosity < 1:
                return
            # A step waiting for its retry says so, once per failed attempt:
            # Segment's schedule can keep a step waiting for minutes.
            for delivery in await retrying(suite_run.run_id):
                step = numbers.get(delivery.pk)
                if step is None or told.get(delivery.pk) == delivery.attempt_count:
                    continue
                told[delivery.pk] = delivery.attempt_count
                self._out(
                    RETRYING.format(
                        number=step["number"],
                        count=count,
                        label=step["label"],
                        attempt=delivery.attempt_count,
                        reason=_failed_words(delivery),
                    )
                )
            for delivery in await settled(suite_run.run_id, shown):
                shown.add(delivery.pk)
                step = numbers.get(delivery.pk)
                what = _settled_words(delivery)
                if step is None:
                    # A variant's line is detail: -v 2 shows it.
                    if delivery.pk in variants and self.verbosity >= 2:
                        self._out(
                            VARIANT_PROGRESS.format(
                                name=variants[delivery.pk], what=what
                            )
                        )
                    continue
                self._out(
                    PROGRESS.format(
                        number=step["number"],
                        count=count,
                        label=step["label"],
                        what=what,
                    )
                )

        return await services.suite_run_deliver(
            suite_run=suite_run, timeout=timeout, on_progress=progress
        )

    # Output ---------------------------------------------------------------------

    def _summary(self, suite_run: SuiteRun) -> None:
        if self.verbosity < 1:
            return
        rows = [("#", "step", "expected", "status", "outcome", "latency", "result")]
        for step in suite_run.results:
            rows.append(
                (
                    str(step["number"]),
                    step["label"],
                    step["expected"],
                    str(step["status"] or "-"),
                    step["outcome"] or step["state"],
                    f"{step['latency_ms']} ms"
                    if step["latency_ms"] is not None
                    else "-",
                    "pass" if step["passed"] else "FAIL",
                )
            )
        widths = [
            min(max(len(row[i]) for row in rows), 40) for i in range(len(rows[0]))
        ]
        self._out("")
        for row in rows:
            cells = zip(row, widths, strict=True)
            self._out("  ".join(cell[:40].ljust(w) for cell, w in cells))
        for step in suite_run.results:
            if not step["passed"]:
                self._out(f"step {step['number']} ({step['label']}): {step['failure']}")
        for step in suite_run.results:
            for change in step["changes"]:
                self._out(f"changed: {change}")
        for step in suite_run.results:
            if step.get("duplicate"):
                sentence = step["duplicate"]["sentence"]
                self._out(f"step {step['number']} ({step['label']}): {sentence}")
        for step in suite_run.results:
            for line in results.variants_differ(step.get("variants", [])):
                self._out(
                    VARIANT_DIFFERS.format(
                        number=step["number"], label=step["label"], line=line
                    )
                )
        self._out("")
        summary = results.variations_summary(suite_run.results)
        if summary:
            self._out(f"Variations: {summary}")
        self._out(suite_run.verdict)

    def _write(
        self, option: str, path: Path, suite_run: SuiteRun, api_key: str
    ) -> None:
        if option == "junit":
            text, what = reports.junit_xml(suite_run=suite_run), "JUnit XML"
        elif option == "json":
            text, what = (
                reports.result_json(suite_run=suite_run, api_key=api_key),
                "the JSON result",
            )
        else:
            text, what = (
                reports.html_report(suite_run=suite_run, api_key=api_key),
                "the HTML report",
            )
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            raise CommandError(
                UNWRITABLE.format(path=path, detail=error), returncode=2
            ) from None
        self._say(WROTE.format(what=what, path=path))


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        # Too long, or holding a NUL: a suite's name, then, not a file.
        return False


def _settled_words(delivery: Delivery) -> str:
    return " ".join(
        str(part)
        for part in (
            delivery.response_status or "",
            delivery.outcome or delivery.get_state_display().lower(),
            f"{delivery.latency_ms} ms" if delivery.latency_ms else "",
        )
        if part
    )


def _retrying_rows(run_id: int) -> list[Delivery]:
    return list(
        Delivery.objects.filter(run_id=run_id, state="retrying")
        .only("pk", "attempt_count", "response_status", "reason")
        .order_by("pk")
    )


def _failed_words(delivery: Delivery) -> str:
    status = f"answered {delivery.response_status}" if delivery.response_status else ""
    return ": ".join(part for part in (status or "failed", delivery.reason) if part)


def _settled_rows(run_id: int, shown: set[int]) -> list[Delivery]:
    return list(
        Delivery.objects.filter(run_id=run_id)
        .exclude(state__in=["pending", "retrying"])
        .exclude(pk__in=shown)
        .order_by("pk")
    )
