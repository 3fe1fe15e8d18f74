"""Writes for suites: import and export of suite files, storing suites, and runs.

A run is a run of the pipeline: one bulk deliveries_enqueue into a Run, waited
with runs.run_wait, the results read from the stored deliveries.
"""

import asyncio
import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from sandbox.delivery import conditions as conditions_module
from sandbox.delivery import runs
from sandbox.delivery.engine import Engine
from sandbox.delivery.models import Door
from sandbox.delivery.selectors import run_progress
from sandbox.delivery.services import Target, deliveries_enqueue
from sandbox.delivery.webhook import error_message
from sandbox.suites import fileformat, results, selectors
from sandbox.suites.builtin import BUILT_IN, SEGMENT_TEST_SUITE
from sandbox.suites.events import suite_events
from sandbox.suites.models import Suite as StoredSuite
from sandbox.suites.models import SuiteRun

BUILT_IN_READ_ONLY = "{name!r} is built in and read-only; give your suite another name."
SUITE_EXISTS = (
    "A suite named {name!r} is already stored; import it with replace to overwrite it."
)
RUN_LABEL = "suite: {name}"
APPLIED = "{count} step{s}, concurrency {concurrency}, {order}{strict}"
DEFAULT_RUN_TIMEOUT_SECONDS = 300.0


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
    rng: random.Random | None = None,
) -> SuiteRun:
    """Enqueue every step of the suite into one Run, in one transaction.

    Concurrency 1 (the default) is strict order, as Segment's tester sends:
    each step's final outcome, retries included, before the next goes out.
    Shuffled, the steps go out in a random order (the plan of
    sandbox.delivery.conditions); their ids follow that order.
    """
    suite = found.suite
    conditions = conditions_module.Conditions(
        copies=len(suite.steps), concurrency=concurrency, shuffle=shuffle
    )
    problems = conditions.problems()
    if problems:
        raise SuiteRefused(" ".join(problems))
    now = timezone.now()
    events, _ = suite_events(suite, now=now, rng=rng)
    plan = conditions_module.plan(len(events), conditions, rng=rng)
    run = runs.run_create(
        door=Door.SUITE,
        label=RUN_LABEL.format(name=suite.name)[:200],
        concurrency=concurrency,
        conditions={"concurrency": concurrency, "shuffle": shuffle},
        applied=APPLIED.format(
            count=len(events),
            s="" if len(events) == 1 else "s",
            concurrency=concurrency,
            order="shuffled" if shuffle else "in order",
            strict=", each settled before the next" if concurrency == 1 else "",
        ),
        strict_order=concurrency == 1,
    )
    order = [item.index for item in plan.items]
    stored = deliveries_enqueue(
        target=target,
        events=[events[index] for index in order],
        door=Door.SUITE,
        run=run,
        allow_problems=True,
        due_at=[now + timedelta(seconds=item.due_in_seconds) for item in plan.items],
        now=now,
    )
    by_step = dict(zip(order, stored, strict=True))
    steps = [
        {
            "number": index + 1,
            "label": step.label(),
            "delivery_id": by_step[index].pk,
            "message_id": by_step[index].message_id,
            "event_type": by_step[index].event_type,
            "expected": results.describe_expectation(step.expect),
        }
        for index, step in enumerate(suite.steps)
    ]
    return SuiteRun.objects.create(
        suite_name=suite.name,
        source=found.source,
        suite=found.stored,
        run=run,
        definition=fileformat.suite_document(suite),
        target_name=target.name[:200],
        endpoint_url=target.endpoint_url,
        steps=steps,
        options={"concurrency": concurrency, "shuffle": shuffle},
    )


def _actual(delivery) -> results.Actual:
    attempt = selectors.last_attempt(delivery)
    message = ""
    body = ""
    if attempt is not None and attempt.response_status is not None:
        body = attempt.response_body
        content_type = next(
            (v for n, v in attempt.response_headers if n.lower() == "content-type"),
            "",
        )
        message = error_message(body, content_type)
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


@transaction.atomic
def suite_run_finish(*, suite_run: SuiteRun) -> SuiteRun:
    """Read each step's delivery against its expectation; the verdict; what
    changed since the suite's last good run."""
    suite = fileformat.suite_from_document(suite_run.definition)
    deliveries = selectors.suite_run_deliveries(suite_run=suite_run)
    found = []
    for step, planned in zip(suite.steps, suite_run.steps, strict=True):
        delivery = deliveries.get(planned["delivery_id"])
        actual = (
            _actual(delivery)
            if delivery is not None
            else results.Actual(state="deleted", reason="the delivery was deleted")
        )
        found.append(
            results.step_result(
                number=planned["number"],
                label=planned["label"],
                event_type=planned["event_type"],
                message_id=planned["message_id"],
                delivery_id=planned["delivery_id"],
                expect=step.expect,
                actual=actual,
            )
        )
    last_good = selectors.suite_run_last_good(
        suite_name=suite_run.suite_name, before=suite_run
    )
    if last_good is not None:
        results.changes_since(last_good.results, found)
    now = timezone.now()
    suite_run.results = [result.as_dict() for result in found]
    suite_run.passed = all(result.passed for result in found)
    suite_run.verdict = results.verdict(
        found, review=suite_run.suite_name == SEGMENT_TEST_SUITE
    )
    suite_run.compared_with = last_good
    suite_run.finished_at = now
    suite_run.duration_ms = int((now - suite_run.created_at).total_seconds() * 1000)
    suite_run.save()
    return suite_run


def suite_run_finish_if_settled(*, suite_run: SuiteRun) -> SuiteRun:
    """A run sent by a server's engine is read once it has settled (a page
    asking for its report is the first to need it)."""
    if suite_run.run_id is None:
        return suite_run
    if run_progress(run_id=suite_run.run_id).is_settled:
        return suite_run_finish(suite_run=suite_run)
    return suite_run


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
