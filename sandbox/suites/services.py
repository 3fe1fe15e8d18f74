"""Writes for suites: import and export of suite files, storing suites, and runs.

A run is a run of the pipeline: one bulk deliveries_enqueue into a Run, waited
with runs.run_wait, the results read from the stored deliveries.
"""

import asyncio
import dataclasses
import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from sandbox.delivery import conditions as conditions_module
from sandbox.delivery import runs
from sandbox.delivery.engine import Engine
from sandbox.delivery.models import Door, TargetKind
from sandbox.delivery.selectors import run_progress
from sandbox.delivery.services import Target, deliveries_enqueue
from sandbox.display import mask_secret_everywhere, mask_secret_in
from sandbox.suites import editing, fileformat, results, selectors
from sandbox.suites.builtin import BUILT_IN, SEGMENT_TEST_SUITE
from sandbox.suites.events import repeats_on_purpose, suite_events, suite_sends
from sandbox.suites.models import Suite as StoredSuite
from sandbox.suites.models import SuiteRun, SuiteSource

BUILT_IN_READ_ONLY = "{name!r} is built in and read-only; give your suite another name."
SUITE_EXISTS = (
    "A suite named {name!r} is already stored; import it with replace to overwrite it."
)
NAMED_BY_A_FILE = (
    "The suite file {file} is already named {name!r} (teammates share it); give "
    "this suite another name, or edit that file instead."
)
RUN_LABEL = "suite: {name}"
APPLIED = "{count} step{s}{variants}, concurrency {concurrency}, {order}{strict}"
WITH_VARIANTS = " with {count} variant{s}"
DEFAULT_RUN_TIMEOUT_SECONDS = 300.0
# Runs not yet read that a list looks at, newest first (older ones, never
# settled, are runs a stopped server left behind).
UNREAD_RUNS_CHECKED = 50


class SuiteRefused(ValueError):
    pass


def suite_export(*, suite: fileformat.Suite) -> str:
    """The suite as file text (never an API key: a suite holds none)."""
    return fileformat.export_suite(suite)


@transaction.atomic
def suite_import(*, text: str, replace: bool = False) -> StoredSuite:
    """Store the suite in a file's text, all or nothing. SuiteFileError lists
    every problem with its path; SuiteRefused when the name is taken."""
    suite = fileformat.parse_suite(text)
    return suite_save(suite=suite, replace=replace)


@transaction.atomic
def suite_save(*, suite: fileformat.Suite, replace: bool = False) -> StoredSuite:
    if suite.name in BUILT_IN:
        raise SuiteRefused(BUILT_IN_READ_ONLY.format(name=suite.name))
    files, _ = selectors.suite_directory()
    if suite.name in files:
        # Stored, it would hide the file from the list and the command line.
        raise SuiteRefused(
            NAMED_BY_A_FILE.format(file=files[suite.name].path.name, name=suite.name)
        )
    document = fileformat.suite_document(suite)
    stored = StoredSuite.objects.select_for_update().filter(name=suite.name).first()
    if stored is not None and not replace:
        raise SuiteRefused(SUITE_EXISTS.format(name=suite.name))
    if stored is None:
        return StoredSuite.objects.create(name=suite.name, definition=document)
    stored.definition = document
    stored.save(update_fields=["definition", "updated_at"])
    return stored


def suite_delete(*, stored: StoredSuite) -> None:
    stored.delete()


@transaction.atomic
def suite_run_start(
    *,
    found: selectors.FoundSuite,
    target: Target,
    concurrency: int = 1,
    shuffle: bool = False,
    duplicate_rate: float = 0.0,
    jitter_ms: int = 0,
    variations: bool = False,
    rng: random.Random | None = None,
) -> SuiteRun:
    """Enqueue every step of the suite into one Run, in one transaction.

    Concurrency 1 (the default) is strict order, as Segment's tester sends:
    each step's final outcome, retries included, before the next goes out.
    Shuffled, the steps go out in a random order (the plan of
    sandbox.delivery.conditions); their ids follow that order. With
    variations, each step's variants (sandbox.suites.variations) go out right
    after it, each a delivery of its own; steps record which are whose. With a
    duplicate rate, that share of steps is delivered a second time with the same
    messageId a little later, as at-least-once delivery does; jitter spaces the
    steps. A duplicate never changes the verdict: its answer is told beside its
    step.
    """
    suite = found.suite
    conditions = conditions_module.Conditions(
        copies=len(suite.steps),
        concurrency=concurrency,
        shuffle=shuffle,
        duplicate_rate=duplicate_rate,
        jitter_ms=jitter_ms,
    )
    problems = conditions.problems()
    if problems:
        raise SuiteRefused(" ".join(problems))
    now = timezone.now()
    events, _ = suite_events(suite, now=now, rng=rng)
    plan = conditions_module.plan(len(events), conditions, rng=rng)
    if shuffle:
        plan = _repeats_after_their_steps(plan, suite)
    firsts = [item for item in plan.items if not item.duplicate]
    # A step that repeats another's messageId on purpose is a dedupe test: a
    # copy of it would test nothing more.
    duplicates = [
        item
        for item in plan.items
        if item.duplicate and not repeats_on_purpose(suite.steps[item.index])
    ]
    # Each run its own seed: the same variants again would be dropped as repeats.
    seed = (rng or random.Random()).getrandbits(32) if variations else None
    sends = suite_sends(suite, events, order=[i.index for i in firsts], seed=seed)
    due_at = {
        item.index: now + timedelta(seconds=item.due_in_seconds) for item in firsts
    }
    variant_count = sum(1 for send in sends if send.variant)
    with_variants = (
        WITH_VARIANTS.format(count=variant_count, s="" if variant_count == 1 else "s")
        if variations
        else ""
    )
    run = runs.run_create(
        door=Door.SUITE,
        label=RUN_LABEL.format(name=suite.name)[:200],
        concurrency=concurrency,
        conditions=conditions.__dict__,
        applied=APPLIED.format(
            count=len(events),
            s="" if len(events) == 1 else "s",
            variants=with_variants,
            concurrency=concurrency,
            order="shuffled" if shuffle else "in order",
            strict=", each settled before the next" if concurrency == 1 else "",
        )
        + _faults_applied(conditions, len(duplicates)),
        strict_order=concurrency == 1,
    )
    stored = deliveries_enqueue(
        target=target,
        events=[send.event for send in sends],
        door=Door.SUITE,
        run=run,
        allow_problems=True,
        due_at=[due_at[send.step] for send in sends],
        now=now,
    )
    by_step = {}
    variants_by_step: dict[int, list[dict]] = {index: [] for index in due_at}
    for send, delivery in zip(sends, stored, strict=True):
        if not send.variant:
            by_step[send.step] = delivery
    copies = (
        deliveries_enqueue(
            target=target,
            events=[by_step[item.index].payload for item in duplicates],
            door=Door.SUITE,
            run=run,
            as_is=True,
            allow_problems=True,
            due_at=[now + timedelta(seconds=i.due_in_seconds) for i in duplicates],
            duplicates_of=[by_step[item.index] for item in duplicates],
            now=now,
        )
        if duplicates
        else []
    )
    duplicate_of_step = {
        item.index: copy.pk for item, copy in zip(duplicates, copies, strict=True)
    }
    for send, delivery in zip(sends, stored, strict=True):
        if not send.variant:
            continue
        variants_by_step[send.step].append(
            {
                "name": send.variant,
                "delivery_id": delivery.pk,
                "message_id": delivery.message_id,
            }
        )
    steps = [
        {
            "number": index + 1,
            "label": step.label(),
            "delivery_id": by_step[index].pk,
            "message_id": by_step[index].message_id,
            "event_type": by_step[index].event_type,
            "expected": results.describe_expectation(step.expect),
            **({"variants": variants_by_step[index]} if variations else {}),
            **(
                {"duplicate_id": duplicate_of_step[index]}
                if index in duplicate_of_step
                else {}
            ),
        }
        for index, step in enumerate(suite.steps)
    ]
    options = {
        "concurrency": concurrency,
        "shuffle": shuffle,
        "duplicate_rate": duplicate_rate,
        "jitter_ms": jitter_ms,
        "variations": variations,
    }
    if variations:
        options["variations_seed"] = seed
    return SuiteRun.objects.create(
        suite_name=suite.name,
        source=found.source,
        suite=found.stored,
        run=run,
        definition=fileformat.suite_document(suite),
        target_name=target.name[:200],
        endpoint_url=_sent_to(target),
        subscription=target.subscription,
        steps=steps,
        options=options,
    )


def _repeats_after_their_steps(
    plan: conditions_module.Plan, suite: fileformat.Suite
) -> conditions_module.Plan:
    """The shuffled plan, but each step that repeats an earlier step's messageId
    on purpose still goes after every step before it in the suite: sent first,
    it would be the original and the step it repeats the dropped repeat. The
    due times stay where they were; duplicates keep their delay."""
    firsts = [item for item in plan.items if not item.duplicate]
    repeating = {
        index for index, step in enumerate(suite.steps) if repeats_on_purpose(step)
    }
    order = [item.index for item in firsts if item.index not in repeating]
    for index in sorted(repeating):
        earlier = [at for at, other in enumerate(order) if other < index]
        order.insert(max(earlier, default=-1) + 1, index)
    was = {item.index: item.due_in_seconds for item in firsts}
    due = dict(zip(order, (item.due_in_seconds for item in firsts), strict=True))
    return conditions_module.Plan(
        items=[
            conditions_module.Planned(index=index, due_in_seconds=due[index])
            for index in order
        ]
        + [
            conditions_module.Planned(
                index=item.index,
                due_in_seconds=due[item.index] + item.due_in_seconds - was[item.index],
                duplicate=True,
            )
            for item in plan.items
            if item.duplicate
        ]
    )


def _faults_applied(conditions: conditions_module.Conditions, count: int) -> str:
    """The duplicates and jitter a run was given, as its applied line ends."""
    parts = []
    if conditions.duplicate_rate:
        parts.append(
            f"{count} duplicate{'' if count == 1 else 's'} injected "
            f"(rate {conditions.duplicate_rate:g})"
        )
    if conditions.jitter_ms:
        parts.append(f"jitter up to {conditions.jitter_ms} ms between steps")
    return "".join(f", {part}" for part in parts)


def _sent_to(target: Target) -> str:
    """Where the run went, as its report says: a webhook's URL, or the function
    and the version that ran (a function's endpoint URL is no destination)."""
    if target.kind != TargetKind.FUNCTION:
        return target.endpoint_url
    version = target.function_version
    return f"function {version.label}" if version is not None else "function"


@transaction.atomic
def suite_run_finish(*, suite_run: SuiteRun) -> SuiteRun:
    """Read each step's delivery against its expectation (and its variants
    against it); the verdict; what changed since the suite's last good run."""
    found = selectors.suite_run_step_results(suite_run=suite_run)
    # An endpoint may echo the key it was sent: what is kept, and what every
    # page, report and the command line show of it, has it masked; before the
    # comparison, which reads the last good run's results as they were kept.
    api_key = selectors.suite_run_api_key(suite_run=suite_run)
    for result in found:
        for part in dataclasses.fields(result):
            value = getattr(result, part.name)
            if isinstance(value, str | list | dict):
                setattr(result, part.name, mask_secret_everywhere(value, api_key))
    last_good = selectors.suite_run_last_good(
        suite_name=suite_run.suite_name, before=suite_run
    )
    if last_good is not None:
        results.changes_since(last_good.results, found)
    now = timezone.now()
    suite_run.results = [result.as_dict() for result in found]
    suite_run.passed = all(result.passed for result in found)
    suite_run.verdict = mask_secret_in(
        results.verdict(found, review=suite_run.suite_name == SEGMENT_TEST_SUITE),
        api_key,
    )
    suite_run.compared_with = last_good
    suite_run.finished_at = now
    suite_run.duration_ms = int((now - suite_run.created_at).total_seconds() * 1000)
    suite_run.save()
    return suite_run


def suite_run_finish_if_settled(*, suite_run: SuiteRun) -> SuiteRun:
    """A run sent by a server's engine is read once it has settled, once: by
    whichever read needs it first (its report, the list of runs)."""
    if suite_run.run_id is None or suite_run.passed is not None:
        return suite_run
    # Looked at outside a transaction: a running run's page takes no write lock.
    if not run_progress(run_id=suite_run.run_id).is_settled:
        return suite_run
    return _suite_run_finish_once(suite_run=suite_run)


@transaction.atomic
def _suite_run_finish_once(*, suite_run: SuiteRun) -> SuiteRun:
    # Two pages may ask at once; the second finds it read.
    current = SuiteRun.objects.select_for_update().get(pk=suite_run.pk)
    if current.passed is not None:
        return selectors.suite_run_get(pk=suite_run.pk)
    return suite_run_finish(suite_run=suite_run)


def suite_runs_finish_settled(*, limit: int = UNREAD_RUNS_CHECKED) -> int:
    """Read every recent run that has settled but not been read yet (a run
    started from the page whose report nobody opened); how many were read.
    Called by the pages that list runs, so a list never shows a settled run
    as running, and the engine's loop stays free of suite work."""
    read = 0
    for suite_run in selectors.suite_runs_unread(limit=limit):
        if suite_run_finish_if_settled(suite_run=suite_run).passed is not None:
            read += 1
    return read


async def suite_run_deliver(
    *,
    suite_run: SuiteRun,
    timeout: float | None = DEFAULT_RUN_TIMEOUT_SECONDS,
    on_progress=None,
    every: float = runs.WAIT_EVERY_SECONDS,
) -> bool:
    """Run an engine in this process until the suite's Run settles (retries
    included) or the timeout passes; False when it timed out. on_progress is
    called (from this loop) now and then while it waits."""
    engine = Engine(concurrency=max(suite_run.options.get("concurrency", 1), 1))
    stop = asyncio.Event()
    working = asyncio.create_task(engine.run_forever(stop))
    watching = asyncio.create_task(_watch(on_progress, every)) if on_progress else None
    try:
        await runs.run_wait(run_id=suite_run.run_id, timeout=timeout, every=every)
        return True
    except TimeoutError:
        return False
    finally:
        if watching is not None:
            watching.cancel()
        stop.set()
        engine.wake()
        await working
        if on_progress is not None:
            await on_progress()


async def _watch(on_progress, every: float) -> None:
    while True:
        await on_progress()
        await asyncio.sleep(max(every, 0.1))


READ_ONLY = "“{name}” is {where} and read-only; duplicate it to edit a copy."
READ_ONLY_WHERE = {SuiteSource.BUILT_IN: "built in", SuiteSource.FILE: "a file"}
NAME_TAKEN = "A suite named “{name}” already exists; choose another name."
NEW_NAME_TAKEN = (
    "A suite named “{name}” already exists; choose it from the list to add to it."
)


def _refuse_taken(name: str) -> None:
    if selectors.suite_source(name=name) is not None:
        raise SuiteRefused(NAME_TAKEN.format(name=name))


def _store(stored: StoredSuite, document: dict) -> StoredSuite:
    stored.definition = document
    stored.save(update_fields=["definition", "updated_at"])
    return stored


def _locked(stored: StoredSuite) -> StoredSuite:
    return StoredSuite.objects.select_for_update().get(pk=stored.pk)


@transaction.atomic
def suite_duplicate(*, found: selectors.FoundSuite, name: str) -> StoredSuite:
    """A stored, editable copy of any suite (the built-in one included)."""
    document = editing.renamed(fileformat.suite_document(found.suite), name=name)
    _refuse_taken(document["name"])
    return StoredSuite.objects.create(name=document["name"], definition=document)


@transaction.atomic
def suite_rename(*, stored: StoredSuite, name: str) -> StoredSuite:
    """Its runs follow it, so the comparison with its last good run carries on."""
    stored = _locked(stored)
    document = editing.renamed(stored.definition, name=name)
    if document["name"] == stored.name:
        return _store(stored, document)
    _refuse_taken(document["name"])
    SuiteRun.objects.filter(suite=stored).update(suite_name=document["name"])
    stored.name = document["name"]
    stored.definition = document
    stored.save(update_fields=["name", "definition", "updated_at"])
    return stored


@transaction.atomic
def suite_step_move(*, stored: StoredSuite, number: int, offset: int) -> StoredSuite:
    stored = _locked(stored)
    return _store(
        stored, editing.step_moved(stored.definition, number=number, offset=offset)
    )


@transaction.atomic
def suite_step_delete(*, stored: StoredSuite, number: int) -> StoredSuite:
    stored = _locked(stored)
    return _store(stored, editing.step_deleted(stored.definition, number=number))


@transaction.atomic
def suite_step_update(*, stored: StoredSuite, number: int, step: dict) -> StoredSuite:
    """Replace a step with its edited file document; all of it valid, or nothing."""
    stored = _locked(stored)
    return _store(
        stored, editing.step_replaced(stored.definition, number=number, step=step)
    )


@transaction.atomic
def suite_step_add(
    *, event: dict, stored: StoredSuite | None = None, new_name: str = ""
) -> tuple[StoredSuite, int]:
    """Add an event as the last step of a stored suite, or as the first of a new
    suite named new_name; the suite and the new step's number."""
    step = editing.event_step(event)
    if stored is not None:
        stored = _store(
            _locked(stored), editing.step_added(stored.definition, step=step)
        )
        return stored, len(stored.definition["steps"])
    document = editing.new_document(name=new_name, step=step)
    name = document["name"]
    found = selectors.suite_source(name=name)
    if found is not None and found != SuiteSource.STORED:
        raise SuiteRefused(READ_ONLY.format(name=name, where=READ_ONLY_WHERE[found]))
    if found is not None:
        raise SuiteRefused(NEW_NAME_TAKEN.format(name=name))
    return StoredSuite.objects.create(name=name, definition=document), 1
