"""Replay readiness: a short, bounded test of a subscription against the three
things Segment asks a partner before it replays data to them.

1. Timestamps: events whose `timestamp` lies in the past (an hour to years);
   which the endpoint rejected.
2. Order: one sequence of events sent in order, another (the same shape, a
   different user) shuffled, each one at a time; whether the outcomes differ.
3. Rate: steps of a few seconds each, the rate doubling until the endpoint
   answers 429 or 5xx, fails to answer, takes none of a step's events, or its
   p95 latency passes a limit; then rates between the highest it took and the
   lowest it did not, until those are within 20 %; the highest rate it
   sustained. An endpoint that answered the first step and took none of it (a
   wrong API key, a redirect) says nothing of its rate: the report cannot tell.

Every probe goes through the pipeline (deliveries in runs, whichever engine
sends them) to an ad hoc copy of the subscription with retries off and no
deduplication, so a probe never waits hours for a retry and is never dropped.
The check stores its progress as it goes: the phase it is in, each probe run as
it is created, and each part of the report as its phase ends.
"""

import dataclasses
import logging
import math
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import close_old_connections, connection, transaction
from django.db.models import Min
from django.utils import timezone

from sandbox import spec
from sandbox.delivery import queue, retry, runs, runtime, selectors
from sandbox.delivery.models import OPEN_STATES, Attempt, Delivery, Door, Run, State
from sandbox.delivery.runs import run_create
from sandbox.delivery.services import Target, deliveries_enqueue
from sandbox.replay.models import ReadinessCheck
from sandbox.subscriptions.models import Subscription

logger = logging.getLogger("sandbox.replay")

AGES = (
    ("1 hour", timedelta(hours=1)),
    ("1 day", timedelta(days=1)),
    ("30 days", timedelta(days=30)),
    ("1 year", timedelta(days=365)),
    ("3 years", timedelta(days=3 * 365)),
)
ORDER_EVENTS = 12
# Between two rate steps: an endpoint's per-second window forgets the last one;
# longer after a step it refused, whose excess may still count against the next.
STEP_PAUSE_SECONDS = 1.0
FAILED_STEP_PAUSE_SECONDS = 2.0
# A step that passed below this share of its rate was held by its concurrency.
SHORT_OF_RATE = 0.9
# A step's requests at once: a fifth of its rate at least, and enough to carry
# the rate at the p95 latency the step before saw, with this to spare (an
# endpoint answering in 300 ms takes 100 events/s only with 30 in flight).
IN_FLIGHT_SPARE = 1.5
WAIT_EVERY_SECONDS = 0.05
NOT_SETTLED = "did not settle within {seconds:g} s"
NOT_SENT_IN_TIME = (
    "Not sent: the endpoint had not answered the events before it within the "
    "check's {seconds:g} s for this question."
)
ORPHANED = (
    "The check stopped when the process running it ended (the server was "
    "stopped or restarted); run it again."
)
ORPHANED_AFTER = timedelta(minutes=15)
SUBSCRIPTION_GONE = (
    "The subscription was deleted while the check ran: it stopped there, and "
    "its endpoint got no more probes."
)
# A question's answer: yes, no, or cannot tell (the endpoint's answers were
# about something else).
YES, NO, UNKNOWN = "yes", "no", "cannot tell"
ACCEPTED_NONE = "accepted none of its {count} events ({answers})"
NONE_ACCEPTED = (
    "It accepted none of them, not even the one dated {newest} ago: the "
    "refusals are not about the timestamp (see their reasons)."
)
RECENT_ONLY = (
    "It took {accepted} events dated minutes ago (the order question's) and "
    "refused every one dated {newest} ago or earlier: it rejects events by "
    "their timestamp."
)
NO_ANSWER = (
    "The events dated {ages} ago got no answer that says (a 429, a 5xx, or none "
    "at all); check again when the endpoint takes events."
)
NOT_IN_ORDER_EITHER = (
    "It accepted {accepted} of the {events} sent in order, so what the shuffled "
    "ones got says nothing about order (see the reasons)."
)
NO_ANSWER_SHUFFLED = (
    "Shuffled events got no answer that says (a 429, a 5xx, or none at all); "
    "check again when the endpoint takes events."
)


@dataclasses.dataclass(frozen=True)
class RampOptions:
    """The rate steps: from `start` events/s, times `climb` each step, up to
    `most`, each `step_seconds` long; a step fails on any 429, 5xx or missing
    answer, when no event of it was accepted, or on a p95 latency above
    `latency_limit_ms`. After the first step that fails, the steps go between
    the highest rate that passed and the lowest that failed (their geometric
    mean) until those are within `factor` of each other. The whole ramp stops
    after `budget_seconds`."""

    start: float = 10.0
    climb: float = 2.0
    # The limit found within 20 %.
    factor: float = 1.2
    most: float = 2000.0
    step_seconds: float = 3.0
    latency_limit_ms: int = 1000
    budget_seconds: float = 90.0


class ReadinessBusy(Exception):
    """Another check runs: two at once share the machine and the engine, and
    both measure wrong."""

    def __init__(self, running: ReadinessCheck):
        super().__init__(f"readiness check {running.pk} is running")
        self.running = running


def readiness_create(*, subscription: Subscription) -> ReadinessCheck:
    """A check to run in this process (readiness_run); ReadinessBusy while
    another runs. The look and the create are one (immediate) transaction, so
    two starts at the same moment cannot both pass."""
    from sandbox.replay import selectors as replay_selectors

    readiness_end_orphans()
    with transaction.atomic():
        running = replay_selectors.readiness_running()
        if running is not None:
            raise ReadinessBusy(running)
        return ReadinessCheck.objects.create(
            subscription=subscription,
            subscription_name=subscription.name,
            endpoint_url=subscription.endpoint_url,
            runner=queue.worker_name(),
        )


def readiness_end_orphans() -> int:
    """Checks left running by a process that ended (a server stopped while
    they ran) are ended, saying so; how many."""
    ended = 0
    running = ReadinessCheck.objects.filter(status=ReadinessCheck.Status.RUNNING)
    for pk, runner, created_at in running.values_list("pk", "runner", "created_at"):
        # Made before checks named their process: long past any budget.
        stale = not runner and created_at < timezone.now() - ORPHANED_AFTER
        if stale or (runner and queue._is_dead_here(runner)):
            ended += ReadinessCheck.objects.filter(
                pk=pk, status=ReadinessCheck.Status.RUNNING
            ).update(
                status=ReadinessCheck.Status.FAILED,
                problem=ORPHANED,
                finished_at=timezone.now(),
            )
    return ended


def _probe_target(subscription: Subscription) -> Target:
    target = Target.of(subscription)
    return dataclasses.replace(
        target,
        name=f"{target.name} (replay readiness)",
        subscription=None,
        retry_policy=retry.NONE,
        dedupe_window_hours=None,
    )


def _event(user_id: str, number: int, at: datetime) -> dict:
    stamp = spec.format_timestamp(at)
    return {
        "type": "track",
        "event": "Replay Readiness Checked",
        "userId": user_id,
        "messageId": f"readiness-{uuid.uuid4()}",
        "timestamp": stamp,
        "originalTimestamp": stamp,
        "properties": {"step": number},
    }


def _send(
    target: Target,
    events: list[dict],
    *,
    label: str,
    created: Callable[[Run], None],
    concurrency: int = 5,
    strict_order: bool = False,
    rate: float | None = None,
    timeout: float = 60.0,
) -> tuple[Run, list[Delivery], bool]:
    """Events as one run through the pipeline, waited for: the run, its
    deliveries in the order given, and whether it settled in time. `created`
    hears of the run before anything is enqueued into it."""
    run = run_create(
        door=Door.READINESS,
        label=label,
        concurrency=concurrency,
        strict_order=strict_order,
    )
    created(run)
    if rate is not None:
        # Held while its events are enqueued (a tenth of a second and more for
        # a fast step), so no allowance is saved up meanwhile: the step starts
        # at its rate, not with a burst an endpoint's limit would count.
        Run.objects.filter(pk=run.pk).update(rate=rate, paused=True)
    stored = deliveries_enqueue(
        target=target,
        events=events,
        door=Door.READINESS,
        run=run,
        as_is=True,
        allow_problems=True,
    )
    if rate is not None:
        Run.objects.filter(pk=run.pk).update(paused=False, rate_clock=time.time())
        runtime.wake()
    deadline = time.monotonic() + timeout
    settled = False
    while time.monotonic() < deadline:
        if selectors.run_progress(run_id=run.pk).is_settled:
            settled = True
            break
        time.sleep(WAIT_EVERY_SECONDS)
    if not settled:
        # What has not gone out by now is not sent: the next question's events
        # would otherwise meet these at the endpoint. Those in flight land.
        stopped = Delivery.objects.filter(
            run_id=run.pk, state__in=OPEN_STATES, claimed_until=None
        ).update(
            state=State.FAILED,
            reason=NOT_SENT_IN_TIME.format(seconds=timeout),
            next_attempt_at=None,
            updated_at=timezone.now(),
        )
        if stopped:
            runtime.changed()
    by_id = Delivery.objects.in_bulk([d.pk for d in stored])
    return run, [by_id[d.pk] for d in stored], settled


def _answer(delivery: Delivery) -> dict:
    status = delivery.response_status
    ok = delivery.state in (State.DELIVERED, State.UNSUPPORTED)
    return {
        "state": delivery.state,
        "outcome": delivery.outcome,
        "status": status,
        "reason": delivery.reason,
        "ok": ok,
        # Refused for what it holds: a 4xx, but not "slow down". A 429, a 5xx
        # or no answer says nothing about the event.
        "rejected": not ok
        and status is not None
        and 400 <= status < 500
        and status != 429,
    }


def _timestamps(target: Target, now: datetime, created: Callable[[Run], None]) -> dict:
    # A user each: an endpoint that minds the order must not mix the questions.
    events = [
        _event(f"readiness-{uuid.uuid4().hex[:8]}", n, now - age)
        for n, (_, age) in enumerate(AGES)
    ]
    _, deliveries, settled = _send(
        target, events, label="Readiness: timestamps", created=created
    )
    results = [
        {"age": name, "timestamp": event["timestamp"], **_answer(delivery)}
        for (name, _), event, delivery in zip(AGES, events, deliveries, strict=True)
    ]
    rejected = [result["age"] for result in results if result["rejected"]]
    unanswered = [
        result["age"]
        for result in results
        if not result["ok"] and not result["rejected"]
    ]
    accepted = [result["age"] for result in results if result["ok"]]
    passed = settled and not rejected and not unanswered
    if passed or (rejected and accepted):
        verdict = YES if passed else NO
        problem = "" if settled else NOT_SETTLED.format(seconds=60)
    elif not accepted and rejected and not unanswered:
        # The newest was refused too: the refusals are about something else.
        verdict, problem = UNKNOWN, NONE_ACCEPTED.format(newest=AGES[0][0])
    else:
        verdict, problem = UNKNOWN, NO_ANSWER.format(ages=", ".join(unanswered))
    return {
        "results": results,
        "rejected": rejected,
        "unanswered": unanswered,
        "passed": passed,
        "verdict": verdict,
        "problem": problem,
    }


def _order(
    target: Target,
    now: datetime,
    rng: random.Random,
    created: Callable[[Run], None],
) -> dict:
    times = [now - timedelta(minutes=ORDER_EVENTS - n) for n in range(ORDER_EVENTS)]
    ordered_user = f"readiness-ordered-{uuid.uuid4().hex[:8]}"
    shuffled_user = f"readiness-shuffled-{uuid.uuid4().hex[:8]}"
    ordered = [_event(ordered_user, n, at) for n, at in enumerate(times)]
    shuffled = [_event(shuffled_user, n, at) for n, at in enumerate(times)]
    rng.shuffle(shuffled)
    _, in_order, settled_a = _send(
        target,
        ordered,
        label="Readiness: in order",
        created=created,
        strict_order=True,
    )
    _, out_of_order, settled_b = _send(
        target,
        shuffled,
        label="Readiness: shuffled",
        created=created,
        strict_order=True,
    )
    answers = Counter(d.response_status for d in in_order + out_of_order)
    ok_in_order = sum(_answer(d)["ok"] for d in in_order)
    ok_shuffled = sum(_answer(d)["ok"] for d in out_of_order)
    failed_shuffled = [
        {"step": event["properties"]["step"], **_answer(delivery)}
        for event, delivery in zip(shuffled, out_of_order, strict=True)
        if not _answer(delivery)["ok"]
    ]
    settled = settled_a and settled_b
    passed = settled and ok_in_order == ok_shuffled == ORDER_EVENTS
    # Order is to blame only when the ordered sequence went through whole and
    # the shuffled one was refused for what it held (not a 429, a 5xx or no
    # answer, which say nothing about order).
    order_matters = (
        ok_in_order == ORDER_EVENTS
        and ok_shuffled < ok_in_order
        and any(row["rejected"] for row in failed_shuffled)
    )
    if passed or order_matters:
        verdict = YES if passed else NO
        problem = "" if settled else NOT_SETTLED.format(seconds=60)
    elif ok_in_order < ORDER_EVENTS:
        verdict = UNKNOWN
        problem = NOT_IN_ORDER_EITHER.format(accepted=ok_in_order, events=ORDER_EVENTS)
    else:
        verdict = UNKNOWN
        problem = NO_ANSWER_SHUFFLED if settled else NOT_SETTLED.format(seconds=60)
    return {
        "events": ORDER_EVENTS,
        "ok_in_order": ok_in_order,
        "ok_shuffled": ok_shuffled,
        "failed_shuffled": failed_shuffled,
        "passed": passed,
        "order_matters": order_matters,
        # How many got each status (None: no answer), for _accepted_none.
        "answers": [[status, n] for status, n in answers.items()],
        "verdict": verdict,
        "problem": problem,
    }


def _timestamps_given_order(timestamps: dict, order: dict) -> dict:
    """Every dated probe refused (a 4xx) and none taken says nothing alone;
    but when the order question's events, dated minutes ago, were taken, the
    refusals are about the timestamp: the answer is no."""
    if (
        timestamps["verdict"] == UNKNOWN
        and timestamps["rejected"]
        and len(timestamps["rejected"]) == len(timestamps["results"])
        and order["ok_in_order"]
    ):
        return {
            **timestamps,
            "verdict": NO,
            "problem": RECENT_ONLY.format(
                accepted=order["ok_in_order"], newest=AGES[0][0]
            ),
        }
    return timestamps


def _accepted_none(timestamps: dict, order: dict) -> dict | None:
    """When the endpoint took none of the first two questions' events (a wrong
    API key, an endpoint down): how many, and what they got, which is then the
    report's first news. None when it took any."""
    if order["ok_in_order"] or order["ok_shuffled"]:
        return None
    if any(result["ok"] for result in timestamps["results"]):
        return None
    answers = Counter(result["status"] for result in timestamps["results"])
    for status, n in order["answers"]:
        answers[status] += n
    return {
        "probes": sum(answers.values()),
        "answers": [
            f"{n} answered {status}" if status is not None else f"{n} got no answer"
            for status, n in answers.most_common()
        ],
    }


def _percentile(values: list[int], share: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def step_concurrency(rate: float, latency_ms: int | None) -> int:
    """The requests a step sends at once: a fifth of its rate, or what carries
    the rate at `latency_ms` (the step before's p95) with IN_FLIGHT_SPARE;
    5 at least, the sandbox's most at most."""
    wanted = max(5, int(rate / 5))
    if latency_ms:
        wanted = max(wanted, math.ceil(rate * latency_ms / 1000 * IN_FLIGHT_SPARE))
    return min(runs.CONCURRENCY_MOST, wanted)


def _step(
    target: Target,
    rate: float,
    options: RampOptions,
    now: datetime,
    created: Callable[[Run], None],
    latency_ms: int | None = None,
) -> dict:
    count = max(5, int(rate * options.step_seconds))
    user = f"readiness-rate-{uuid.uuid4().hex[:8]}"
    events = [_event(user, n, now) for n in range(count)]
    concurrency = step_concurrency(rate, latency_ms)
    run, deliveries, settled = _send(
        target,
        events,
        label=f"Readiness: {rate:g} events/s",
        created=created,
        concurrency=concurrency,
        rate=rate,
        timeout=options.step_seconds * 4 + 10,
    )
    statuses = [d.response_status for d in deliveries]
    answers = [_answer(d) for d in deliveries]
    accepted = sum(1 for answer in answers if answer["ok"])
    refused = sum(1 for s in statuses if s == 429)
    server_errors = sum(1 for s in statuses if s is not None and s >= 500)
    unanswered = sum(
        1 for d in deliveries if d.response_status is None and d.attempt_count
    )
    latencies = [d.latency_ms for d in deliveries if d.latency_ms is not None]
    p95 = _percentile(latencies, 0.95)
    # The pace the endpoint took them at: from its first answer to its last (a
    # row is claimed, its attempt's start written, ahead of its slot, so the
    # starts would count the claims' pace when the concurrency holds; and from
    # the first request, a slow endpoint's latency would count as a gap).
    # Answers that all came at once: from the first request instead.
    answered = [d.updated_at for d in deliveries if d.attempt_count]
    first = min(answered, default=None)
    last = max(answered, default=None)
    if first is not None and last <= first:
        first = Attempt.objects.filter(delivery__run_id=run.pk).aggregate(
            first=Min("started_at")
        )["first"]
    seconds = (last - first).total_seconds() if first and last else 0.0
    achieved = (len(answered) - 1) / seconds if seconds > 0 else 0.0
    failures = []
    if refused:
        failures.append(f"{refused} answered 429")
    if server_errors:
        failures.append(f"{server_errors} answered 5xx")
    if unanswered:
        failures.append(f"{unanswered} not answered")
    if p95 is not None and p95 > options.latency_limit_ms:
        failures.append(f"p95 latency {p95} ms over {options.latency_limit_ms} ms")
    if not settled:
        failures.append("did not finish in time")
    # Answered, and none taken (refused for what it held, a wrong key, say,
    # or redirected): no rate is read from that.
    accepted_none = bool(answers) and not accepted and not failures
    if accepted_none:
        failures.append(
            ACCEPTED_NONE.format(
                count=count,
                answers=", ".join(
                    f"{n} answered {status}"
                    for status, n in Counter(statuses).most_common()
                ),
            )
        )
    return {
        "rate": rate,
        "events": count,
        "achieved": round(achieved, 1),
        # Passed below the rate asked: its requests in flight, at the endpoint's
        # latency, carried no more (the sandbox's limit, not the endpoint's).
        "short": not failures and achieved < SHORT_OF_RATE * rate,
        "concurrency": concurrency,
        "at_most": concurrency >= runs.CONCURRENCY_MOST,
        "p50_ms": _percentile(latencies, 0.5),
        "p95_ms": p95,
        "refused": refused,
        "server_errors": server_errors,
        "accepted_none": accepted_none,
        "passed": not failures,
        "failures": failures,
    }


def _ramp(
    target: Target,
    options: RampOptions,
    now: datetime,
    created: Callable[[Run], None],
) -> dict:
    """Rising steps until one fails (or `most` passes), then steps between the
    highest that passed and the lowest that failed until those are within
    `factor`: from 10 to 2,000 events/s in nine steps, a limit within 20 % in
    three more (steps 20 % apart had reached 550 events/s when 90 s ran out)."""
    started = time.monotonic()
    steps: list[dict] = []
    passed: dict | None = None  # the highest rate that passed
    failed: dict | None = None  # the lowest that failed
    rate = options.start
    out_of_time = False
    while True:
        if time.monotonic() - started > options.budget_seconds:
            out_of_time = True
            break
        step = _step(
            target,
            round(rate, 1),
            options,
            now,
            created,
            latency_ms=steps[-1]["p95_ms"] if steps else None,
        )
        steps.append(step)
        if step["passed"]:
            passed = step
        else:
            failed = step
        if failed is None:
            if rate >= options.most - 1e-9:
                break
            rate = min(rate * options.climb, options.most)
        elif passed is None or failed["rate"] / passed["rate"] <= options.factor:
            break
        else:
            rate = math.sqrt(passed["rate"] * failed["rate"])
        time.sleep(STEP_PAUSE_SECONDS if step["passed"] else FAILED_STEP_PAUSE_SECONDS)
    sustained = (
        min(passed["rate"], passed["achieved"] or passed["rate"]) if passed else 0.0
    )
    return {
        "steps": steps,
        "sustained": round(sustained, 1),
        "limit": failed,
        "reached_most": failed is None and bool(steps) and not out_of_time,
        # The first step's events were answered, and none taken.
        "cannot_tell": bool(steps) and steps[0]["accepted_none"],
        # The time budget ended the ramp before any step failed: the endpoint
        # took at least the last rate tried, perhaps more.
        "out_of_time": failed is None and out_of_time,
        # The time budget ended the narrowing: the limit lies between these.
        "between": (
            [passed["rate"], failed["rate"]]
            if out_of_time and passed and failed
            else None
        ),
        "budget_seconds": options.budget_seconds,
        "latency_limit_ms": options.latency_limit_ms,
        "most": options.most,
        "within_percent": round((options.factor - 1) * 100),
        # The rate reported was held by the step's concurrency, not refused.
        "held": passed if passed is not None and passed.get("short") else None,
    }


class _Stopped(Exception):
    """The check cannot go on, for a reason its report says."""


class _Progress:
    """Stores how far the check got, as it gets there: its phase with the
    report so far, and each probe run once created (so its page follows this
    check's own runs, whatever else runs at the same time). Before each phase
    and each probe run it looks whether the subscription is still there: a
    deleted one's endpoint gets no more probes (_Stopped)."""

    def __init__(self, check: ReadinessCheck):
        self.check = check
        self.subscription_id = check.subscription_id

    def _subscription_still_there(self) -> None:
        if not Subscription.objects.filter(pk=self.subscription_id).exists():
            raise _Stopped(SUBSCRIPTION_GONE)

    def _store(self, *fields: str) -> None:
        ReadinessCheck.objects.filter(pk=self.check.pk).update(
            **{name: getattr(self.check, name) for name in fields}
        )

    def phase(self, phase: str, report: dict) -> None:
        self._subscription_still_there()
        self.check.phase = phase
        self.check.report = dict(report)
        self._store("phase", "report")

    def created(self, run: Run) -> None:
        self._subscription_still_there()
        self.check.probe_runs = [
            *self.check.probe_runs,
            {"run": run.pk, "phase": self.check.phase},
        ]
        self._store("probe_runs")


def readiness_run(
    *,
    check_id: int,
    options: RampOptions | None = None,
    rng: random.Random | None = None,
) -> ReadinessCheck:
    """Run the three probes (blocking: a thread or a command), storing the
    report part by part as each phase ends. An engine must be running (the
    server's, or the caller's)."""
    check = ReadinessCheck.objects.select_related("subscription").get(pk=check_id)
    ReadinessCheck.objects.filter(pk=check.pk).update(runner=queue.worker_name())
    options = options or RampOptions()
    rng = rng or random.Random()
    progress = _Progress(check)
    report: dict = {}
    try:
        if check.subscription is None:
            raise ValueError("the subscription was deleted")
        target = _probe_target(check.subscription)
        now = timezone.now()
        progress.phase("timestamps", report)
        report["timestamps"] = _timestamps(target, now, progress.created)
        progress.phase("order", report)
        report["order"] = _order(target, now, rng, progress.created)
        report["timestamps"] = _timestamps_given_order(
            report["timestamps"], report["order"]
        )
        accepted_none = _accepted_none(report["timestamps"], report["order"])
        if accepted_none is not None:
            report["accepted_none"] = accepted_none
        progress.phase("rate", report)
        report["rate"] = _ramp(target, options, now, progress.created)
        check.status = ReadinessCheck.Status.DONE
    except _Stopped as stopped:
        check.status = ReadinessCheck.Status.FAILED
        check.problem = str(stopped)
    except Exception as error:
        logger.exception("readiness check %s failed", check_id)
        check.status = ReadinessCheck.Status.FAILED
        check.problem = str(error)[:500]
    check.report = report
    check.finished_at = timezone.now()
    check.save(update_fields=["report", "status", "problem", "finished_at"])
    return check


def readiness_run_in_background(*, check_id: int, **kwargs) -> threading.Thread:
    def run() -> None:
        try:
            readiness_run(check_id=check_id, **kwargs)
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=run, name=f"readiness-{check_id}", daemon=True)
    thread.start()
    return thread
