"""Reads for replays: the list, one replay, and its progress figures; a
readiness check's progress."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from sandbox.delivery import queue
from sandbox.delivery.models import OPEN_STATES, Delivery, Door, Run, State
from sandbox.replay.models import ReadinessCheck, Replay

# The current rate is measured over this window.
CURRENT_RATE_SECONDS = 5
# Latency percentiles are taken over the newest this many answered deliveries.
LATENCY_SAMPLE = 2000
REPLAYS_LISTED = 50


def replay_list(*, limit: int = REPLAYS_LISTED) -> list[Replay]:
    return list(Replay.objects.select_related("run", "subscription", "target")[:limit])


def replay_get(*, pk: int) -> Replay:
    return Replay.objects.select_related("run", "subscription", "target").get(pk=pk)


def readiness_list(*, limit: int = REPLAYS_LISTED) -> list[ReadinessCheck]:
    return list(ReadinessCheck.objects.all()[:limit])


def readiness_get(*, pk: int) -> ReadinessCheck:
    return ReadinessCheck.objects.get(pk=pk)


# The readiness check's probes are runs labelled so (sandbox.replay.readiness),
# sent to a copy of the subscription named so.
READINESS_LABEL = "Readiness: "
READINESS_TARGET_NAME = "{name} (replay readiness)"
READINESS_PHASES = {
    "timestamps": "timestamps",
    "in order": "order",
    "shuffled": "order",
}


@dataclass(frozen=True)
class ReadinessProbe:
    """One probe run of a check: what it sends and how far it got."""

    label: str
    phase: str
    events: int
    settled: int
    accepted: int

    @property
    def refused(self) -> int:
        return self.settled - self.accepted


@dataclass(frozen=True)
class ReadinessProgress:
    # "starting", "timestamps", "order", "rate", then "done" or "failed".
    phase: str
    probes: list[ReadinessProbe]

    @property
    def running(self) -> bool:
        return self.phase not in ("done", "failed")


def readiness_progress(*, check: ReadinessCheck) -> ReadinessProgress:
    """Where a check stands, read from its probe runs (the report is stored only
    at the end): the phase it is in and each probe's counts so far. Two
    queries."""
    if check.status != ReadinessCheck.Status.RUNNING:
        return ReadinessProgress(phase=check.status, probes=[])
    runs = Run.objects.filter(
        door=Door.REPLAY,
        label__startswith=READINESS_LABEL,
        created_at__gte=check.created_at,
        deliveries__target__name=READINESS_TARGET_NAME.format(
            name=check.subscription_name
        ),
        deliveries__target__endpoint_url=check.endpoint_url,
    )
    labels = dict(runs.order_by().values_list("id", "label").distinct())
    counts: dict[int, dict[str, int]] = {pk: {} for pk in labels}
    for run_id, state, number in (
        Delivery.objects.filter(run_id__in=labels)
        .order_by()
        .values_list("run_id", "state")
        .annotate(number=Count("id"))
    ):
        counts[run_id][state] = number
    probes = []
    for pk in sorted(labels):
        label = labels[pk].removeprefix(READINESS_LABEL)
        states = counts[pk]
        events = sum(states.values())
        still_open = sum(states.get(state, 0) for state in OPEN_STATES)
        probes.append(
            ReadinessProbe(
                label=label,
                phase=READINESS_PHASES.get(label, "rate"),
                events=events,
                settled=events - still_open,
                accepted=states.get(State.DELIVERED, 0)
                + states.get(State.UNSUPPORTED, 0),
            )
        )
    phase = probes[-1].phase if probes else "starting"
    return ReadinessProgress(phase=phase, probes=probes)


def replay_of_run(*, run_id: int) -> Replay | None:
    return (
        Replay.objects.select_related("run", "subscription", "target")
        .filter(run_id=run_id)
        .first()
    )


@dataclass(frozen=True)
class ReplayProgress:
    read: int
    bad: int
    enqueued: int
    sent: int
    delivered: int
    unsupported: int
    retrying: int
    failed: int
    pending: int
    deduplicated: int
    settled: int
    throttled: int
    slowed_to: float
    current_rate: float
    average_rate: float
    latency_p50: int | None
    latency_p95: int | None
    # Of the events the whole source holds (an estimate while it is being read).
    expected: int
    eta_seconds: float | None
    status: str
    finished: bool
    seconds: float

    @property
    def percent(self) -> int:
        if not self.expected:
            return 100 if self.finished else 0
        return min(100, int(100 * self.settled / self.expected))

    @property
    def red(self) -> int:
        return self.failed


def _percentile(ordered: list[int], share: float) -> int | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def replay_progress(*, replay: Replay) -> ReplayProgress:
    """Where a replay stands: counts by outcome (one grouped count), the rate of
    the last few seconds and on average, latency percentiles, the time left."""
    run_id = replay.run_id
    counts = dict(
        Delivery.objects.filter(run_id=run_id)
        .order_by()
        .values_list("state")
        .annotate(number=Count("id"))
    )
    sent = (
        Delivery.objects.filter(run_id=run_id, attempt_count__gt=0).order_by().count()
    )
    delivered = counts.get(State.DELIVERED, 0)
    unsupported = counts.get(State.UNSUPPORTED, 0)
    failed = counts.get(State.FAILED, 0) + counts.get(State.DISCARDED, 0)
    retrying = counts.get(State.RETRYING, 0)
    pending = counts.get(State.PENDING, 0)
    enqueued = sum(counts.values())
    settled = enqueued - retrying - pending
    now = timezone.now()
    recent = (
        Delivery.objects.filter(
            run_id=run_id,
            updated_at__gte=now - timedelta(seconds=CURRENT_RATE_SECONDS),
        )
        .filter(~Q(state__in=[State.PENDING, State.RETRYING]))
        .order_by()
        .count()
    )
    run = replay.run
    end = run.settled_at if run.settled_at and replay.fed_at else now
    seconds = max((end - replay.created_at).total_seconds(), 1e-3)
    latencies = sorted(
        Delivery.objects.filter(run_id=run_id, latency_ms__isnull=False)
        .order_by("-id")
        .values_list("latency_ms", flat=True)[:LATENCY_SAMPLE]
    )
    if replay.fed_at is not None or not replay.bytes_read:
        expected = replay.events_read
    else:
        share = replay.bytes_read / max(replay.file_size, 1)
        expected = int(replay.events_read / share) if share else replay.events_read
    expected -= replay.duplicates_skipped
    finished = replay.fed_at is not None and settled == enqueued
    current = recent / CURRENT_RATE_SECONDS
    left = max(expected - settled, 0)
    eta = left / current if current > 0 and left else (0.0 if finished else None)
    return ReplayProgress(
        read=replay.events_read,
        bad=replay.bad_count,
        enqueued=enqueued,
        sent=sent,
        delivered=delivered,
        unsupported=unsupported,
        retrying=retrying,
        failed=failed,
        pending=pending,
        deduplicated=counts.get(State.DEDUPLICATED, 0),
        settled=settled,
        throttled=run.throttled_count,
        slowed_to=queue.throttle_factor(
            run.throttle_factor, run.throttled_at, now.timestamp()
        ),
        current_rate=current,
        average_rate=settled / seconds,
        latency_p50=_percentile(latencies, 0.50),
        latency_p95=_percentile(latencies, 0.95),
        expected=max(expected, enqueued),
        eta_seconds=eta,
        status=_status(replay, finished),
        finished=finished,
        seconds=seconds,
    )


def replay_status(*, replay: Replay) -> str:
    """replay_progress's status alone, without counting the run's deliveries:
    one indexed look for an open one (for a caller that asks often)."""
    still_open = (
        Delivery.objects.filter(
            run_id=replay.run_id, state__in=[State.PENDING, State.RETRYING]
        )
        .order_by()
        .exists()
    )
    return _status(replay, replay.fed_at is not None and not still_open)


def _status(replay: Replay, finished: bool) -> str:
    if replay.status == Replay.Status.CANCELLED:
        return "cancelled"
    if finished:
        return "finished"
    if replay.status == Replay.Status.PAUSED:
        return "paused"
    if replay.problem:
        return "stopped"
    if replay.fed_at is None and (
        not replay.feeder or queue._is_dead_here(replay.feeder)
    ):
        return "interrupted"
    return "reading" if replay.fed_at is None else "sending"
