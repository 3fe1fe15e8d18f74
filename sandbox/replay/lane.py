"""The replay lane's writing half: a replay's first attempts, with one write
per event, made by the `replay` command's feeding process.

Through the queue, an event costs three writes to its delivery row, each
keeping up the table's indexes (enqueued, claimed with its attempt written
ahead, recorded), and the engine pays for claims and records in the process
that sends. A replay of a file went at a fifth of a bare aiohttp loop that way
(benchmarks/replay.py), however the queue was tuned. So a webhook's first
attempts go through the lane, in two processes:

- the feeding process (feed_process.py, lane_feed here) reads the source and
  writes each chunk ahead as LaneItems (a small row each, and the replay's
  position, in one transaction), then hands the chunk to the command; when
  answers come back it stores each event's delivery and attempt once, in
  their final state (or waiting for a retry, which the engine makes), and
  drops its LaneItem, a turn per transaction;
- the command sends (sandbox.delivery.lane.Sender), telling this process
  which few events go out next before they do.

Whoever drops a LaneItem stores its delivery, so each is stored once. When
the command stops, what it did not send comes back (stored pending, or
cancelled with the replay); when it dies, what it said it was sending and
did not answer is stored as interrupted, the rest pending. When this process
dies, the command stores what it knows (salvage). When both die, a resume
records every LaneItem as interrupted (lane_recover): the endpoint may have
it, so it is never sent again as the same attempt, and its retry follows the
policy, as for an attempt the engine had in flight.
"""

import json
import logging
import pickle
import queue as threads_queue
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from sandbox.delivery import queue, retry, runtime, senders, transport, webhook
from sandbox.delivery import services as delivery_services
from sandbox.delivery.lane import (
    END,
    GONE,
    ITEMS,
    LENGTH,
    RELOOK_SECONDS,
    RESULTS,
    STARTING,
    UNSENT,
    WINDOW_MOST,
    Item,
    Result,
    frame,
)
from sandbox.delivery.models import (
    Attempt,
    Delivery,
    DeliveryTarget,
    Door,
    Outcome,
    Run,
    State,
)
from sandbox.delivery.services import DeliveryRefused
from sandbox.delivery.targets import Target
from sandbox.display import safe_text
from sandbox.replay.models import LaneItem, Replay
from sandbox.subscriptions.models import Subscription

logger = logging.getLogger("sandbox.replay")


# The events written ahead and not yet answered, at most: a crash reports
# them as interrupted, a pause holds them. Enough to keep the sender busy
# while answers are recorded, and no more than a second of a rate.
WINDOW_PER_SLOT = 50
WINDOW_LEAST = 1000
# How often the feeding reads the subscription again (an edit, a disable).
TARGET_EVERY_SECONDS = 1.0
# The most events written ahead, or answers recorded, per transaction.
CHUNK_MOST = 500
RECORD_MOST = 1000
# A turn with no chunk to write records the answers that came within this
# long of its first, up to this many: a commit costs as much as dozens of
# rows, and turns of a few answers each took a tenth of the process's CPU.
GATHER_SECONDS = 0.01
GATHER_MOST = 200
CHECKPOINT_PAGES = 20000


def window_for(run: Run) -> int:
    window = min(WINDOW_MOST, max(WINDOW_LEAST, WINDOW_PER_SLOT * run.concurrency))
    if run.rate:
        window = min(window, max(2 * run.concurrency, int(run.rate)))
    return window


# The feeding's side: writing ahead, and recording ---------------------------------


class Link:
    """The feeding process's end of the lane's socket: frames sent whole, and
    frames received by a thread of their own. A closed socket reads as END."""

    def __init__(self, sock: socket.socket):
        self._socket = sock
        self._lock = threading.Lock()
        self._received: threads_queue.SimpleQueue = threads_queue.SimpleQueue()
        threading.Thread(target=self._read, name="lane-answers", daemon=True).start()

    def send(self, kind: str, payload) -> bool:
        try:
            with self._lock:
                self._socket.sendall(frame(kind, payload))
        except OSError:
            return False
        return True

    def receive(self, timeout: float | None) -> tuple[str, object] | None:
        try:
            return self._received.get(timeout=timeout)
        except threads_queue.Empty:
            return None

    def _read(self) -> None:
        stream = self._socket.makefile("rb")
        try:
            while len(header := stream.read(LENGTH.size)) == LENGTH.size:
                (size,) = LENGTH.unpack(header)
                self._received.put(pickle.loads(stream.read(size)))
        except Exception:
            logger.exception("reading the lane's answers failed")
        finally:
            self._received.put((GONE, None))


@dataclass
class Held:
    """What the feeding keeps of an event in the sender's hands."""

    delivery: Delivery
    target: DeliveryTarget
    url: str
    headers_json: str
    written_at: datetime
    dedupe_key: str | None
    window_hours: float | None
    # written_at as the statements take it (queue.stamp_of), made once a chunk.
    written_stamp: str = ""


# One encoder for every row: json.dumps with options makes one each call.
_ROW = json.JSONEncoder(ensure_ascii=False).encode


def _row_of(delivery: Delivery) -> str:
    return _ROW(
        [
            delivery.subscription_id,
            delivery.target_id,
            delivery.message_id,
            delivery.event_type,
            delivery.event_name,
            delivery.user_id,
            delivery.anonymous_id,
            delivery.spec_problems,
        ]
    )


def _delivery_of_row(row: str, text: str, run_id: int) -> Delivery:
    (
        subscription_id,
        target_id,
        message_id,
        event_type,
        event_name,
        user_id,
        anonymous_id,
        spec_problems,
    ) = json.loads(row)
    return delivery_services._new_delivery(
        subscription_id=subscription_id,
        target_id=target_id,
        door=Door.REPLAY,
        run_id=run_id,
        message_id=message_id,
        event_type=event_type,
        event_name=event_name,
        user_id=user_id,
        anonymous_id=anonymous_id,
        payload=None,
        spec_problems=spec_problems,
        payload_text=text,
    )


def _fresh(deliveries: list[Delivery], target: Target, now: datetime):
    """The deliveries to send, each with the dedupe key it will hold; those
    whose messageId the target received within its window are stored
    deduplicated now, as the queue's door stores them."""
    window = target.dedupe_window_hours
    if window is None:
        return [(delivery, None) for delivery in deliveries]
    keys = [
        delivery_services.dedupe_key(target, delivery_services.message_id_of(delivery))
        for delivery in deliveries
    ]
    holders = delivery_services._holders({key for key in keys if key is not None})
    fresh, deduplicated = [], []
    for delivery, key in zip(deliveries, keys, strict=True):
        holder = holders.get(key) if key is not None else None
        if holder is not None and holder[1] >= now - timedelta(hours=window):
            delivery_services._mark_deduplicated(
                delivery, holder[0], holder[1], target=target
            )
            deduplicated.append(delivery)
        else:
            fresh.append((delivery, key))
    _insert(deduplicated, now)
    return fresh


_BODY = webhook.BodyEncoder()


@transaction.atomic
def write_ahead(
    *, replay: Replay, target: Target, chunk, feeder: str, in_hand: frozenset[str]
) -> list[tuple[Item, Held]] | None:
    """The chunk's events written ahead (LaneItems) and the position moved past
    it, in one transaction, as services._enqueue_chunk enqueues a chunk: the
    items to hand to the sender, or None, writing nothing, when the replay was
    cancelled or deleted meanwhile or another process feeds it. `in_hand`: the
    messageIds in the sender's hands (not yet in the run's deliveries)."""
    from sandbox.replay import services

    taken = services._chunk_taken(
        replay=replay, chunk=chunk, feeder=feeder, in_hand=in_hand
    )
    if taken is None:
        return None
    events, kept, now = taken
    if target.subscription is not None and not target.subscription.enabled:
        raise DeliveryRefused(
            delivery_services.SUBSCRIPTION_DISABLED.format(name=target.name)
        )
    made: list[tuple[Item, Held]] = []
    if kept:
        deliveries = delivery_services.deliveries_build(
            target=target,
            events=kept,
            door=Door.REPLAY,
            run=replay.run,
            as_is=True,
            allow_problems=True,
            now=now,
        )
        made = _write_items(
            _fresh(deliveries, target, now), now, target.dedupe_window_hours
        )
    # The run is not opened for the engine (its claims would write, each
    # time): what the lane stores waiting for a retry opens it (_store).
    services._record_chunk(
        replay, chunk, read=len(events), kept=len(kept), now=now, reopen=False
    )
    return made


def _write_items(fresh, now: datetime, window) -> list[tuple[Item, Held]]:
    if not fresh:
        return []
    ready, stored = [], []
    for delivery, key in fresh:
        target = delivery.target
        text = delivery.__dict__.get("payload_text") or _BODY.encode(delivery.payload)
        # Stored as it is sent (services._insert takes it).
        delivery.__dict__["payload_text"] = text
        try:
            prepared = senders.sender_for(target.kind).prepare(
                target=target, event_text=text
            )
        except Exception as error:
            # Not sendable as Segment would send it: it ends alone, saying why.
            delivery.state, delivery.outcome = State.FAILED, Outcome.RED
            delivery.reason = queue.UNPREPARABLE.format(
                detail=queue.describe_fault(error)
            )[:500]
            delivery.next_attempt_at = None
            stored.append(delivery)
            continue
        headers_json = prepared.headers_json or json.dumps(
            [list(pair) for pair in prepared.headers], ensure_ascii=False
        )
        ready.append((delivery, key, target, prepared, headers_json, text))
    _insert(stored, now)
    if not ready:
        return []
    stamp = queue.stamp_of(now)
    rows = [
        (delivery.run_id, _row_of(delivery), text, prepared.url, headers_json, stamp)
        for delivery, _, _, prepared, headers_json, text in ready
    ]
    keys = []
    table = LaneItem._meta.db_table
    per_statement = max(1, connection.features.max_query_params // 6)
    for start in range(0, len(rows), per_statement):
        part = rows[start : start + per_statement]
        keys += sorted(
            key
            for (key,) in queue.rows(
                f"INSERT INTO {table} (run_id, row, payload, request_url, "
                "request_headers, created_at) VALUES "
                + ", ".join("(%s, %s, %s, %s, %s, %s)" for _ in part)
                + " RETURNING id",
                [value for row in part for value in row],
            )
        )
    made = []
    for key, (delivery, dedupe, target, prepared, headers_json, _) in zip(
        keys, ready, strict=True
    ):
        item = Item(
            key,
            prepared.url,
            prepared.headers,
            prepared.body,
            target.timeout_seconds,
            target.api_key,
        )
        made.append(
            (
                item,
                Held(
                    delivery,
                    target,
                    prepared.url,
                    headers_json,
                    now,
                    dedupe,
                    window,
                    stamp,
                ),
            )
        )
    return made


_ATTEMPT_COLUMNS = (
    "delivery_id",
    "number",
    "target_id",
    "due_at",
    "started_at",
    "request_method",
    "request_url",
    "request_headers",
    "response_status",
    "response_headers",
    "response_body",
    "response_truncated",
    "latency_ms",
    "error_kind",
    "error_message",
    "exchanges",
    "invocation",
    "outcome",
    "reason",
    "created_at",
)


def _insert_attempts(rows: list[tuple]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {Attempt._meta.db_table} ({', '.join(_ATTEMPT_COLUMNS)}) "
            f"VALUES ({', '.join('%s' for _ in _ATTEMPT_COLUMNS)})",
            rows,
        )


def _take_items(keys) -> set[int]:
    """Drop these LaneItems; the ids that were still there. Whoever drops an
    item stores its delivery: each is stored once, even should a resume's
    recovery race a feeding that is finishing."""
    keys = list(keys)
    table = LaneItem._meta.db_table
    per_statement = connection.features.max_query_params
    taken = set()
    for start in range(0, len(keys), per_statement):
        part = keys[start : start + per_statement]
        taken.update(
            key
            for (key,) in queue.rows(
                f"DELETE FROM {table} WHERE id IN ({', '.join('%s' for _ in part)}) "
                "RETURNING id",
                part,
            )
        )
    return taken


def _hold_keys(held: list[Held], now: datetime) -> None:
    """Each delivery takes its messageId's dedupe key, unless another took it
    meanwhile within its window (a holder older than the window hands it on)."""
    wanted = {h.dedupe_key for h in held if h.dedupe_key is not None}
    if not wanted:
        return
    holders = delivery_services._holders(wanted)
    stale = []
    for h in held:
        key = h.dedupe_key
        if key is None:
            continue
        holder = holders.get(key)
        if holder is not None:
            window = h.window_hours
            if window is not None and holder[1] >= now - timedelta(hours=window):
                continue  # taken within the window by another send meanwhile
            stale.append(holder[0])
        h.delivery.dedupe_key = key
        holders[key] = (None, now)
    if stale:
        Delivery.objects.filter(pk__in=stale).update(dedupe_key=None)


# Answers repeat their headers (a Date changes once a second): each list is
# encoded once.
_HEADERS_KEPT = 256
_headers_encoded: dict[tuple, str] = {}


def _headers_json(headers) -> str:
    key = headers if isinstance(headers, tuple) else tuple(headers)
    found = _headers_encoded.get(key)
    if found is None:
        found = json.dumps(
            [[safe_text(n), safe_text(v)] for n, v in headers], ensure_ascii=False
        )
        if len(_headers_encoded) >= _HEADERS_KEPT:
            _headers_encoded.clear()
        _headers_encoded[key] = found
    return found


def _attempt_row(
    h: Held, delivery_id: int, *, started: datetime, exchange, outcome, reason, now
):
    """An attempt's row; `now` as the statement takes it (queue.stamp_of)."""
    return (
        delivery_id,
        1,
        h.target.pk,
        h.written_stamp or queue.stamp_of(h.written_at),
        queue.stamp_of(started),
        "POST",
        h.url,
        h.headers_json,
        exchange.status if exchange is not None else None,
        _headers_json(exchange.headers) if exchange is not None else "[]",
        safe_text(exchange.body) if exchange is not None else "",
        exchange.truncated if exchange is not None else False,
        exchange.latency_ms if exchange is not None else None,
        exchange.error_kind if exchange is not None else Attempt.ErrorKind.INTERRUPTED,
        safe_text(exchange.error_message)[:1000]
        if exchange is not None
        else queue.INTERRUPTED,
        "[]",
        "{}",
        outcome,
        safe_text(reason)[:500],
        now,
    )


@transaction.atomic
def record(*, results: list[Result], held: dict[int, Held], run_id: int) -> None:
    """Each answer's delivery and attempt, stored once, in its final state or
    waiting for its retry; its LaneItem dropped. One transaction."""
    now = timezone.now()
    taken = _take_items(result[0] for result in results)
    done, rows, throttled = [], [], []
    for key, started_at, latency_ms, answer, verdict_fields, retry_after in results:
        h = held.pop(key, None)
        if h is None or key not in taken:
            continue
        # Its headers stay the answer's tuple (read, never changed).
        exchange = transport.Exchange(latency_ms, *answer)
        verdict = webhook.Verdict(*verdict_fields)
        if exchange.status == 429:
            throttled.append((run_id, exchange.headers))
        started = datetime.fromtimestamp(started_at, tz=UTC)
        step = retry.next_step(
            verdict=verdict,
            policy=retry.Policy(h.target.retry_policy, h.target.time_scale),
            attempts_made=1,
            started_at=started,
            status=exchange.status,
            retry_after=retry_after,
        )
        delivery = h.delivery
        delivery.state = step.state
        delivery.reason = safe_text(step.reason)[:500]
        delivery.next_attempt_at = step.next_attempt_at
        delivery.outcome = verdict.outcome
        delivery.response_status = exchange.status
        delivery.latency_ms = exchange.latency_ms
        delivery.attempt_count = 1
        done.append(h)
        rows.append((started, exchange, verdict.outcome, verdict.reason))
    _store(done, rows, now, run_id)
    queue.throttle_runs(throttled, now)


def _insert(deliveries: list[Delivery], now: datetime) -> None:
    """The lane's deliveries stored; those of a subscription deleted since
    they were read (their answers came back after it) stored without it."""
    delivery_services.forget_deleted_subscriptions(deliveries)
    delivery_services._insert(deliveries, now)


def _store(done: list[Held], rows: list[tuple], now: datetime, run_id: int) -> None:
    if not done:
        return
    _hold_keys(done, now)
    deliveries = [h.delivery for h in done]
    _insert(deliveries, now)
    stamp = queue.stamp_of(now)
    _insert_attempts(
        [
            _attempt_row(
                h,
                h.delivery.pk,
                started=started,
                exchange=exchange,
                outcome=outcome,
                reason=reason,
                now=stamp,
            )
            for h, (started, exchange, outcome, reason) in zip(done, rows, strict=True)
        ]
    )
    if any(
        delivery.state in (State.PENDING, State.RETRYING) for delivery in deliveries
    ):
        # A retry to come: the engine looks at open runs only.
        Run.objects.filter(pk=run_id).update(settled_at=None)
        transaction.on_commit(runtime.wake)
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: runtime.changed(ids))


@transaction.atomic
def give_back(*, keys: list[int], held: dict[int, Held], replay_id: int) -> None:
    """Events handed back unsent become pending deliveries, which the engine
    (or a resume) sends; a cancelled replay's end as its cancel ends them."""
    from sandbox.replay import services

    # A replay deleted meanwhile was cancelled first.
    cancelled = (
        not Replay.objects.filter(pk=replay_id)
        .exclude(status=Replay.Status.CANCELLED)
        .exists()
    )
    now = timezone.now()
    taken = _take_items(keys)
    back = [held.pop(key) for key in keys if key in held and key in taken]
    for h in back:
        delivery = h.delivery
        if cancelled:
            delivery.state, delivery.reason = State.FAILED, services.CANCELLED
            delivery.next_attempt_at = None
        else:
            delivery.state, delivery.next_attempt_at = State.PENDING, now
    deliveries = [h.delivery for h in back]
    _hold_keys(back, now)
    _insert(deliveries, now)
    if deliveries and not cancelled:
        run_id = deliveries[0].run_id
        Run.objects.filter(pk=run_id).update(settled_at=None)
        transaction.on_commit(runtime.wake)
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: runtime.changed(ids))


@transaction.atomic
def lane_recover(*, run_id: int) -> int:
    """What a lane had written ahead when its processes died, recorded as
    interrupted: the endpoint may have received it, so it is never sent again
    as the same attempt; its retry follows the policy (at once if late), as for
    an attempt the engine had in flight (queue.deliveries_recover)."""
    held = _held_of(list(LaneItem.objects.filter(run_id=run_id).order_by("pk")))
    return _interrupt(list(held), held=held, run_id=run_id)


@transaction.atomic
def salvage(*, run_id: int, results: list[Result], sending: set[int]) -> int:
    """What the feeding process left when it died while the command went on
    (its LaneItems), stored from what the command knows: an answer it got, as
    that answer; an event it was sending with no answer, as interrupted; the
    rest, never sent, as pending (a resume sends them). How many were left."""
    held = _held_of(list(LaneItem.objects.filter(run_id=run_id).order_by("pk")))
    if not held:
        return 0
    left = len(held)
    record(results=[r for r in results if r[0] in held], held=held, run_id=run_id)
    _interrupt([key for key in sending if key in held], held=held, run_id=run_id)
    replay_id = Replay.objects.filter(run_id=run_id).values_list("pk", flat=True)
    give_back(keys=list(held), held=held, replay_id=replay_id.first())
    return left


def _held_of(items: list[LaneItem]) -> dict[int, Held]:
    """LaneItems as the feeding holds them (a recovery's, a salvage's)."""
    targets = {
        target.pk: target
        for target in DeliveryTarget.objects.filter(
            pk__in={json.loads(item.row)[1] for item in items}
        )
    }
    held = {}
    for item in items:
        delivery = _delivery_of_row(item.row, item.payload, item.run_id)
        held[item.pk] = Held(
            delivery,
            targets[delivery.target_id],
            item.request_url,
            item.request_headers,
            queue.aware(item.created_at),
            None,
            None,
        )
    return held


def _interrupt(keys: list[int], *, held: dict[int, Held], run_id: int) -> int:
    """These events, sent or perhaps sent with no answer stored, recorded as
    interrupted; in the caller's transaction."""
    now = timezone.now()
    taken = _take_items(keys)
    verdict = webhook.classify_error(queue.INTERRUPTED)
    done, rows = [], []
    for key in keys:
        h = held.pop(key, None)
        if h is None or key not in taken:
            continue
        step = retry.next_step(
            verdict=verdict,
            policy=retry.Policy(h.target.retry_policy, h.target.time_scale),
            attempts_made=1,
            started_at=h.written_at,
        )
        delivery = h.delivery
        delivery.state = step.state
        delivery.reason = step.reason[:500]
        delivery.next_attempt_at = (
            max(step.next_attempt_at, now) if step.next_attempt_at else None
        )
        delivery.outcome = Outcome.RED
        delivery.attempt_count = 1
        done.append(h)
        rows.append((h.written_at, None, Outcome.RED, queue.INTERRUPTED))
    _store(done, rows, now, run_id)
    return len(done)


def lane_feed(
    *, replay_id: int, feeder: str, stop: threading.Event, link: Link
) -> Replay:
    """Read the replay's source from where it stands, write it ahead a chunk at
    a time and hand it to the sender, recording its answers, until the source
    is all read (or the replay cancelled, or `stop` set) and every event handed
    over is answered or handed back. Blocking: the feeding process's.

    Each turn is one transaction: the answers that came back, what came back
    unsent, and the next chunk written ahead (a commit costs as much as dozens
    of rows: each writes every index page the rows touched). Should the
    command die, what it said it was sending and did not answer is recorded
    as interrupted, and the rest stored to be sent by a resume."""
    from sandbox.replay import reading, services

    replay = Replay.objects.select_related("run", "subscription", "target").get(
        pk=replay_id
    )
    if replay.fed_at is not None or not services._take_feeding(replay, feeder):
        return replay
    with connection.cursor() as cursor:
        # Fewer, larger checkpoints: the lane's rows land on random pages of
        # the messageId indexes, which a checkpoint each 1,000 pages of log
        # copied back again and again.
        cursor.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
    try:
        turn = _Turn(replay=replay, feeder=feeder, window=window_for(replay.run))
    except DeliveryRefused as error:
        _stopped(replay, error)
        Replay.objects.filter(pk=replay.pk, feeder=feeder).update(
            feeder="", updated_at=timezone.now()
        )
        return replay
    # Two chunks to the window: the next is written while the sender works
    # through the one before (fewer, larger transactions than more, smaller).
    chunk_size = min(CHUNK_MOST, max(turn.window // 2, 1))
    chunks = services._chunks(replay, chunk_size)
    reading_on = True
    finished = done = False
    looked = time.monotonic()
    try:
        while True:
            if stop.is_set() or done:
                reading_on = False
            room = reading_on and len(turn.held) + chunk_size <= turn.window
            if room:
                wait = 0
            elif not reading_on and stop.is_set():
                wait = None
            else:
                wait = RELOOK_SECONDS
            # No chunk is due: a turn waits a moment for more answers.
            back = _collect(link, wait=wait, gather=not room)
            done = done or back.ended or back.gone
            chunk = None
            if room and not done:
                try:
                    chunk = next(chunks, None)
                except (reading.FileUnreadable, OSError) as error:
                    _stopped(replay, error)
                    reading_on = False
                if chunk is None and reading_on:
                    reading_on, finished = False, True
                if time.monotonic() - looked >= TARGET_EVERY_SECONDS:
                    try:
                        turn.target = _target_now(replay)
                    except DeliveryRefused as error:
                        _stopped(replay, error)
                        reading_on = False
                    looked = time.monotonic()
            if back or chunk is not None:
                try:
                    made = turn.take(back, chunk)
                except DeliveryRefused as error:
                    _stopped(replay, error)
                    reading_on, made = False, []
                if made is None:
                    # Cancelled or deleted meanwhile, or no longer its feeder.
                    reading_on = False
                elif made and not link.send(ITEMS, [item for item, _ in made]):
                    reading_on = False
            if done or (not reading_on and not turn.held):
                break
    finally:
        chunks.close()
    now = timezone.now()
    # Settled now, if nothing of it waits for the engine (its page's average
    # runs until then); otherwise the engine settles it.
    Run.objects.filter(pk=replay.run_id).update(settled_at=None)
    queue._settle_if_done(replay.run_id, now)
    if finished:
        Replay.objects.filter(pk=replay.pk, feeder=feeder).update(
            fed_at=now, updated_at=now
        )
        replay.fed_at = now
        if replay.shuffle:
            from sandbox.replay import shuffling

            shuffling.remove(services.shuffle_directory(replay.pk))
    Replay.objects.filter(pk=replay.pk, feeder=feeder).update(feeder="", updated_at=now)
    transaction.on_commit(runtime.wake)
    return replay


def _target_now(replay: Replay) -> Target:
    """The replay's target as its subscription is now (edited, disabled, or
    deleted: DeliveryRefused)."""
    from sandbox.replay import services

    if replay.subscription is not None:
        try:
            replay.subscription.refresh_from_db()
        except Subscription.DoesNotExist:
            replay.subscription = None
    return services.replay_target(replay=replay)


def _stopped(replay: Replay, error: Exception) -> None:
    from sandbox.replay import services

    replay.problem = services.STOPPED.format(what=replay.source_label, detail=error)[
        :500
    ]
    Replay.objects.filter(pk=replay.pk).update(problem=replay.problem)


@dataclass
class _Back:
    """What came back from the command since the last turn."""

    results: list = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)
    starting: list[int] = field(default_factory=list)
    ended: bool = False
    gone: bool = False

    def __bool__(self) -> bool:
        return bool(self.results or self.unsent or self.starting or self.gone)


def _collect(link: Link, *, wait: float | None, gather: bool) -> _Back:
    """What came back, waiting up to `wait` for the first of it; `gather`: and
    up to GATHER_SECONDS after it for more, until GATHER_MOST answers."""
    back = _Back()
    message = link.receive(wait)
    until = time.monotonic() + GATHER_SECONDS
    while message is not None:
        kind, payload = message
        if kind == RESULTS:
            back.results += payload
        elif kind == UNSENT:
            back.unsent += payload
        elif kind == STARTING:
            back.starting += payload
        elif kind == END:
            back.ended = True
            break
        elif kind == GONE:
            back.gone = True
            break
        if len(back.results) >= RECORD_MOST:
            break
        message = link.receive(0)
        if message is None and gather and len(back.results) < GATHER_MOST:
            left = until - time.monotonic()
            if left > 0:
                message = link.receive(left)
    return back


@dataclass
class _Turn:
    """The feeding's state between turns: what the sender holds, and which of
    it the command said it is sending."""

    replay: Replay
    feeder: str
    window: int
    target: Target | None = None
    held: dict[int, Held] = field(default_factory=dict)
    starting: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        from sandbox.replay import services

        self.target = services.replay_target(replay=self.replay)

    @transaction.atomic
    def take(self, back: _Back, chunk) -> list[tuple[Item, Held]] | None:
        """One transaction: answers recorded, unsent events stored, the next
        chunk written ahead. The chunk's items, or None when the replay may
        not go on."""
        replay, held = self.replay, self.held
        self.starting.update(back.starting)
        if back.results:
            record(results=back.results, held=held, run_id=replay.run_id)
        if back.unsent:
            give_back(keys=back.unsent, held=held, replay_id=replay.pk)
        if back.gone:
            # The command died: what it was sending may have gone out.
            sending = [key for key in self.starting if key in held]
            _interrupt(sending, held=held, run_id=replay.run_id)
            give_back(keys=list(held), held=held, replay_id=replay.pk)
        self.starting.intersection_update(held)
        if chunk is None:
            return []
        in_hand = frozenset(h.delivery.message_id for h in held.values())
        made = write_ahead(
            replay=replay,
            target=self.target,
            chunk=chunk,
            feeder=self.feeder,
            in_hand=in_hand,
        )
        if made is not None:
            held.update((item.key, h) for item, h in made)
        return made
