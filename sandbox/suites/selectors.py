"""Reads for suites: by name from the built-in ones, the stored ones and the
files in SANDBOX_SUITES_DIR; a suite file by path; runs and the last good run."""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from sandbox.delivery.models import Attempt, Delivery
from sandbox.delivery.webhook import error_message
from sandbox.display import safe_text
from sandbox.suites import fileformat, results
from sandbox.suites.builtin import BUILT_IN
from sandbox.suites.models import Suite as StoredSuite
from sandbox.suites.models import SuiteRun, SuiteSource

UNKNOWN_SUITE = "No suite named {name!r}. Known: {known}."
UNREADABLE_FILE = "Cannot read {path}: {detail}"
# A suite file larger than this is not a suite a person wrote.
MAX_FILE_BYTES = 5 * 1024 * 1024
SHADOWED_BY_FILE = (
    "name: {name!r} is also the name of the suite in {others}, so neither is "
    "listed (a run by that name could not tell them apart); give one another name"
)
SHADOWED = (
    "name: a {kind} suite is already named {name!r}, so this file is not listed; "
    "give the suite in this file another name"
)
FILE_TOO_LARGE = "{path} is larger than {limit} MB; a suite file is far smaller."


class SuiteNotFound(LookupError):
    pass


@dataclass(frozen=True)
class FoundSuite:
    suite: fileformat.Suite
    source: str
    stored: StoredSuite | None = None
    path: Path | None = None

    @property
    def source_label(self) -> str:
        return SuiteSource(self.source).label


def suite_file_read(*, path: Path) -> fileformat.Suite:
    """The suite in a file; SuiteFileError names the file and every problem."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise fileformat.SuiteFileError(
                [FILE_TOO_LARGE.format(path=path, limit=MAX_FILE_BYTES // 2**20)]
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise fileformat.SuiteFileError(
            [UNREADABLE_FILE.format(path=path, detail=error)]
        ) from None
    try:
        return fileformat.parse_suite(text)
    except fileformat.SuiteFileError as error:
        raise fileformat.SuiteFileError(
            [f"{path}: {problem}" for problem in error.problems]
        ) from None


def suite_directory_files() -> list[Path]:
    directory = Path(settings.SUITES_DIR)
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"*{fileformat.FILE_SUFFIX}"))


def suite_directory() -> tuple[dict[str, FoundSuite], dict[Path, list[str]]]:
    """The readable suite files by their suites' names, and each file that is
    not listed with why: unreadable, its suite's name taken by a built-in or
    stored suite, or held by another file too (listed, never fatal to the
    others)."""
    found, broken, _ = _suite_files()
    return found, broken


def suite_files_not_listed(*, name: str) -> list[tuple[Path, str]]:
    """The files in the suites directory that hold a suite of this name but are
    not listed, each with why (for a run by that name to say so)."""
    _, _, unlisted = _suite_files()
    return unlisted.get(name, [])


def _suite_files() -> tuple[
    dict[str, FoundSuite], dict[Path, list[str]], dict[str, list[tuple[Path, str]]]
]:
    """suite_directory's two answers, and the files left out because of their
    suite's name, by that name."""
    found: dict[str, FoundSuite] = {}
    broken: dict[Path, list[str]] = {}
    unlisted: dict[str, list[tuple[Path, str]]] = {}
    paths = suite_directory_files()
    taken = (
        {name: "built-in" for name in BUILT_IN}
        | {
            name: "stored"
            for name in StoredSuite.objects.values_list("name", flat=True)
        }
        if paths
        else {}
    )
    named: dict[str, list[FoundSuite]] = {}
    for path in paths:
        try:
            suite = suite_file_read(path=path)
        except fileformat.SuiteFileError as error:
            broken[path] = error.problems
            continue
        named.setdefault(suite.name, []).append(
            FoundSuite(suite=suite, source=SuiteSource.FILE, path=path)
        )
    for name, files in named.items():
        for file in files:
            others = [other.path.name for other in files if other is not file]
            if name in taken:
                why = SHADOWED.format(kind=taken[name], name=name)
            elif others:
                why = SHADOWED_BY_FILE.format(name=name, others=" and ".join(others))
            else:
                found[name] = file
                continue
            broken[file.path] = [why]
            unlisted.setdefault(name, []).append((file.path, why))
    return found, dict(sorted(broken.items())), unlisted


def suite_stored_get(*, name: str) -> StoredSuite:
    return StoredSuite.objects.get(name=name)


def suite_list() -> list[FoundSuite]:
    """Every suite by name: built in first, then stored, then the files."""
    suites = {
        name: FoundSuite(suite=make(), source=SuiteSource.BUILT_IN)
        for name, make in BUILT_IN.items()
    }
    for stored in StoredSuite.objects.all():
        if stored.name not in suites:
            suites[stored.name] = FoundSuite(
                suite=fileformat.suite_from_document(stored.definition),
                source=SuiteSource.STORED,
                stored=stored,
            )
    files, _ = suite_directory()
    for name, found in files.items():
        suites.setdefault(name, found)
    return list(suites.values())


def suite_find(*, name: str) -> FoundSuite:
    """A suite by name; SuiteNotFound lists the known names."""
    if safe_text(name) != name:
        # Text with a lone surrogate names no suite (and cannot be looked up).
        return _not_found(safe_text(name))
    if name in BUILT_IN:
        return FoundSuite(suite=BUILT_IN[name](), source=SuiteSource.BUILT_IN)
    stored = StoredSuite.objects.filter(name=name).first()
    if stored is not None:
        return FoundSuite(
            suite=fileformat.suite_from_document(stored.definition),
            source=SuiteSource.STORED,
            stored=stored,
        )
    files, _ = suite_directory()
    if name in files:
        return files[name]
    return _not_found(name)


def _not_found(name: str):
    known = ", ".join(repr(found.suite.name) for found in suite_list())
    shown = name if len(name) <= 200 else name[:197] + "..."
    raise SuiteNotFound(UNKNOWN_SUITE.format(name=shown, known=known))


def suite_run_get(*, pk: int) -> SuiteRun:
    return SuiteRun.objects.select_related("run", "compared_with").get(pk=pk)


def suite_run_list(*, limit: int = 20) -> list[SuiteRun]:
    """The latest runs, newest first."""
    return list(SuiteRun.objects.all()[:limit])


def suite_run_of_run(*, run_id: int) -> SuiteRun | None:
    """The suite run a pipeline Run belongs to, if a suite made it."""
    return SuiteRun.objects.filter(run_id=run_id).first()


def suite_runs_unread(*, limit: int) -> list[SuiteRun]:
    """Runs sent through a Run whose results are not read yet, newest first."""
    return list(
        SuiteRun.objects.filter(passed__isnull=True, run__isnull=False)
        .select_related("run")
        .order_by("-created_at", "-id")[:limit]
    )


def suite_run_last_good(*, suite_name: str, before: SuiteRun) -> SuiteRun | None:
    """The suite's latest earlier run to the same subscription (or ad hoc
    endpoint) in which every expectation held: a run against the demo endpoint
    says nothing of what the partner's endpoint answered. A subscription whose
    URL or name was edited is still the same one."""
    same_target = (
        {"subscription_id": before.subscription_id}
        if before.subscription_id is not None
        else {"subscription__isnull": True, "target_name": before.target_name}
    )
    return (
        SuiteRun.objects.filter(
            suite_name=suite_name, passed=True, pk__lt=before.pk, **same_target
        )
        .order_by("-created_at", "-id")
        .first()
    )


def suite_run_delivery_ids(*, suite_run: SuiteRun) -> list[int]:
    """Every delivery the run sent: each step's, its variants' and the
    duplicate injected after it."""
    return [
        pk
        for step in suite_run.steps
        for pk in (
            step["delivery_id"],
            *(variant["delivery_id"] for variant in step.get("variants", [])),
            *([step["duplicate_id"]] if step.get("duplicate_id") else []),
        )
    ]


def suite_run_deliveries(*, suite_run: SuiteRun) -> dict[int, Delivery]:
    """The run's deliveries by id (variants' too), each with its attempts."""
    ids = suite_run_delivery_ids(suite_run=suite_run)
    return {
        delivery.pk: delivery
        for delivery in Delivery.objects.filter(pk__in=ids)
        .select_related("target")
        .prefetch_related("attempts")
    }


def suite_run_settled_ids(*, run_id: int) -> set[int]:
    """Which deliveries of a run have their final outcome (for progress lines)."""
    return set(
        Delivery.objects.filter(run_id=run_id)
        .exclude(state__in=["pending", "retrying"])
        .values_list("pk", flat=True)
    )


def last_attempt(delivery: Delivery) -> Attempt | None:
    attempts = delivery.timeline
    return attempts[-1] if attempts else None


def suite_run_api_key(*, suite_run: SuiteRun) -> str:
    """The key the run was sent with, so a report can mask any echo of it."""
    ids = [step["delivery_id"] for step in suite_run.steps[:1]]
    delivery = Delivery.objects.filter(pk__in=ids).select_related("target").first()
    return delivery.target.api_key if delivery is not None else ""


DELETED = "the delivery was deleted"


def delivery_actual(delivery: Delivery | None) -> results.Actual:
    """What happened to a delivery, as a result reads it: its state, outcome,
    answer and the endpoint's message."""
    if delivery is None:
        return results.Actual(state="deleted", reason=DELETED)
    attempt = last_attempt(delivery)
    message = ""
    body = ""
    if attempt is not None and attempt.response_status is not None:
        body = attempt.response_body
        content_type = next(
            (v for n, v in attempt.response_headers if n.lower() == "content-type"),
            "",
        )
        message = error_message(
            body,
            content_type,
            secret=delivery.target.api_key if delivery.target_id else "",
        )
    return results.Actual(
        state=delivery.state,
        outcome=delivery.outcome,
        status=delivery.response_status,
        latency_ms=delivery.latency_ms,
        message=message,
        reason=delivery.reason,
        response_body=body,
        attempts=delivery.attempt_count,
    )


def suite_run_step_results(*, suite_run: SuiteRun) -> list[results.StepResult]:
    """Each step's result as stored now (open steps say so), with its variants'
    answers and how they differ from the step's."""
    suite = fileformat.suite_from_document(suite_run.definition)
    deliveries = suite_run_deliveries(suite_run=suite_run)
    found = []
    for step, planned in zip(suite.steps, suite_run.steps, strict=True):
        result = results.step_result(
            number=planned["number"],
            label=planned["label"],
            event_type=planned["event_type"],
            message_id=planned["message_id"],
            delivery_id=planned["delivery_id"],
            expect=step.expect,
            actual=delivery_actual(deliveries.get(planned["delivery_id"])),
        )
        result.variants = [
            results.variant_result(
                name=variant["name"],
                delivery_id=variant["delivery_id"],
                message_id=variant["message_id"],
                original=result,
                actual=delivery_actual(deliveries.get(variant["delivery_id"])),
            )
            for variant in planned.get("variants", [])
        ]
        if planned.get("duplicate_id"):
            result.duplicate = results.duplicate_result(
                delivery_id=planned["duplicate_id"],
                actual=delivery_actual(deliveries.get(planned["duplicate_id"])),
            )
        found.append(result)
    return found


def suite_source(*, name: str) -> str | None:
    """Where the suite of this name comes from, or None when no suite has it."""
    if name in BUILT_IN:
        return SuiteSource.BUILT_IN
    if StoredSuite.objects.filter(name=name).exists():
        return SuiteSource.STORED
    files, _ = suite_directory()
    return SuiteSource.FILE if name in files else None


def suite_stored_found(*, pk: int) -> FoundSuite:
    """A stored suite by its id (its page's address); StoredSuite.DoesNotExist."""
    stored = StoredSuite.objects.get(pk=pk)
    return FoundSuite(
        suite=fileformat.suite_from_document(stored.definition),
        source=SuiteSource.STORED,
        stored=stored,
    )


def suite_stored_names() -> list[str]:
    return list(StoredSuite.objects.values_list("name", flat=True))


def suite_run_history(*, found: FoundSuite, limit: int = 50) -> list[SuiteRun]:
    """The suite's runs, newest first (a stored suite's by its row as well, so
    runs made before a rename stay with it)."""
    runs = SuiteRun.objects.filter(suite_name=found.suite.name)
    if found.stored is not None:
        runs = runs | SuiteRun.objects.filter(suite=found.stored)
    newest = runs.select_related("compared_with").order_by("-created_at", "-id")
    return list(newest[:limit])
