"""Reads for replays: the list, one replay, and its progress figures; a
readiness check's progress."""

import math
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.db import connection
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from sandbox.delivery import queue
from sandbox.delivery.models import OPEN_STATES, Delivery, Run, State
from sandbox.replay.models import LaneItem, ReadinessCheck, Replay
from sandbox.replay.services import MAX_CONCURRENCY, HistoryFilters
from sandbox.sources.models import Source
from sandbox.subscriptions.models import Subscription

# The current rate is measured over this window.
CURRENT_RATE_SECONDS = 5
# The statuses in which a replay gets on by itself, so a time left means something.
MOVING = frozenset({"reading", "sending", "shuffling", "finished"})
# Latency percentiles are taken over the newest this many answered deliveries.
LATENCY_SAMPLE = 2000
REPLAYS_LISTED = 50


def replay_list(*, limit: int = REPLAYS_LISTED) -> list[Replay]:
    return list(Replay.objects.select_related("run", "subscription", "target")[:limit])


def replay_get(*, pk: int) -> Replay:
    return Replay.objects.select_related("run", "subscription", "target").get(pk=pk)


def replay_chosen_by(*, replay: Replay) -> list[str]:
    """What a history replay's filters chose, as a person reads them (empty for
    a file, or history taken whole). A subscription or a source deleted since
    is said so."""
    if replay.source == Replay.Source.FILE:
        return []
    filters = HistoryFilters.of_json(replay.history_filters)
    said = []
    if filters.since:
        said.append(f"from {_in_utc(filters.since):%Y-%m-%d %H:%M} UTC")
    if filters.until:
        said.append(f"until {_in_utc(filters.until):%Y-%m-%d %H:%M} UTC")
    if filters.event_type:
        said.append(f"type {filters.event_type}")
    if filters.event_name:
        said.append(f"event name “{filters.event_name}”")
    if filters.subscription_id:
        name = (
            Subscription.objects.filter(pk=filters.subscription_id)
            .values_list("name", flat=True)
            .first()
        )
        verb = "delivered to" if filters.ingested else "sent to"
        said.append(f"{verb} {name or 'a subscription since deleted'}")
    if filters.source_id:
        name = (
            Source.objects.filter(pk=filters.source_id)
            .values_list("name", flat=True)
            .first()
        )
        said.append(f"came in through {name or 'a source since deleted'}")
    return said


def _in_utc(moment: datetime) -> datetime:
    """A moment given with an offset, as the sandbox shows times: in UTC."""
    if timezone.is_naive(moment):
        return moment
    return moment.astimezone(UTC)


def readiness_list(*, limit: int = REPLAYS_LISTED) -> list[ReadinessCheck]:
    """The latest checks. A page ends those whose process ended while they
    ran first (readiness.readiness_end_orphans)."""
    return list(ReadinessCheck.objects.all()[:limit])


def readiness_get(*, pk: int) -> ReadinessCheck:
    return ReadinessCheck.objects.get(pk=pk)


def readiness_running() -> ReadinessCheck | None:
    """The check running now, if any: two at once share the machine and the
    engine, and both measure wrong."""
    running = ReadinessCheck.objects.filter(status=ReadinessCheck.Status.RUNNING)
    return running.order_by("created_at", "pk").first()


def readiness_took(*, check: ReadinessCheck) -> str:
    """How long a finished check took, as a person reads it ("" while it runs):
    seconds under a minute, minutes and seconds beyond."""
    if check.finished_at is None:
        return ""
    seconds = max(round((check.finished_at - check.created_at).total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"


# The readiness check labels its probe runs so (sandbox.replay.readiness).
READINESS_LABEL = "Readiness: "


@dataclass(frozen=True)
class ReadinessProbe:
    """One probe run of a check: what it sends and how far it got."""

    run_id: int
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
    """Where a check stands, as it stored it: the phase it is in, and the
    counts so far of its own probe runs, read by id. Two queries."""
    if check.status != ReadinessCheck.Status.RUNNING:
        return ReadinessProgress(phase=check.status, probes=[])
    phases = {probe["run"]: probe["phase"] for probe in check.probe_runs}
    labels = dict(Run.objects.filter(pk__in=phases).values_list("id", "label"))
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
        states = counts[pk]
        events = sum(states.values())
        still_open = sum(states.get(state, 0) for state in OPEN_STATES)
        probes.append(
            ReadinessProbe(
                run_id=pk,
                label=labels[pk].removeprefix(READINESS_LABEL),
                phase=phases[pk],
                events=events,
                settled=events - still_open,
                accepted=states.get(State.DELIVERED, 0)
                + states.get(State.UNSUPPORTED, 0),
            )
        )
    return ReadinessProgress(phase=check.phase or "starting", probes=probes)


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
    # How far through its file the replay has read (a shuffled replay's first
    # pass, "shuffling", reads it all before it sends).
    bytes_read: int = 0
    file_size: int = 0
    # The controls it was started with: events/s asked (None: unlimited), and
    # requests in flight at most.
    rate: float | None = None
    concurrency: int = 0
    # What its source holds one of: "line", "element", "delivery", "event".
    unit: str = "line"
    # Until when the endpoint's Retry-After holds every send (UTC), while it
    # does; None otherwise.
    held_until: datetime | None = None

    @property
    def percent(self) -> int:
        if not self.expected:
            return 100 if self.finished else 0
        return min(100, int(100 * self.settled / self.expected))

    @property
    def red(self) -> int:
        return self.failed

    @property
    def units(self) -> str:
        """What its source holds, several of them: "lines", "deliveries"."""
        if self.unit.endswith("y"):
            return self.unit[:-1] + "ies"
        return self.unit + "s"

    @property
    def held_by_concurrency(self) -> "HeldBack | None":
        """When its concurrency, not its rate, holds the replay back: the events
        per second its requests in flight carry at the endpoint's median
        latency, and the concurrency that would carry the rate asked (with a
        fifth to spare, at most MAX_CONCURRENCY), or what MAX_CONCURRENCY
        carries when even that falls short of the rate. None otherwise: no rate
        asked, not sending, slowed by 429s, or no latency measured yet."""
        if (
            not self.rate
            or self.status not in ("reading", "sending")
            or self.slowed_to < 1
            or not self.latency_p50
            or not self.concurrency
        ):
            return None
        carried = self.concurrency * 1000 / self.latency_p50
        if carried >= 0.9 * self.rate:
            return None
        needed = math.ceil(self.rate * self.latency_p50 / 1000 * 1.2)
        most_carry = MAX_CONCURRENCY * 1000 / self.latency_p50
        if most_carry < self.rate:
            return HeldBack(int(carried), MAX_CONCURRENCY, int(most_carry))
        return HeldBack(int(carried), min(needed, MAX_CONCURRENCY))


class HeldBack(NamedTuple):
    """A replay its concurrency holds back (ReplayProgress.held_by_concurrency)."""

    # Events/s its requests in flight carry at the endpoint's median latency.
    carried: int
    # The concurrency that would carry the rate asked, at most MAX_CONCURRENCY.
    needed: int
    # Set when even MAX_CONCURRENCY cannot carry that rate: what it carries.
    most_carry: int | None = None


def _percentile(ordered: list[int], share: float) -> int | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# A run's rows in a final state stay in it: of all the writes to a delivery,
# only resuming a cancelled replay reopens a final row (its cancelled ones), and
# a stopped row whose attempt is still in flight stays claimed until it lands
# (but for deliveries_stop_for_deleted_subscription, which frees the claim at
# once: an attempt landing after that is missed from `sent`). So what was
# counted of a run's rows up to its lowest open or claimed id is remembered, and
# only the rows above it are counted again. A deleted row is found by counting
# the rows below, by index alone, every RECOUNT_SECONDS, or less often for a run
# so large that the count would take more than 1/RECOUNT_SHARE of the time.
COUNTED_RUNS = 64
RECOUNT_SECONDS = 5.0
RECOUNT_SHARE = 50
# Written out, not bound: SQLite uses the partial index on a run's open rows
# (delivery_run_open_in_order) only when the query spells out its condition.
_FIRST_OPEN = (
    f"SELECT id FROM {Delivery._meta.db_table} WHERE run_id = %s "
    "AND state IN ('pending', 'retrying') ORDER BY id LIMIT 1"
)
# Above every id: no row is left out of a count "up to" it.
_NO_LIMIT = 2**62


@dataclass(frozen=True)
class _Counted:
    """A run's rows with ids up to `upto`, counted when each was final and
    had no attempt in flight."""

    # The run's: an id reused (a test database rolled back) is another run.
    run_created_at: datetime
    upto: int
    states: tuple[tuple[str, int], ...]
    sent: int
    rows: int
    # When `rows` is next compared with the table (time.monotonic()).
    recount_at: float
    # The replay's (status, updated_at) when counted, if it was cancelled then:
    # resuming reopens rows, and changes both.
    cancelled_as: tuple | None


_counted: OrderedDict[int, _Counted] = OrderedDict()
_counted_lock = threading.Lock()


def _remembered(run_id: int) -> _Counted | None:
    with _counted_lock:
        found = _counted.get(run_id)
        if found is not None:
            _counted.move_to_end(run_id)
        return found


def _remember(run_id: int, counted: _Counted) -> None:
    with _counted_lock:
        _counted[run_id] = counted
        _counted.move_to_end(run_id)
        while len(_counted) > COUNTED_RUNS:
            _counted.popitem(last=False)


def _replay_marker(replay_id: int) -> tuple | None:
    return (
        Replay.objects.filter(pk=replay_id).values_list("status", "updated_at").first()
    )


def _first_open_id(run_id: int) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(_FIRST_OPEN, [run_id])
        found = cursor.fetchone()
    return found[0] if found else None


def _first_busy_id(run_id: int) -> int | None:
    """The run's lowest id that is open or has an attempt in flight."""
    first_open = _first_open_id(run_id)
    first_claimed = (
        Delivery.objects.filter(run_id=run_id, claimed_until__isnull=False)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    found = [pk for pk in (first_open, first_claimed) if pk is not None]
    return min(found) if found else None


def _by_due_range(run_id: int):
    """A run's rows as the two ranges of the (run, next_attempt_at, id) index:
    final rows (no next attempt), then open ones. Each range is in id order, so
    a query for ids above or below one reads only those."""
    rows = Delivery.objects.filter(run_id=run_id).order_by()
    return (
        rows.filter(next_attempt_at__isnull=True),
        rows.filter(next_attempt_at__isnull=False),
    )


def _run_counts(*, run_id: int, run_created_at: datetime, replay_id: int):
    """A run's deliveries by state, and how many have been sent (an attempt
    recorded): what is remembered of the run, and its rows above that."""
    marker = _replay_marker(replay_id)
    first_busy = _first_busy_id(run_id)
    known = _remembered(run_id)
    if known is not None and (
        known.run_created_at != run_created_at
        or (first_busy is not None and first_busy <= known.upto)
        or (known.cancelled_as is not None and known.cancelled_as != marker)
    ):
        known = None
    now = time.monotonic()
    recount_at = now + RECOUNT_SECONDS
    if known is not None and now >= known.recount_at:
        rows = sum(
            part.filter(id__lte=known.upto).count() for part in _by_due_range(run_id)
        )
        took = time.monotonic() - now
        recount_at = now + max(RECOUNT_SECONDS, RECOUNT_SHARE * took)
        known = replace(known, recount_at=recount_at) if rows == known.rows else None
    after = known.upto if known is not None else 0
    cut = first_busy - 1 if first_busy is not None else _NO_LIMIT
    states = Counter(dict(known.states)) if known is not None else Counter()
    sent = known.sent if known is not None else 0
    kept, kept_sent = Counter(states), sent
    top, stable = after, True
    # Both ranges in one statement, so one snapshot: a row that ends between
    # two statements would move from one range to the other unseen.
    ended, waiting = (
        rows.filter(id__gt=after)
        .values_list("state")
        .annotate(
            number=Count("id"),
            sent=Count("id", filter=Q(attempt_count__gt=0)),
            below=Count("id", filter=Q(id__lte=cut)),
            below_sent=Count("id", filter=Q(id__lte=cut, attempt_count__gt=0)),
            highest=Max("id"),
        )
        for rows in _by_due_range(run_id)
    )
    for state, number, number_sent, below, below_sent, highest in ended.union(
        waiting, all=True
    ):
        states[state] += number
        sent += number_sent
        kept[state] += below
        kept_sent += below_sent
        top = max(top, highest)
        # Opened (or reopened) since the lowest open id was read.
        stable = stable and not (state in OPEN_STATES and below)
    if stable and marker is not None and _replay_marker(replay_id) == marker:
        _remember(
            run_id,
            _Counted(
                run_created_at=run_created_at,
                upto=cut if first_busy is not None else top,
                states=tuple((state, n) for state, n in kept.items() if n),
                sent=kept_sent,
                rows=sum(kept.values()),
                recount_at=known.recount_at if known is not None else recount_at,
                cancelled_as=marker if marker[0] == Replay.Status.CANCELLED else None,
            ),
        )
    return dict(states), sent


def _latencies(run_id: int) -> list[int]:
    """The latencies of the run's newest LATENCY_SAMPLE answered deliveries,
    in order: from the top of each index range, so only the sample is read."""
    newest = []
    for rows in _by_due_range(run_id):
        newest += (
            rows.filter(latency_ms__isnull=False)
            .order_by("-id")
            .values_list("id", "latency_ms")[:LATENCY_SAMPLE]
        )
    newest.sort(reverse=True)
    return sorted(latency for _, latency in newest[:LATENCY_SAMPLE])


def replay_progress(*, replay: Replay) -> ReplayProgress:
    """Where a replay stands: counts by outcome (what was counted of its
    settled rows, and its newer rows), the rate of the last few seconds and on
    average, latency percentiles, the time left. No query reads all its rows."""
    run_id = replay.run_id
    run = replay.run
    counts, sent = _run_counts(
        run_id=run_id, run_created_at=run.created_at, replay_id=replay.pk
    )
    delivered = counts.get(State.DELIVERED, 0)
    unsupported = counts.get(State.UNSUPPORTED, 0)
    failed = counts.get(State.FAILED, 0) + counts.get(State.DISCARDED, 0)
    retrying = counts.get(State.RETRYING, 0)
    # Events in the lane's hands (sandbox.replay.lane) are not deliveries yet.
    in_lane = _in_lane(run_id)
    pending = counts.get(State.PENDING, 0) + in_lane
    enqueued = sum(counts.values()) + in_lane
    settled = enqueued - retrying - pending
    now = timezone.now()
    # By the updated_at index: the rows changed in the window, of any run. The
    # run is matched as an expression, so no index on it looks cheaper than
    # that (without statistics, SQLite would read every row of the run).
    recent = (
        Delivery.objects.annotate(of_run=F("run_id") + 0)
        .filter(
            of_run=run_id,
            updated_at__gte=now - timedelta(seconds=CURRENT_RATE_SECONDS),
        )
        .filter(~Q(state__in=[State.PENDING, State.RETRYING]))
        .order_by()
        .count()
    )
    end = run.settled_at if run.settled_at and replay.fed_at else now
    seconds = max((end - replay.created_at).total_seconds(), 1e-3)
    latencies = _latencies(run_id)
    if replay.fed_at is not None or not replay.bytes_read:
        expected = replay.events_read
    else:
        share = replay.bytes_read / max(replay.file_size, 1)
        expected = int(replay.events_read / share) if share else replay.events_read
    expected -= replay.duplicates_skipped
    finished = replay.fed_at is not None and settled == enqueued
    # A replay younger than the window has sent for that long only.
    window = min(
        CURRENT_RATE_SECONDS, max((now - replay.created_at).total_seconds(), 1)
    )
    current = recent / window
    left = max(expected - settled, 0)
    status = _status(replay, finished, in_lane=in_lane > 0)
    eta = left / current if current > 0 and left else (0.0 if finished else None)
    if status not in MOVING:
        # Paused, cancelled, stopped or interrupted: no time is left to count
        # down, however fast it went until then.
        eta = 0.0 if finished else None
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
        held_until=(
            datetime.fromtimestamp(run.held_until, tz=UTC)
            if status in MOVING and run.held_until > now.timestamp()
            else None
        ),
        slowed_to=queue.throttle_factor(
            run.throttle_factor, run.throttled_at, now.timestamp(), run.throttle_ceiling
        ),
        current_rate=current,
        average_rate=settled / seconds,
        latency_p50=_percentile(latencies, 0.50),
        latency_p95=_percentile(latencies, 0.95),
        expected=max(expected, enqueued),
        eta_seconds=eta,
        status=status,
        finished=finished,
        seconds=seconds,
        bytes_read=replay.bytes_read,
        file_size=replay.file_size,
        rate=run.rate,
        concurrency=run.concurrency,
        unit=replay.unit,
    )


def replay_status(*, replay: Replay) -> str:
    """replay_progress's status alone, without counting the run's deliveries:
    one indexed look for an open one (for a caller that asks often)."""
    in_lane = _in_lane(replay.run_id, at_most=1) > 0
    still_open = in_lane or _first_open_id(replay.run_id) is not None
    return _status(
        replay, replay.fed_at is not None and not still_open, in_lane=in_lane
    )


def _in_lane(run_id: int, *, at_most: int | None = None) -> int:
    """How many of the run's events the lane holds, written ahead, unanswered."""
    held = LaneItem.objects.filter(run_id=run_id).order_by()
    if at_most is not None:
        held = held[:at_most]
    return held.count()


def _status(replay: Replay, finished: bool, *, in_lane: bool = False) -> str:
    if replay.status == Replay.Status.CANCELLED:
        return "cancelled"
    if finished:
        return "finished"
    if replay.status == Replay.Status.PAUSED:
        return "paused"
    if replay.problem:
        return "stopped"
    if (replay.fed_at is None or in_lane) and (
        not replay.feeder or queue._is_dead_here(replay.feeder)
    ):
        # Its process died: what it read and sent is stored, the rest waits
        # for a resume.
        return "interrupted"
    if replay.fed_at is None and replay.shuffle and not replay.position:
        # The first pass: the whole source into a random order, nothing sent.
        return "shuffling"
    return "reading" if replay.fed_at is None else "sending"
