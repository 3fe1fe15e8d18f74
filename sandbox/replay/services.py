"""Writes for replays: make one, feed its source into the pipeline in chunks,
pause, resume, cancel and delete it.

A replay is a Run of door REPLAY. Its source (a file, past deliveries, or the
events the sandbox's sources received) is read as a stream and enqueued through
the bulk door a chunk at a time, each chunk in one transaction with the
replay's position in the source: a replay that was cancelled, or whose process
died, resumes after the last chunk enqueued, and what was enqueued stays
enqueued (sent once, by whichever engine). The file is read ahead of the
sending by at most a window of events, so neither memory nor the queue holds a
whole large file.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.db import close_old_connections, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from sandbox import spec
from sandbox.delivery import queue, runs, runtime
from sandbox.delivery.models import OPEN_STATES, Delivery, Door, Run, State
from sandbox.delivery.runs import run_create
from sandbox.delivery.services import (
    MESSAGE_ID_KEPT,
    DeliveryRefused,
    Target,
    deliveries_enqueue,
)
from sandbox.delivery.targets import target_row
from sandbox.replay import lane, reading, shuffling, uploads
from sandbox.replay.models import BAD_LINES_KEPT, Replay
from sandbox.sources.models import IngestedDelivery, IngestedEvent

logger = logging.getLogger("sandbox.replay")

# Events per transaction through the bulk door (SANDBOX_REPLAY_CHUNK changes it,
# for tests that need a replay to stop between chunks). Small, because the
# engine's claims wait for the write lock while a chunk is stored: 2,000 events
# held it about 150 ms, long enough to empty every slot of a replay at 2,000
# events/s. 250 held it 20 ms on an empty database and 40-50 ms on one of
# 100,000 deliveries, where a replay at 2,000 events/s to a receiver answering
# after 20 ms still had no row ready for 9 % of its time; with 100 it had none
# for 1 %, and sent 2.5 % more (1,968-1,986 against 1,914-1,936 events/s).
CHUNK_EVENTS = int(os.environ.get("SANDBOX_REPLAY_CHUNK", "100"))
# The most deliveries of a replay open at once: the source is read no further
# ahead of the sending.
WINDOW_EVENTS = 10 * CHUNK_EVENTS
WAIT_SECONDS = 0.1
CANCELLED = "Cancelled: the replay was cancelled before this event was delivered."
UNREADABLE = "{detail}"
NO_SOURCE = "Choose a file or a history filter to replay."
NOT_RESUMABLE = "Replay #{pk} has nothing left to resume."
STOPPED = "Stopped reading {what}: {detail}"
FINISHED = "Replay {pk} finished already: there is nothing to {action}."
SUBSCRIPTION_DELETED = (
    "The subscription {name!r} was deleted: nothing more of this replay is sent."
)
BAD_RATE = "The rate must be a number of events per second above 0, or empty."
BAD_CONCURRENCY = "The concurrency must be a whole number from 1 to {most}."
MAX_CONCURRENCY = runs.CONCURRENCY_MOST
# The slowest rate a replay takes: one event in 1,000 s.
MIN_RATE = 0.001


class ReplayRefused(Exception):
    """The replay cannot be made or changed as asked."""


@dataclass(frozen=True)
class HistoryFilters:
    """Which past deliveries, or which events the sandbox's sources received
    (`ingested`), a history replay sends again."""

    since: datetime | None = None
    until: datetime | None = None
    event_type: str = ""
    event_name: str = ""
    # Sent to this subscription (an ingested event: delivered to it).
    subscription_id: int | None = None
    # Came in through this source (a delivery: made from one of its events).
    source_id: int | None = None
    ingested: bool = False

    def as_json(self) -> dict:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "event_type": self.event_type,
            "event_name": self.event_name,
            "subscription_id": self.subscription_id,
            "source_id": self.source_id,
            "ingested": self.ingested,
        }

    @classmethod
    def of_json(cls, stored: dict) -> "HistoryFilters":
        def moment(value):
            return datetime.fromisoformat(value) if value else None

        return cls(
            since=moment(stored.get("since")),
            until=moment(stored.get("until")),
            event_type=stored.get("event_type") or "",
            event_name=stored.get("event_name") or "",
            subscription_id=stored.get("subscription_id"),
            source_id=stored.get("source_id"),
            ingested=bool(stored.get("ingested")),
        )

    def rows(self) -> QuerySet:
        """The deliveries, or the ingested events, these filters choose."""
        if self.ingested:
            return IngestedEvent.objects.filter(self._ingested_query())
        return Delivery.objects.filter(self.query())

    def query(self) -> Q:
        found = Q(injected_duplicate=False) & ~Q(state=State.DEDUPLICATED)
        found &= self._chosen(moment="created_at")
        if self.subscription_id:
            found &= Q(subscription_id=self.subscription_id)
        if self.source_id:
            found &= Q(
                pk__in=IngestedDelivery.objects.filter(
                    event__source_id=self.source_id
                ).values("delivery_id")
            )
        return found

    def _ingested_query(self) -> Q:
        # Accepted events only: a dropped one was never forwarded (Segment
        # would not have it to replay).
        found = Q(status=IngestedEvent.Status.ACCEPTED)
        found &= self._chosen(moment="received_at")
        if self.source_id:
            found &= Q(source_id=self.source_id)
        if self.subscription_id:
            found &= Q(
                pk__in=IngestedDelivery.objects.filter(
                    delivery_id__in=Delivery.objects.filter(
                        subscription_id=self.subscription_id
                    ).values("pk")
                ).values("event_id")
            )
        return found

    def _chosen(self, *, moment: str) -> Q:
        """The time range (on the `moment` field), type and event name."""
        found = Q()
        if self.since:
            found &= Q(**{f"{moment}__gte": self.since})
        if self.until:
            found &= Q(**{f"{moment}__lt": self.until})
        if self.event_type:
            found &= Q(event_type=self.event_type)
        if self.event_name:
            found &= Q(event_name=self.event_name)
        return found


def _checked_controls(rate: float | None, concurrency: int) -> None:
    if rate is not None and not 0 < rate < float("inf"):
        raise ReplayRefused(BAD_RATE)
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ReplayRefused(BAD_CONCURRENCY.format(most=MAX_CONCURRENCY))


@transaction.atomic
def replay_create(
    *,
    target: Target,
    path: Path | None = None,
    file_name: str = "",
    history: HistoryFilters | None = None,
    rate: float | None = None,
    concurrency: int = 10,
    shuffle: bool = False,
    new_message_ids: bool = False,
) -> Replay:
    """A replay of a file (JSON Lines or a JSON array, gzipped or not) or of past
    deliveries, to a target, not started yet (replay_feed starts it)."""
    _checked_controls(rate, concurrency)
    if path is None and history is None:
        raise ReplayRefused(NO_SOURCE)
    fields: dict = {}
    if path is not None:
        try:
            found = reading.EventFile(path)
        except reading.FileUnreadable as error:
            # An upload is named as the user named it, not where it was stored.
            name = file_name or path
            raise ReplayRefused(
                reading.UNREADABLE.format(path=name, detail=error.detail)
            ) from None
        fields = {
            "source": Replay.Source.FILE,
            "file_name": file_name or Path(path).name,
            "file_path": str(path),
            "file_size": found.size,
            "unit": found.unit,
        }
    else:
        table = IngestedEvent if history.ingested else Delivery
        newest = table.objects.order_by("-pk").values_list("pk", flat=True).first()
        fields = {
            "source": Replay.Source.INGESTED
            if history.ingested
            else Replay.Source.HISTORY,
            "history_filters": history.as_json(),
            "history_until_id": newest or 0,
            "unit": "event" if history.ingested else "delivery",
        }
    if target.subscription is not None and not target.subscription.enabled:
        raise ReplayRefused(f"The subscription {target.name!r} is disabled.")
    run = run_create(
        door=Door.REPLAY,
        label=f"Replay of {fields.get('file_name') or _history_label(history)}"[:200],
        concurrency=concurrency,
        applied=_applied(rate, concurrency, shuffle, new_message_ids),
    )
    Run.objects.filter(pk=run.pk).update(rate=rate)
    run.rate = rate
    # Uploads left by replays since deleted, or by requests that broke off.
    transaction.on_commit(uploads.uploads_sweep)
    return Replay.objects.create(
        run=run,
        subscription=target.subscription,
        subscription_name=target.name[:200] if target.subscription else "",
        target=target_row(target),
        shuffle=shuffle,
        new_message_ids=new_message_ids,
        **fields,
    )


def _history_label(history: HistoryFilters | None) -> str:
    return "ingested events" if history is not None and history.ingested else "history"


def rate_text(rate: float) -> str:
    """A rate as people write it: 2,000, 0.5, 100,000,000,000 (not 1e+11)."""
    return f"{rate:,.3f}".rstrip("0").rstrip(".")


def _applied(rate, concurrency, shuffle, new_message_ids) -> str:
    parts = [
        f"{rate_text(rate)} events/s" if rate else "unlimited rate",
        f"concurrency {concurrency}",
        "shuffled" if shuffle else "original order",
    ]
    if new_message_ids:
        parts.append("new messageIds")
    return ", ".join(parts)


def replay_target(*, replay: Replay) -> Target:
    """Where the replay sends: its subscription as it is now, or its endpoint;
    DeliveryRefused when its subscription was deleted."""
    if replay.subscription is not None:
        return Target.of(replay.subscription)
    if replay.subscription_name:
        raise DeliveryRefused(
            SUBSCRIPTION_DELETED.format(name=replay.subscription_name)
        )
    return Target.of_row(replay.target)


def replays_stop_for_deleted_subscription(*, subscription_id: int) -> int:
    """The subscription's open replays cancelled, saying why (before it is
    deleted): nothing more of them is read or sent, and none is resumed."""
    open_ones = Replay.objects.filter(
        subscription_id=subscription_id,
        status__in=[Replay.Status.RUNNING, Replay.Status.PAUSED],
    )
    stopped = 0
    for replay in open_ones.select_related("subscription"):
        problem = STOPPED.format(
            what=replay.source_label,
            detail=SUBSCRIPTION_DELETED.format(name=replay.subscription.name),
        )[:500]
        stopped += Replay.objects.filter(pk=replay.pk).update(
            status=Replay.Status.CANCELLED, problem=problem, updated_at=timezone.now()
        )
    if stopped:
        transaction.on_commit(runtime.wake)
    return stopped


# Feeding --------------------------------------------------------------------------


@dataclass
class _Chunk:
    events: list[tuple[int, dict]] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)
    position: int = 0
    bytes_read: int = 0


def _chunked(
    items: Iterator[tuple[int, int, dict | None, str | None]],
    *,
    size: int,
    position: int,
    bytes_read: Callable[[int], int],
    end_bytes: int,
) -> Iterator[_Chunk]:
    """Items (where to resume after it, where it is in the source, the event,
    the problem) as chunks of `size`, each ending with where the source then
    stands (the position to resume from, and how far into the file for
    progress); the last chunk, perhaps empty, says the source ended."""
    chunk = _Chunk(position=position)
    for resume_at, at, event, problem in items:
        if event is not None:
            chunk.events.append((at, event))
        else:
            chunk.bad.append((at, problem))
        chunk.position = resume_at
        if len(chunk.events) + len(chunk.bad) >= size:
            chunk.bytes_read = bytes_read(chunk.position)
            yield chunk
            chunk = _Chunk(position=chunk.position)
    chunk.bytes_read = end_bytes
    yield chunk


def _file_items(found: reading.EventFile, skip: int):
    for item in found.items(skip=skip):
        yield item.position, item.position, item.event, item.problem


def _history_items(replay: Replay, *, after: int, size: int):
    chosen = HistoryFilters.of_json(replay.history_filters).rows()
    while True:
        rows = list(
            chosen.filter(pk__gt=after, pk__lte=replay.history_until_id or 0)
            .order_by("pk")
            .values_list("pk", "payload")[:size]
        )
        for pk, payload in rows:
            event, problem = reading.event_or_problem(payload)
            yield pk, pk, event, problem
        if len(rows) < size:
            return
        after = rows[-1][0]


def shuffle_directory(replay_id: int) -> Path:
    """Where a shuffled replay keeps its source's order (shuffling.py)."""
    return uploads.shuffles_directory() / str(replay_id)


def _shuffled_items(replay: Replay, source: shuffling.ShuffledSource, size: int):
    """The whole source in a random order that a resume finds again; positions
    count the events of that order."""
    found = reading.EventFile(replay.file_path) if replay.file_path else None
    whole = (
        _file_items(found, 0)
        if found is not None
        else _history_items(replay, after=0, size=size)
    )
    told = [0.0]

    def progress(_count: int) -> None:
        # How far through the file the first pass is, for the page and the
        # command line (once a second).
        if found is not None and time.monotonic() - told[0] >= 1.0:
            told[0] = time.monotonic()
            Replay.objects.filter(pk=replay.pk).update(bytes_read=found.bytes_read)
            # Its page is pushed the new figure, as for a delivery's change.
            transaction.on_commit(lambda: runtime.run_changed(run_id=replay.run_id))

    source.prepare(((at, event, problem) for _, at, event, problem in whole), progress)
    fed = replay.position
    for at, event, problem in source.items(skip=fed):
        fed += 1
        yield fed, at, event, problem


def _chunks(replay: Replay, size: int) -> Iterator[_Chunk]:
    if replay.shuffle:
        source = shuffling.ShuffledSource(
            shuffle_directory(replay.pk), seed=f"replay-{replay.pk}"
        )
        return _chunked(
            _shuffled_items(replay, source, size),
            size=size,
            position=replay.position,
            # Progress through the file, as the share of the order fed.
            bytes_read=lambda fed: replay.file_size * fed // max(source.total, 1),
            end_bytes=replay.file_size,
        )
    if replay.source == Replay.Source.FILE:
        found = reading.EventFile(replay.file_path)
        return _chunked(
            _file_items(found, replay.position),
            size=size,
            position=replay.position,
            bytes_read=lambda _: found.bytes_read,
            end_bytes=replay.file_size,
        )
    return _chunked(
        _history_items(replay, after=replay.position, size=size),
        size=size,
        position=replay.position,
        bytes_read=lambda _: 0,
        end_bytes=0,
    )


def _as_replayed(event: dict, *, new_message_id: bool, now: datetime) -> dict:
    """The event as it was (timestamps and messageId kept), or with a new
    messageId; an event without one gets one, as Segment's API would add."""
    if new_message_id or not isinstance(event.get("messageId"), str):
        return {**event, "messageId": spec.message_id_like(event, now=now)()}
    return event


def _chunk_taken(
    *, replay: Replay, chunk: _Chunk, feeder: str, in_hand: frozenset[str] = frozenset()
) -> tuple[list[dict], list[dict], datetime] | None:
    """In the chunk's transaction: its events as replayed, those of them to
    send, and the moment; None when the replay was cancelled or deleted while
    the chunk was read, or another process took the feeding over. `in_hand`:
    messageIds of the run on their way, not yet stored (the lane's)."""
    going_on = (
        Replay.objects.select_for_update()
        .filter(pk=replay.pk, feeder=feeder)
        .exclude(status=Replay.Status.CANCELLED)
        .values_list("pk", flat=True)
        .first()
    )
    if going_on is None:
        return None
    now = timezone.now()
    events = [
        _as_replayed(event, new_message_id=replay.new_message_ids, now=now)
        for _, event in chunk.events
    ]
    # A messageId already in this run is not enqueued again (a resumed replay,
    # or a file that repeats an event). Beyond the run, the target's own
    # deduplication applies, as to every send (segment-reference.md section 9):
    # a messageId it received within its window is deduplicated, not sent.
    seen = _in_run(replay.run_id, {event["messageId"] for event in events})
    seen |= in_hand
    kept = []
    for event in events:
        if event["messageId"] in seen:
            continue
        seen.add(event["messageId"])
        kept.append(event)
    return events, kept, now


@transaction.atomic
def _enqueue_chunk(
    *, replay: Replay, target: Target, chunk: _Chunk, feeder: str
) -> bool:
    """Enqueue the chunk and move the position past it; False, enqueuing
    nothing, when the replay was cancelled or deleted while the chunk was read
    (resuming reads it again; a deleted replay leaves no stray deliveries), or
    another process took the feeding over (this one's was seen as gone)."""
    taken = _chunk_taken(replay=replay, chunk=chunk, feeder=feeder)
    if taken is None:
        return False
    events, kept, now = taken
    if kept:
        deliveries_enqueue(
            target=target,
            events=kept,
            door=Door.REPLAY,
            run=replay.run,
            as_is=True,
            allow_problems=True,
            now=now,
        )
    _record_chunk(replay, chunk, read=len(events), kept=len(kept), now=now)
    return True


def _record_chunk(
    replay: Replay,
    chunk: _Chunk,
    *,
    read: int,
    kept: int,
    now: datetime,
    reopen: bool = True,
) -> None:
    """The replay moved past the chunk: its position, what was read of it, and
    its bad lines (the first BAD_LINES_KEPT). In the chunk's transaction.
    `reopen`: the chunk enqueued deliveries for the engine."""
    room = max(0, BAD_LINES_KEPT - len(replay.bad_lines))
    # In the order of the source (a shuffled replay reads them out of order).
    replay.bad_lines = sorted(
        replay.bad_lines + [list(bad) for bad in chunk.bad[:room]],
        key=lambda bad: bad[0],
    )
    replay.position = chunk.position
    replay.bytes_read = chunk.bytes_read
    replay.events_read += read
    replay.bad_count += len(chunk.bad)
    replay.duplicates_skipped += read - kept
    Replay.objects.filter(pk=replay.pk).update(
        bad_lines=replay.bad_lines,
        position=replay.position,
        bytes_read=replay.bytes_read,
        events_read=replay.events_read,
        bad_count=replay.bad_count,
        duplicates_skipped=replay.duplicates_skipped,
        updated_at=now,
    )
    if reopen:
        # The engine stops looking at a run once nothing of it is open: a chunk
        # that arrives after the sending caught up opens it again.
        Run.objects.filter(pk=replay.run_id).update(settled_at=None)


def _in_run(run_id: int, message_ids: set[str]) -> set[str]:
    """Which of these messageIds the run already holds. Looked up by messageId
    (the dedupe index), never by run: `+run_id` keeps SQLite from reading the
    whole run per chunk, which grew with every chunk read."""
    if not message_ids:
        return set()
    kept = MESSAGE_ID_KEPT
    marks = ", ".join("%s" for _ in message_ids)
    found = {
        message_id
        for (message_id,) in queue.rows(
            f"SELECT message_id FROM {Delivery._meta.db_table} "
            f"WHERE message_id IN ({marks}) AND +run_id = %s",
            [*message_ids, run_id],
        )
    }
    # Ids longer than the column keeps: compared whole, as their events hold them.
    starts = {m[:kept] for m in message_ids if len(m) > kept}
    if starts:
        marks = ", ".join("%s" for _ in starts)
        whole = (
            "payload->>'messageId'"
            if connection.vendor == "postgresql"
            else "json_extract(payload, '$.messageId')"
        )
        found |= {
            message_id
            for (message_id,) in queue.rows(
                f"SELECT {whole} FROM {Delivery._meta.db_table} "
                f"WHERE message_id IN ({marks}) AND run_id + 0 = %s",
                [*starts, run_id],
            )
            if message_id in message_ids
        }
    return found


def _take_feeding(replay: Replay, feeder: str) -> bool:
    """Become the replay's one feeder, unless a live process already is."""
    current = Replay.objects.filter(pk=replay.pk).values_list("feeder", flat=True)[0]
    if current and current != feeder and not _is_gone(current):
        return False
    taken = bool(
        Replay.objects.filter(pk=replay.pk, feeder=current).update(feeder=feeder)
    )
    if taken:
        # What a lane that died had in hand (sandbox.replay.lane).
        lane.lane_recover(run_id=replay.run_id)
    return taken


def _is_gone(feeder: str) -> bool:
    return queue._is_dead_here(feeder)


def _wait_for_room(replay: Replay, window: int, stop: threading.Event | None) -> bool:
    """Until fewer than `window` of the replay's deliveries are open; False when
    the replay was cancelled or the feeding told to stop meanwhile."""
    while True:
        status = Replay.objects.filter(pk=replay.pk).values_list("status", flat=True)
        if not status or status[0] == Replay.Status.CANCELLED:
            return False
        if stop is not None and stop.is_set():
            return False
        if _open_count(replay.run_id, at_most=window) < window:
            return True
        time.sleep(WAIT_SECONDS)


# Written out, not bound: SQLite uses the partial index on a run's open rows
# only when the query spells out its condition; then only open rows are read.
_OPEN_IN_RUN = (
    "SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE run_id = %s "
    "AND state IN ('pending', 'retrying') LIMIT %s)"
)


def _open_count(run_id: int, *, at_most: int) -> int:
    """How many of the run's deliveries are open, counted up to `at_most`."""
    with connection.cursor() as cursor:
        cursor.execute(
            _OPEN_IN_RUN.format(table=Delivery._meta.db_table), [run_id, at_most]
        )
        return cursor.fetchone()[0]


def replay_feed(
    *,
    replay_id: int,
    feeder: str | None = None,
    chunk_events: int | None = None,
    window: int | None = None,
    stop: threading.Event | None = None,
    hand_over: bool = False,
) -> Replay:
    """Read the replay's source from where it stands and enqueue it, a chunk per
    transaction, until it is all enqueued, the replay is cancelled, or `stop` is
    set. Returns the replay as it then stands. Blocking: call it from a thread
    (replay_feed_in_background) or a command. With `hand_over`, a feeding that
    `stop` ends stays taken by `feeder`, for whoever goes on under that name (a
    command's feeding process, sandbox.replay.feed_process)."""
    feeder = feeder or queue.worker_name()
    while True:
        replay, cancelled = _feed(
            replay_id, feeder, chunk_events, window, stop, hand_over
        )
        if not cancelled or (stop is not None and stop.is_set()):
            return replay
        # Resumed while this feeding was ending: the resume saw this feeder
        # still holding the replay and started none, so this one reads on.
        resumed = Replay.objects.filter(
            pk=replay_id,
            status=Replay.Status.RUNNING,
            fed_at__isnull=True,
            feeder="",
            problem="",
        ).exists()
        if not resumed:
            return replay


def _feed(
    replay_id: int,
    feeder: str,
    chunk_events: int | None,
    window: int | None,
    stop: threading.Event | None,
    hand_over: bool,
) -> tuple[Replay, bool]:
    """One feeding, as replay_feed's; and whether it stopped at a cancel."""
    replay = Replay.objects.select_related("run", "subscription", "target").get(
        pk=replay_id
    )
    if replay.fed_at is not None or not _take_feeding(replay, feeder):
        return replay, False
    chunk_events = chunk_events or CHUNK_EVENTS
    window = window or WINDOW_EVENTS
    chunks = _chunks(replay, chunk_events)
    finished = cancelled = False
    try:
        target = replay_target(replay=replay)
        for chunk in chunks:
            if not _wait_for_room(replay, window, stop) or not _enqueue_chunk(
                replay=replay, target=target, chunk=chunk, feeder=feeder
            ):
                cancelled = True
                break
        else:
            finished = True
    except (reading.FileUnreadable, DeliveryRefused, OSError) as error:
        what = replay.source_label
        replay.problem = STOPPED.format(what=what, detail=error)[:500]
        Replay.objects.filter(pk=replay.pk).update(problem=replay.problem)
    finally:
        chunks.close()
        now = timezone.now()
        done = {"updated_at": now}
        handed_over = hand_over and stop is not None and stop.is_set() and not finished
        if not handed_over or replay.problem:
            done["feeder"] = ""
        if finished:
            done["fed_at"] = now
            replay.fed_at = now
        Replay.objects.filter(pk=replay.pk, feeder=feeder).update(**done)
        if finished and replay.shuffle:
            shuffling.remove(shuffle_directory(replay.pk))
        transaction.on_commit(runtime.wake)
    return replay, cancelled


def replay_feeding_take(*, replay_id: int) -> str | None:
    """Take the replay's feeding for this process, before a thread or a child
    process feeds it under the name returned (replay_feed's `feeder`), so the
    replay never shows as unread meanwhile; None when it is all fed or a live
    process already feeds it."""
    feeder = queue.worker_name()
    replay = Replay.objects.get(pk=replay_id)
    if replay.fed_at is not None or not _take_feeding(replay, feeder):
        return None
    return feeder


def replay_feeding_release(*, replay_id: int, feeder: str) -> None:
    """What fed under `feeder` has ended, perhaps without saying so (a child
    process killed): the replay is no longer being read, so it shows as
    interrupted unless it was all fed, and can be resumed."""
    Replay.objects.filter(pk=replay_id, feeder=feeder).update(
        feeder="", updated_at=timezone.now()
    )


def replay_feed_in_background(*, replay_id: int, **options) -> threading.Thread | None:
    """Feed the replay from a thread of this process (the web server's);
    `options` as replay_feed's. None when a live process already feeds it."""
    feeder = replay_feeding_take(replay_id=replay_id)
    if feeder is None:
        return None

    def feed() -> None:
        try:
            replay_feed(replay_id=replay_id, feeder=feeder, **options)
        except Exception:
            logger.exception("feeding replay %s failed", replay_id)
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=feed, name=f"replay-{replay_id}", daemon=True)
    thread.start()
    return thread


# Controls -------------------------------------------------------------------------


@transaction.atomic
def _refuse_if_finished(replay: Replay, action: str) -> None:
    """ReplayRefused for a replay that sent all it had: pausing, resuming or
    cancelling it would only change how it reads (its average rate, say)."""
    from sandbox.replay import selectors

    if (
        replay.status != Replay.Status.CANCELLED
        and selectors.replay_status(replay=replay) == "finished"
    ):
        raise ReplayRefused(FINISHED.format(pk=replay.pk, action=action))


def replay_pause(*, replay: Replay) -> Replay:
    """Nothing more of it is claimed; attempts in flight still land.
    ReplayRefused once it finished."""
    _refuse_if_finished(replay, "pause")
    if replay.status == Replay.Status.RUNNING:
        Run.objects.filter(pk=replay.run_id).update(paused=True)
        Replay.objects.filter(pk=replay.pk).update(
            status=Replay.Status.PAUSED, updated_at=timezone.now()
        )
    replay.refresh_from_db()
    return replay


@transaction.atomic
def replay_resume(*, replay: Replay) -> Replay:
    """A paused replay goes on; a cancelled one sends again what the cancel
    stopped and reads on from where it stopped (so does one whose process died:
    its feeding resumes). The caller starts the feeding (replay_feed).
    ReplayRefused once it finished."""
    _refuse_if_finished(replay, "resume")
    if replay.source == Replay.Source.FILE and replay.fed_at is None:
        _refuse_if_file_changed(replay)
    now = timezone.now()
    if not replay.feeder or _is_gone(replay.feeder):
        # What a lane that died had in hand, recorded as interrupted.
        lane.lane_recover(run_id=replay.run_id)
    if replay.status == Replay.Status.CANCELLED:
        Delivery.objects.filter(
            run_id=replay.run_id, state=State.FAILED, reason=CANCELLED
        ).update(state=State.PENDING, reason="", next_attempt_at=now, updated_at=now)
    Run.objects.filter(pk=replay.run_id).update(paused=False, settled_at=None)
    Replay.objects.filter(pk=replay.pk).update(
        status=Replay.Status.RUNNING, problem="", updated_at=now
    )
    transaction.on_commit(runtime.wake)
    transaction.on_commit(lambda: runtime.changed())
    replay.refresh_from_db()
    return replay


RESUME_UNREADABLE = (
    "Run {run} cannot go on: its file {file} cannot be read ({detail}). Put "
    "the file back where it was, or replay it anew."
)
RESUME_CHANGED = (
    "Run {run} cannot go on: the file {file} changed since run {run} started "
    "(size {then} bytes then, {now} now); replay it anew."
)


def _refuse_if_file_changed(replay: Replay) -> None:
    """ReplayRefused when the file a replay reads on from is gone, unreadable
    or not the one it started with (a position in another file means nothing)."""
    try:
        found = reading.EventFile(replay.file_path)
    except reading.FileUnreadable as error:
        raise ReplayRefused(
            RESUME_UNREADABLE.format(
                run=replay.run_id, file=replay.file_path, detail=error.detail
            )
        ) from None
    if found.size != replay.file_size:
        raise ReplayRefused(
            RESUME_CHANGED.format(
                run=replay.run_id,
                file=replay.file_path,
                then=replay.file_size,
                now=found.size,
            )
        )


@transaction.atomic
def replay_cancel(*, replay: Replay) -> Replay:
    """Stop reading, and end its open deliveries as failed, saying so. An
    attempt in flight lands and is recorded as it went (delivered, or waiting
    for its retry, which a cancelled replay never claims: it stays paused).
    ReplayRefused once it finished."""
    _refuse_if_finished(replay, "cancel")
    now = timezone.now()
    Replay.objects.filter(pk=replay.pk).update(
        status=Replay.Status.CANCELLED, updated_at=now
    )
    Run.objects.filter(pk=replay.run_id).update(paused=True)
    Delivery.objects.filter(
        run_id=replay.run_id, state__in=OPEN_STATES, claimed_until__isnull=True
    ).update(state=State.FAILED, reason=CANCELLED, next_attempt_at=None, updated_at=now)
    transaction.on_commit(lambda: runtime.changed())
    replay.refresh_from_db()
    return replay


def replay_delete(*, replay: Replay) -> None:
    """Delete the replay, cancelled first if it is still being read or has
    deliveries open. Its deliveries and their run stay in history. Its uploaded
    file goes once the delete commits, unless another replay reads the same
    file; a file named on the command line is never removed."""
    with transaction.atomic():
        replay = Replay.objects.select_for_update().filter(pk=replay.pk).first()
        if replay is None:
            # Deleted meanwhile (another tab, another process): nothing is left.
            return
        if not replay.feeder or _is_gone(replay.feeder):
            lane.lane_recover(run_id=replay.run_id)
        has_open = _open_count(replay.run_id, at_most=1) > 0
        if has_open or (
            replay.fed_at is None and replay.status != Replay.Status.CANCELLED
        ):
            replay_cancel(replay=replay)
        path = replay.file_path
        shared = (
            bool(path)
            and Replay.objects.filter(file_path=path).exclude(pk=replay.pk).exists()
        )
        shuffled = shuffle_directory(replay.pk)
        replay.delete()
        transaction.on_commit(lambda: shuffling.remove(shuffled))
        if path and not shared:
            transaction.on_commit(lambda: uploads.upload_remove(path=path))


def replay_needs_feeding(*, replay: Replay) -> bool:
    """Its source is not all enqueued and no live process is reading it."""
    return (
        replay.fed_at is None
        and replay.status != Replay.Status.CANCELLED
        and (not replay.feeder or _is_gone(replay.feeder))
    )
