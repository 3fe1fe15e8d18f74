"""The delivery queue: claim, lease, attempts written ahead, recovery, recording.

Doors put rows in through sandbox.delivery.services; the engine takes them out
through this module only. Claiming is fair (a run at its concurrency never hides
other due rows) and durable (each attempt is written before it is sent, so a
crash leaves it interrupted and it is never sent twice). Results are recorded in
batches, one transaction per batch.
"""

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Min, Q
from django.utils import timezone

from sandbox.delivery import retry, runtime, senders, transport, webhook
from sandbox.delivery.models import (
    OPEN_STATES,
    Attempt,
    Delivery,
    DeliveryTarget,
    Outcome,
    Run,
    State,
)
from sandbox.delivery.targets import Target, target_row
from sandbox.display import safe_text
from sandbox.subscriptions.models import Subscription

INTERRUPTED = (
    "The sandbox stopped before the endpoint answered; the endpoint may have "
    "received this attempt."
)
UNPREPARABLE = (
    "not sent: the sandbox could not build Segment's request from this stored "
    "event ({detail}). Delete it, or fix the event and send it again."
)
ENGINE_FAULT = (
    "not retried: the sandbox failed while making this attempt ({detail}); "
    "the endpoint may or may not have received it."
)
SUBSCRIPTION_DISABLED = (
    "Stopped: the subscription {name!r} was disabled; no further attempts are made. "
    "Resend it once the subscription is enabled again."
)


def worker_name() -> str:
    """host:pid:nonce; the host and pid let a restarted server see a dead claimer."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass(frozen=True)
class ClaimedDelivery:
    pk: int
    run_id: int | None


@dataclass(frozen=True)
class ClaimedAttempt:
    pk: int
    number: int
    request_headers: list[list[str]]


@dataclass(frozen=True)
class Claimed:
    """A delivery taken by one engine, its attempt written ahead, ready to send."""

    delivery: ClaimedDelivery
    attempt: ClaimedAttempt
    target: DeliveryTarget
    request: senders.Prepared


@dataclass(frozen=True)
class AttemptResult:
    exchange: transport.Exchange
    verdict: webhook.Verdict
    step: retry.Step
    more_exchanges: list[dict] = field(default_factory=list)
    # A function's run (sandbox.functions.sender); empty for a webhook.
    invocation: dict = field(default_factory=dict)


# Claiming -----------------------------------------------------------------------


def _claimable(claimer: str) -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_by=claimer)


_OPEN = "state IN ('pending', 'retrying')"
_CLAIMABLE = "(claimed_until IS NULL OR claimed_by = %s)"


def _rows(sql: str, params: list) -> list[tuple]:
    """Run one of the queue's own statements (written with %s) and fetch its rows.

    On SQLite straight on the driver's connection, inside Django's transaction:
    Django's cursor rewrites each statement's %s to ? with a regular expression
    and looks the connection up through thread-local proxies on every call, which
    cost the engine's database thread more than SQLite's own work. Statements run
    this way skip Django's debug log and execute_wrappers.
    """
    wrapper = connections[DEFAULT_DB_ALIAS]
    if wrapper.vendor != "sqlite":
        with wrapper.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    wrapper.ensure_connection()
    cursor = wrapper.connection.cursor()
    try:
        cursor.execute(sql.replace("%s", "?"), params)
        return cursor.fetchall()
    finally:
        cursor.close()


# The bulk door's multi-row INSERTs go the same way (services._insert).
rows = _rows


def stamp_of(moment: datetime | None):
    """A datetime as a parameter of _rows' statements, as Django adapts it. On
    SQLite with times kept in UTC (settings), the text Django makes, made
    straight: its adapter looks the connection up through thread-local proxies
    and converts each value, a few µs a time for rows that carry several."""
    global _utc_text
    if _utc_text is None:
        wrapper = connections[DEFAULT_DB_ALIAS]
        _utc_text = wrapper.vendor == "sqlite" and wrapper.timezone is UTC
    if not _utc_text or moment is None or moment.tzinfo is None:
        return connection.ops.adapt_datetimefield_value(moment)
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return str(moment.replace(tzinfo=None))


_utc_text: bool | None = None


def _in_due_order(
    run_id: int | None, now, claimer: str, limit: int, only_ids: list[int] | None
) -> list[tuple]:
    # (run, next_attempt_at, id) is one index: each range is read in due order.
    table = Delivery._meta.db_table
    run = "run_id IS NULL" if run_id is None else "run_id = %s"
    params = ([] if run_id is None else [run_id]) + [now, claimer]
    only = ""
    if only_ids is not None:
        only = f" AND id IN ({', '.join('%s' for _ in only_ids)})"
        params += list(only_ids)
    return _rows(
        f"SELECT next_attempt_at, id FROM {table} WHERE {run} AND "
        f"next_attempt_at <= %s AND {_CLAIMABLE} AND {_OPEN}{only} "
        "ORDER BY next_attempt_at, id LIMIT %s",
        [*params, limit],
    )


def _pick_due(
    now: datetime, claimer: str, limit: int, only_ids: list[int] | None
) -> list[int]:
    """Due rows outside runs, and each open run's due rows up to its free room,
    earliest first. A run at its cap is never read, so it hides nothing. A
    strict-order run offers only its lowest open row, once that is due and not
    in flight: one indexed row read per such run."""
    if only_ids is not None and not only_ids:
        return []
    at = stamp_of(now)
    found = _in_due_order(None, at, claimer, limit, only_ids)
    table = Delivery._meta.db_table
    open_runs = _rows(
        f"SELECT id, concurrency, strict_order, paused, rate, rate_clock, "
        f"throttle_factor, throttled_at, held_until, throttle_ceiling, "
        f"throttle_rate FROM {Run._meta.db_table} WHERE settled_at IS NULL",
        [],
    )
    clock = now.timestamp()
    rated: dict[int, tuple[float, float]] = {}
    for run_id, concurrency, strict_order, paused, *pace in open_runs:
        if paused or pace[4] > clock:
            # A paused run, or one waiting out a Retry-After: nothing is claimed
            # and it does not settle.
            continue
        factor = throttle_factor(pace[2], pace[3], clock, pace[5])
        if factor < 1:
            concurrency = max(1, int(concurrency * factor))
        concurrency = max(concurrency, 1)
        run_caps[run_id] = 1 if strict_order else concurrency
        if strict_order:
            first = _rows(
                f"SELECT id, next_attempt_at, next_attempt_at <= %s, "
                f"{_CLAIMABLE} FROM {table} WHERE run_id = %s AND {_OPEN} "
                "ORDER BY id LIMIT 1",
                [at, claimer, run_id],
            )
            if not first:
                if only_ids is None:
                    _settle_if_done(run_id, now)
                continue
            [(pk, due_at, is_due, claimable)] = first
            if is_due and claimable and (only_ids is None or pk in only_ids):
                found.append((due_at, pk))
            continue
        [(in_flight,)] = _rows(
            f"SELECT count(*) FROM {table} "
            "WHERE run_id = %s AND claimed_until IS NOT NULL",
            [run_id],
        )
        # Claimed rows are in flight, waiting in an engine for a slot of the
        # run, or answered and waiting to be recorded: the run's own room in
        # the engine, run_caps, bounds what is sent at once.
        room = min(claimed_at_most(concurrency) - in_flight, limit)
        if room <= 0:
            continue
        rate, rate_clock = pace[0], pace[1]
        if not rate and factor < 1:
            # Asked for no rate, slowed by 429s: the rate it went at then.
            rate = pace[6]
        if rate:
            rate *= factor
            # At least one event's worth can be saved up, or a slow rate (with
            # float rounding, any rate) would never allow one.
            start = max(rate_clock, clock - max(RATE_BURST_SECONDS, 1 / rate))
            allowed = int((clock - start) * rate + 1e-6)
            if allowed < room:
                # One row more than allowed says whether the rate holds any back.
                rows = _in_due_order(run_id, at, claimer, allowed + 1, only_ids)
                if len(rows) > allowed:
                    held = start + (allowed + 1) / rate
                    _rate_held[claimer] = min(_rate_held.get(claimer, held), held)
                elif not rows and only_ids is None and not in_flight:
                    # Nothing due, nothing in flight: settled, unless a retry waits.
                    _settle_if_done(run_id, now)
                rows = rows[:allowed]
                rated[run_id] = (rate, start)
                found += rows
                continue
            rated[run_id] = (rate, start)
        rows = _in_due_order(run_id, at, claimer, room, only_ids)
        if rows:
            found += rows
        elif only_ids is None and not in_flight:
            _settle_if_done(run_id, now)
    for settled in run_caps.keys() - {row[0] for row in open_runs}:
        run_caps.pop(settled, None)
    found.sort()
    picked = found[:limit]
    if rated:
        _use_allowance(rated, {pk for _, pk in picked})
    return [pk for _, pk in picked]


# Each open run's concurrency as the last claim found it (halved after 429s):
# an engine starts no more of a run's claimed rows at once than this.
run_caps: dict[int, int] = {}


def claimed_at_most(concurrency: int) -> int:
    """How many rows of a run may be claimed at once: those in flight, and twice
    as many ahead of them, so a slot that frees starts the next at once and an
    answer need not be recorded before the next claim. A crash reports each
    claimed row as interrupted (its attempt was written ahead); no more than the
    concurrency was sent."""
    return 3 * concurrency


# How much unused allowance a rate-limited run may save up: a short burst, so a
# claim that comes late still sends at the rate on average.
RATE_BURST_SECONDS = 0.1
RATE_HELD_LONGEST_SECONDS = 86400.0
# After a 429 a replay's rate and concurrency are cut to THROTTLE_CUT of the
# share they ran at (its ceiling; never below THROTTLE_FLOOR). They stay so for
# THROTTLE_HOLD_SECONDS, climb back to THROTTLE_BELOW of the ceiling over
# THROTTLE_RAMP_SECONDS, stay there THROTTLE_PLATEAU_SECONDS, then double every
# THROTTLE_DOUBLING_SECONDS: a limit that held is not tried again at once, and
# one that was lifted is soon left behind. Against an endpoint that takes 500
# events/s and answers 429 with Retry-After: 1 beyond, a replay asked for 2,000
# events/s went at 288 events/s when each 429 halved its share and it doubled
# back after 2 s, and at 375 events/s this way.
THROTTLE_FLOOR = 1 / 64
THROTTLE_CUT = 0.7
THROTTLE_HOLD_SECONDS = 0.5
THROTTLE_RAMP_SECONDS = 2.0
THROTTLE_BELOW = 0.85
THROTTLE_PLATEAU_SECONDS = 10.0
THROTTLE_DOUBLING_SECONDS = 2.0
# 429s answered within this long of the last count as one signal (a burst of
# requests in flight all hear the same answer).
THROTTLE_DEBOUNCE_SECONDS = 0.5
# A Retry-After holds the whole run at most this long (each delivery's own retry
# follows the schedule, which honours the header).
THROTTLE_MAX_HOLD_SECONDS = 30.0
# When each engine's claims last left a rate-limited run's rows waiting: the
# engine sleeps no longer than that (deliveries_next_due).
_rate_held: dict[str, float] = {}


def throttle_factor(
    factor: float, throttled_at: float, clock: float, ceiling: float = 1.0
) -> float:
    """The share of its rate and concurrency a replay runs at after 429s: cut
    to `factor` at `throttled_at`, when it ran at `ceiling`."""
    if factor >= 1:
        return 1.0
    recovering = clock - throttled_at - THROTTLE_HOLD_SECONDS
    if recovering <= 0:
        return factor
    below = max(factor, ceiling * THROTTLE_BELOW)
    if recovering < THROTTLE_RAMP_SECONDS:
        return factor + (below - factor) * recovering / THROTTLE_RAMP_SECONDS
    beyond = recovering - THROTTLE_RAMP_SECONDS - THROTTLE_PLATEAU_SECONDS
    if beyond <= 0:
        return below
    return min(1.0, below * 2 ** (beyond / THROTTLE_DOUBLING_SECONDS))


def _use_allowance(rated: dict[int, tuple[float, float]], picked: set[int]) -> None:
    """Move each rate-limited run's clock on by what this claim took of it."""
    marks = ", ".join("%s" for _ in picked)
    taken = dict(
        _rows(
            f"SELECT run_id, count(*) FROM {Delivery._meta.db_table} "
            f"WHERE id IN ({marks}) GROUP BY run_id",
            list(picked),
        )
        if picked
        else []
    )
    for run_id, (rate, start) in rated.items():
        if taken.get(run_id):
            _rows(
                f"UPDATE {Run._meta.db_table} SET rate_clock = %s WHERE id = %s",
                [start + taken[run_id] / rate, run_id],
            )


def _settle_if_done(run_id: int, now: datetime) -> None:
    still_open = Delivery.objects.filter(
        run_id=run_id, next_attempt_at__isnull=False, state__in=OPEN_STATES
    ).exists()
    if not still_open:
        Run.objects.filter(pk=run_id, settled_at__isnull=True).update(settled_at=now)


# Target rows never change: each engine process reads each one once.
_targets: dict[int, DeliveryTarget] = {}


def _target(target_id: int) -> DeliveryTarget:
    found = _targets.get(target_id)
    if found is None:
        found = _targets[target_id] = DeliveryTarget.objects.get(pk=target_id)
    return found


_SUBSCRIPTION_COLUMNS = (
    "id, enabled, name, kind, endpoint_url, api_key, CAST(custom_settings AS TEXT), "
    "timeout_seconds, retry_policy, time_scale, dedupe_enabled, dedupe_window_hours, "
    "memory_mb, batch_size, batch_window_seconds, "
    # A function's newest version: saving one retargets what is still to send.
    "(SELECT MAX(v.id) FROM functions_functionversion v "
    "WHERE v.subscription_id = subscriptions_subscription.id)"
)
# Each subscription's stored columns, as last read, and what they came to.
_current: dict[tuple, object] = {}


def _current_targets(subscription_ids: set[int]) -> dict[int, object]:
    """Each subscription as it is now: its target row, the subscription itself
    when it is disabled, or the error its settings raise. One plain query per
    claim; a subscription's columns unchanged since the last claim cost nothing."""
    if not subscription_ids:
        return {}
    marks = ", ".join("%s" for _ in subscription_ids)
    rows = _rows(
        f"SELECT {_SUBSCRIPTION_COLUMNS} FROM {Subscription._meta.db_table} "
        f"WHERE id IN ({marks})",
        list(subscription_ids),
    )
    current: dict[int, object] = {}
    for row in rows:
        found = _current.get(row)
        if found is None:
            found = _target_of_subscription(row[0])
            if isinstance(found, DeliveryTarget):
                _targets.setdefault(found.pk, found)
                if len(_current) > 1000:
                    _current.clear()
                # Kept once committed: a row made by a claim that rolls back is not.
                transaction.on_commit(
                    lambda row=row, found=found: _current.setdefault(row, found)
                )
        current[row[0]] = found
    return current


def _target_of_subscription(pk: int) -> object:
    subscription = Subscription.objects.get(pk=pk)
    if not subscription.enabled:
        return subscription
    try:
        return target_row(Target.of(subscription))
    except Exception as error:
        return error


def _claim(
    *,
    claimer: str,
    token: str,
    limit: int,
    lease_seconds: float,
    only_ids: list[int] | None = None,
) -> list[Claimed]:
    """Claim due deliveries for one engine and write their attempts ahead.

    One transaction (SQLite takes the write lock at its start; PostgreSQL skips
    rows another engine has locked), re-checking the claim in the UPDATE, so two
    engines never take the same row. Each attempt goes to its subscription as it
    is now: a disabled subscription's delivery stops, an edited one's URL, key and
    settings are used. The claim bumps `updated_at`, so the page shows it sending.
    The hot path is plain SQL: it runs for every attempt the sandbox makes.
    """
    now = timezone.now()
    picked = _pick_due(now, claimer, limit, only_ids)
    if connection.vendor == "postgresql" and picked:
        picked = list(
            Delivery.objects.filter(_claimable(claimer), pk__in=picked)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
    if not picked:
        return []
    table = Delivery._meta.db_table
    marks = ", ".join("%s" for _ in picked)
    adapt = stamp_of
    # The stored JSON comes as text, which is the webhook's body as it is, and
    # the sender reads it row by row: a row whose payload cannot be read or sent
    # ends alone instead of failing the claim.
    rows = _rows(
        f"UPDATE {table} SET claimed_by = %s, claimed_until = %s, updated_at = %s "
        f"WHERE id IN ({marks}) AND {_CLAIMABLE} RETURNING id, run_id, target_id, "
        "subscription_id, attempt_count, next_attempt_at, CAST(payload AS TEXT)",
        [
            token,
            adapt(now + timedelta(seconds=lease_seconds)),
            adapt(now),
            *picked,
            claimer,
        ],
    )
    rows.sort()
    current = _current_targets({row[3] for row in rows if row[3] is not None})
    ready: list[tuple] = []
    retargeted: dict[int, list[int]] = {}
    for pk, run_id, target_id, subscription_id, count, due, payload_text in rows:
        try:
            if subscription_id is None:
                target = _target(target_id)
            else:
                target = current.get(subscription_id)
                if isinstance(target, Subscription):
                    name = target.name
                    _end(pk, SUBSCRIPTION_DISABLED.format(name=name), now)
                    continue
                if isinstance(target, Exception):
                    raise target
                if target is None:
                    # Deleted since: its own target row, as for an ad hoc send.
                    target = _target(target_id)
            request = senders.sender_for(target.kind).prepare(
                target=target, event_text=payload_text
            )
        except Exception as error:
            _end(pk, UNPREPARABLE.format(detail=describe_fault(error)), now)
            continue
        if target.pk != target_id:
            retargeted.setdefault(target.pk, []).append(pk)
        ready.append((pk, run_id, count + 1, due, target, request))
    for new_target, delivery_ids in retargeted.items():
        Delivery.objects.filter(pk__in=delivery_ids).update(target_id=new_target)
    claimed = _write_ahead(ready, now)
    transaction.on_commit(lambda: runtime.changed([c.delivery.pk for c in claimed]))
    return claimed


# In a transaction of its own; attempts_record_and_claim shares one with recording.
deliveries_claim = transaction.atomic(_claim)


_ATTEMPT_COLUMNS = (
    "delivery_id, number, target_id, due_at, started_at, request_method, "
    "request_url, request_headers, response_headers, response_body, "
    "response_truncated, error_kind, error_message, exchanges, invocation, outcome, "
    "reason, created_at"
)


def _write_ahead(ready: list[tuple], now: datetime) -> list[Claimed]:
    """Each claimed delivery's next attempt, request included, in one INSERT."""
    if not ready:
        return []
    as_json = _json_placeholder()
    one = (
        f"(%s, %s, %s, %s, %s, %s, %s, {as_json}, {as_json}, '', "
        f"%s, '', '', {as_json}, {as_json}, '', '', %s)"
    )
    params: list = []
    started = stamp_of(now)
    headers_of = {}
    for pk, _, number, due, target, request in ready:
        headers = [list(pair) for pair in request.headers]
        headers_of[pk] = headers
        params += [
            pk,
            number,
            target.pk,
            due,
            started,
            request.method,
            request.url,
            request.headers_json or json.dumps(headers, ensure_ascii=False),
            "[]",
            False,
            "[]",
            "{}",
            started,
        ]
    ids = dict(
        (delivery_id, attempt_id)
        for attempt_id, delivery_id in _rows(
            f"INSERT INTO {Attempt._meta.db_table} ({_ATTEMPT_COLUMNS}) VALUES "
            + ", ".join(one for _ in ready)
            + " RETURNING id, delivery_id",
            params,
        )
    )
    return [
        Claimed(
            ClaimedDelivery(pk, run_id),
            ClaimedAttempt(ids[pk], number, headers_of[pk]),
            target,
            request,
        )
        for pk, run_id, number, _, target, request in ready
    ]


def _end(pk: int, reason: str, now: datetime) -> None:
    """A row that cannot be attempted ends alone, in a final state, saying why."""
    Delivery.objects.filter(pk=pk).update(
        state=State.FAILED,
        outcome=Outcome.RED,
        reason=reason[:500],
        next_attempt_at=None,
        claimed_by="",
        claimed_until=None,
        updated_at=now,
    )
    transaction.on_commit(lambda: runtime.changed([pk]))


@transaction.atomic
def claims_release(*, claimed: list[Claimed]) -> None:
    """Give back rows an engine claimed but did not send: their attempts, written
    ahead, are removed and the rows are due again, as if never claimed. A row
    whose attempt recovery already closed (its lease ended) is recovery's."""
    open_attempts = dict(
        Attempt.objects.filter(
            pk__in=[c.attempt.pk for c in claimed], outcome=""
        ).values_list("pk", "delivery_id")
    )
    if not open_attempts:
        return
    Attempt.objects.filter(pk__in=list(open_attempts)).delete()
    ids = list(open_attempts.values())
    Delivery.objects.filter(pk__in=ids).update(
        claimed_by="", claimed_until=None, updated_at=timezone.now()
    )
    transaction.on_commit(lambda: runtime.changed(ids))


def describe_fault(error: BaseException) -> str:
    if isinstance(error, UnicodeError):
        return "it holds a lone UTF-16 surrogate, which is not valid Unicode"
    if isinstance(error, RecursionError):
        return "it is nested too deeply to encode"
    detail = safe_text(str(error) or type(error).__name__)
    return detail if len(detail) <= 200 else detail[:197] + "..."


# Recovery -----------------------------------------------------------------------


def _is_dead_here(claimed_by: str) -> bool:
    """Whether the claimer was a process on this host that no longer runs."""
    host, _, rest = claimed_by.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not (pid.isascii() and pid.isdigit()):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@transaction.atomic
def deliveries_recover(*, now: datetime | None = None) -> int:
    """Free the claims of engines that died or overran their lease.

    An attempt they had in flight is recorded as interrupted, never sent again
    as the same attempt: its retry follows Segment's schedule (at once if late).
    """
    now = now or timezone.now()
    stale = [
        delivery
        for delivery in Delivery.objects.filter(state__in=OPEN_STATES)
        .exclude(claimed_by="")
        .select_related("target")
        .defer("payload", "spec_problems")
        if delivery.claimed_until < now or _is_dead_here(delivery.claimed_by)
    ]
    for delivery in stale:
        in_flight = delivery.attempts.filter(outcome="").order_by("-number").first()
        if in_flight is None:
            Delivery.objects.filter(pk=delivery.pk).update(
                claimed_by="", claimed_until=None, updated_at=now
            )
            continue
        verdict = webhook.classify_error(INTERRUPTED)
        step = retry.next_step(
            verdict=verdict,
            policy=retry.Policy(
                delivery.target.retry_policy, delivery.target.time_scale
            ),
            attempts_made=in_flight.number,
            started_at=in_flight.started_at,
        )
        Attempt.objects.filter(pk=in_flight.pk).update(
            outcome=Outcome.RED,
            error_kind=Attempt.ErrorKind.INTERRUPTED,
            error_message=INTERRUPTED,
            reason=INTERRUPTED,
        )
        Delivery.objects.filter(pk=delivery.pk).update(
            state=step.state,
            outcome=Outcome.RED,
            response_status=None,
            latency_ms=None,
            reason=step.reason,
            attempt_count=in_flight.number,
            next_attempt_at=max(step.next_attempt_at, now)
            if step.next_attempt_at
            else None,
            claimed_by="",
            claimed_until=None,
            updated_at=now,
        )
    if stale:
        ids = [delivery.pk for delivery in stale]
        transaction.on_commit(lambda: runtime.changed(ids))
    return len(stale)


def deliveries_next_due(*, after: datetime, claimer: str = "") -> datetime | None:
    """When the earliest open, unclaimed delivery due after `after` falls due (the
    engine sleeps until then, so a retry leaves on time, not at the next poll), or
    sooner when the claimer's last claim left rows of a rate-limited run waiting
    for their allowance."""
    due = _earliest_due_after(after)
    held = _rate_held.pop(claimer, None)
    if held is not None:
        # A rate of one event in ages (a run's stored rate is not bounded)
        # holds its next row past any date: look again within a day.
        held = min(held, after.timestamp() + RATE_HELD_LONGEST_SECONDS)
        allowance = datetime.fromtimestamp(held, tz=after.tzinfo or UTC)
        due = allowance if due is None else min(due, allowance)
    return due


def _earliest_due_after(after: datetime) -> datetime | None:
    # Asked after nearly every claim of a busy engine: plain SQL on SQLite, since
    # building the ORM's aggregate cost more than SQLite's indexed look.
    if connection.vendor != "sqlite":
        return Delivery.objects.filter(
            state__in=OPEN_STATES,
            claimed_until__isnull=True,
            next_attempt_at__gt=after,
        ).aggregate(due=Min("next_attempt_at"))["due"]
    [(found,)] = _rows(
        f"SELECT MIN(next_attempt_at) FROM {Delivery._meta.db_table} "
        f"WHERE {_OPEN} AND claimed_until IS NULL AND next_attempt_at > %s",
        [stamp_of(after)],
    )
    if found is None:
        return None
    return datetime.fromisoformat(found).replace(tzinfo=UTC)


# Recording ----------------------------------------------------------------------


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json_placeholder() -> str:
    return "%s::jsonb" if connection.vendor == "postgresql" else "%s"


@transaction.atomic
def attempts_record(results: list[tuple[Claimed, AttemptResult]]) -> None:
    """Complete many attempts written ahead and move their deliveries on, in one
    transaction and two statements.

    Updates, never inserts: a delivery deleted meanwhile stays deleted. A delivery
    the user stopped meanwhile keeps their decision; its numbers are recorded.
    Whatever the endpoint said is stored as text any page can show.
    """
    _record(results)


@transaction.atomic
def attempts_record_and_claim(
    *, results: list[tuple[Claimed, AttemptResult]], **claim
) -> list[Claimed]:
    """attempts_record, then deliveries_claim, in one transaction: the engine's
    usual step once results have freed slots (one commit instead of two)."""
    _record(results)
    return _claim(**claim)


def _record(results: list[tuple[Claimed, AttemptResult]]) -> None:
    if not results:
        return
    now = timezone.now()
    adapt = stamp_of
    stamp = adapt(now)
    attempt_rows, delivery_rows = [], []
    for claimed, result in results:
        exchange = result.exchange
        attempt_rows.append(
            (
                exchange.status,
                _json([[safe_text(n), safe_text(v)] for n, v in exchange.headers]),
                safe_text(exchange.body),
                exchange.truncated,
                exchange.latency_ms,
                exchange.error_kind,
                safe_text(exchange.error_message)[:1000],
                result.verdict.outcome,
                safe_text(result.verdict.reason)[:500],
                _json(result.more_exchanges) if result.more_exchanges else "[]",
                _json(result.invocation) if result.invocation else "{}",
                claimed.attempt.pk,
            )
        )
        delivery_rows.append(
            (
                result.step.state,
                safe_text(result.step.reason)[:500],
                adapt(result.step.next_attempt_at),
                result.verdict.outcome,
                exchange.status,
                exchange.latency_ms,
                claimed.attempt.number,
                stamp,
                claimed.delivery.pk,
            )
        )
    if connection.vendor == "sqlite":
        _update_from_values(Attempt._meta.db_table, _ATTEMPT_SET, attempt_rows)
        _update_from_values(Delivery._meta.db_table, _DELIVERY_SET, delivery_rows)
    else:
        as_json = _json_placeholder()
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {Attempt._meta.db_table} SET response_status = %s, "
                f"response_headers = {as_json}, response_body = %s, "
                "response_truncated = %s, latency_ms = %s, error_kind = %s, "
                f"error_message = %s, outcome = %s, reason = %s, "
                f"exchanges = {as_json}, invocation = {as_json} WHERE id = %s",
                attempt_rows,
            )
            # SET reads the row as it was: a stopped delivery keeps its state.
            cursor.executemany(
                f"UPDATE {Delivery._meta.db_table} SET "
                f"state = CASE WHEN {_OPEN} THEN %s ELSE state END, "
                f"reason = CASE WHEN {_OPEN} THEN %s ELSE reason END, "
                f"next_attempt_at = CASE WHEN {_OPEN} THEN %s "
                "ELSE next_attempt_at END, "
                "outcome = %s, response_status = %s, latency_ms = %s, "
                "attempt_count = %s, claimed_by = '', claimed_until = NULL, "
                "updated_at = %s WHERE id = %s",
                delivery_rows,
            )
    _throttle_replays(results, now)
    ids = [claimed.delivery.pk for claimed, _ in results]
    transaction.on_commit(lambda: runtime.changed(ids))


def _throttle_replays(results: list[tuple[Claimed, AttemptResult]], now) -> None:
    """A 429 slows the replay it answered: counted, its rate and concurrency
    cut (see throttle_factor) and the whole run held for the Retry-After."""
    throttle_runs(
        [
            (claimed.delivery.run_id, result.exchange.headers)
            for claimed, result in results
            if result.exchange.status == 429 and claimed.delivery.run_id is not None
        ],
        now,
    )


@dataclass
class Throttle:
    """A replay's pace after 429s, as its Run row keeps it (see throttle_factor)."""

    factor: float = 1.0
    throttled_at: float = 0.0
    held_until: float = 0.0
    ceiling: float = 1.0
    throttle_rate: float | None = None
    count: int = 0

    def share(self, clock: float) -> float:
        return throttle_factor(self.factor, self.throttled_at, clock, self.ceiling)

    def answered_429(
        self, waits: list[float], *, clock: float, rate: float | None, recent_rate
    ) -> None:
        """Cut at a 429 (429s within THROTTLE_DEBOUNCE_SECONDS of the last count
        as one) and held for the longest Retry-After; `recent_rate()` is what
        the run went at, asked only when no rate was set and it went at full
        speed."""
        if clock - self.throttled_at >= THROTTLE_DEBOUNCE_SECONDS:
            self.ceiling = self.share(clock)
            if not rate and self.ceiling >= 1:
                # Going at full speed with no rate asked: what it went at
                # becomes the rate the share applies to.
                self.throttle_rate = recent_rate() or self.throttle_rate
            self.factor = max(THROTTLE_FLOOR, self.ceiling * THROTTLE_CUT)
            self.throttled_at = clock
        hold = min(max(waits), THROTTLE_MAX_HOLD_SECONDS)
        self.held_until = max(self.held_until, clock + hold)
        self.count += len(waits)


def retry_after_seconds(headers, now: datetime) -> float:
    """A 429's Retry-After in seconds (0 when it has none we can read)."""
    for name, value in headers:
        if name.lower() == "retry-after":
            return retry.parse_retry_after(value, now=now) or 0.0
    return 0.0


def throttle_runs(answered: list[tuple[int, list]], now: datetime) -> None:
    """Slow each run for the 429s it was answered: (run id, the 429's response
    headers) each. Replays only."""
    asked: dict[int, list[float]] = {}
    for run_id, headers in answered:
        asked.setdefault(run_id, []).append(retry_after_seconds(headers, now))
    if not asked:
        return
    clock = now.timestamp()
    table = Run._meta.db_table
    for run_id, waits in asked.items():
        found = _rows(
            f"SELECT rate, throttle_factor, throttled_at, held_until, "
            f"throttle_ceiling, throttle_rate, throttled_count FROM {table} "
            "WHERE id = %s AND door = 'replay'",
            [run_id],
        )
        if not found:
            continue
        [(rate, *kept)] = found
        pace = Throttle(*kept)
        pace.answered_429(
            waits,
            clock=clock,
            rate=rate,
            recent_rate=lambda run_id=run_id: _recent_rate(run_id, now),
        )
        _rows(
            f"UPDATE {table} SET throttle_factor = %s, throttle_ceiling = %s, "
            "throttle_rate = %s, throttled_at = %s, held_until = %s, "
            "throttled_count = throttled_count + %s WHERE id = %s",
            [
                pace.factor,
                pace.ceiling,
                pace.throttle_rate,
                pace.throttled_at,
                pace.held_until,
                len(waits),
                run_id,
            ],
        )


def aware(moment: datetime | str) -> datetime:
    """A moment read by a plain statement, as an aware datetime. SQLite's
    driver hands back a naive UTC datetime (Django's converter for the column's
    declared type) or, without one, the stored text; PostgreSQL an aware one."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# How far back a run's own rate is measured when a 429 first slows it.
RECENT_RATE_SECONDS = 2.0


def _recent_rate(run_id: int, now: datetime) -> float | None:
    """The events/s a run's deliveries were claimed or answered at over the
    last RECENT_RATE_SECONDS, or since the first of them in that time; None
    when none were. By the updated_at index: the run is matched as an
    expression, so SQLite does not read every row of the run."""
    since = stamp_of(now - timedelta(seconds=RECENT_RATE_SECONDS))
    [(touched, oldest)] = _rows(
        f"SELECT count(*), MIN(updated_at) FROM {Delivery._meta.db_table} "
        "WHERE updated_at >= %s AND run_id + 0 = %s "
        # Sent or being sent: not rows just read in ahead of the sending.
        "AND (attempt_count > 0 OR claimed_until IS NOT NULL)",
        [since, run_id],
    )
    if not touched:
        return None
    # Over the time it has been going, when that is shorter (a first burst).
    span = (now - aware(oldest)).total_seconds()
    return touched / min(max(span, RATE_BURST_SECONDS), RECENT_RATE_SECONDS)


# What recording sets, as (column, value from the new row `r`); the row's id is
# last. In a delivery, a stopped state is kept (SET reads the row as it was).
_ATTEMPT_SET = (
    ("response_status", "r.c1"),
    ("response_headers", "r.c2"),
    ("response_body", "r.c3"),
    ("response_truncated", "r.c4"),
    ("latency_ms", "r.c5"),
    ("error_kind", "r.c6"),
    ("error_message", "r.c7"),
    ("outcome", "r.c8"),
    ("reason", "r.c9"),
    ("exchanges", "r.c10"),
    ("invocation", "r.c11"),
)
_STILL_OPEN = "{table}.state IN ('pending', 'retrying')"
_DELIVERY_SET = (
    ("state", f"CASE WHEN {_STILL_OPEN} THEN r.c1 ELSE {{table}}.state END"),
    ("reason", f"CASE WHEN {_STILL_OPEN} THEN r.c2 ELSE {{table}}.reason END"),
    (
        "next_attempt_at",
        f"CASE WHEN {_STILL_OPEN} THEN r.c3 ELSE {{table}}.next_attempt_at END",
    ),
    ("outcome", "r.c4"),
    ("response_status", "r.c5"),
    ("latency_ms", "r.c6"),
    ("attempt_count", "r.c7"),
    ("claimed_by", "''"),
    ("claimed_until", "NULL"),
    ("updated_at", "r.c8"),
)


def _update_from_values(table: str, assignments: tuple, rows: list[tuple]) -> None:
    """UPDATE many rows from one VALUES list per statement (SQLite): one statement
    instead of one per row, each row's values last-to-id as in `rows`."""
    width = len(rows[0])
    names = ", ".join(f"c{i}" for i in range(1, width)) + ", id"
    sets = ", ".join(
        f"{column} = {value.format(table=table)}" for column, value in assignments
    )
    one = "(" + ", ".join("%s" for _ in range(width)) + ")"
    per_statement = max(1, connection.features.max_query_params // width)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        _rows(
            f"WITH r({names}) AS (VALUES {', '.join(one for _ in chunk)}) "
            f"UPDATE {table} SET {sets} FROM r WHERE {table}.id = r.id",
            [value for row in chunk for value in row],
        )


@transaction.atomic
def attempt_record_fault(*, claimed: Claimed, error: BaseException) -> None:
    """The engine itself failed on this attempt: end the delivery, saying so.

    Not retried, since the same fault would recur; the attempt was written ahead,
    so it may have reached the endpoint.
    """
    reason = ENGINE_FAULT.format(detail=describe_fault(error))[:500]
    now = timezone.now()
    Attempt.objects.filter(pk=claimed.attempt.pk).update(
        outcome=Outcome.RED,
        error_kind=Attempt.ErrorKind.OTHER,
        error_message=reason[:1000],
        reason=reason,
    )
    Delivery.objects.filter(pk=claimed.delivery.pk).update(
        state=State.FAILED,
        outcome=Outcome.RED,
        reason=reason,
        attempt_count=claimed.attempt.number,
        next_attempt_at=None,
        claimed_by="",
        claimed_until=None,
        updated_at=now,
    )
    transaction.on_commit(lambda: runtime.changed([claimed.delivery.pk]))


def run_is_settled(run_id: int) -> bool:
    """No delivery of the run is open (pending, retrying or in flight)."""
    return not Delivery.objects.filter(
        Q(run_id=run_id) & Q(state__in=OPEN_STATES)
    ).exists()
