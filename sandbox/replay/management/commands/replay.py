"""Replay a file of Segment events (JSON Lines or a JSON array, gzipped or not)
into a subscription or an endpoint, from a terminal, without the web server.

The engine runs in this process, as runsuite's does; the replay is stored like
one started from the page (which shows it live), so `--resume RUN_ID` goes on
with a replay that was cancelled or whose process died, from where it stopped.
Exit codes: 0 every event delivered (green or yellow), 1 any ended red,
2 bad arguments or an unreadable file, 130 stopped by Ctrl+C (what was in flight
recorded, the rest left to `--resume`).
"""

import asyncio
import contextlib
import dataclasses
import functools
import os
import signal
import sys
import time
from pathlib import Path
from typing import NamedTuple

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox.converters import id_from
from sandbox.delivery import queue, retry
from sandbox.delivery.engine import Engine
from sandbox.delivery.lane import Sender, uses_lane
from sandbox.delivery.management.commands.sendevent import (
    BadInput,
    add_target_arguments,
    target_from_options,
)
from sandbox.delivery.models import Delivery, Run, State
from sandbox.display import safe_text
from sandbox.replay import lane, selectors, services
from sandbox.replay.feed_process import Early, Feeding, fork_early
from sandbox.replay.models import Replay

BAD_RATE = (
    "--rate {value!r}: a number of events per second, at least {least:g} "
    "(0: unlimited)."
)
BAD_CONCURRENCY = "--concurrency {value!r}: a whole number from 1 to {most}."
BAD_TIME_SCALE = "--time-scale {value!r}: a number above 0."
TIME_SCALE_OF_SUBSCRIPTION = (
    "--time-scale applies to --endpoint; a subscription's time scale is set on "
    "the subscription."
)
RETRY_POLICY_OF_SUBSCRIPTION = (
    "--retry-policy applies to --endpoint; a subscription's retry policy is set "
    "on the subscription."
)
BAD_RESUME = "--resume {value!r}: no replay has run {value}."
ALREADY_FINISHED = "Run {run} finished already: nothing is left to send."
FILE_REQUIRED = "Give the FILE to replay, or --resume RUN_ID."
RESUME_ALONE = "--resume takes no FILE or target: the replay keeps its own."
NOT_UNICODE = "--{option} holds a lone UTF-16 surrogate, which is not valid Unicode."
STARTED = "Replaying {source} to {target} (run {run}): {applied}; retries: {retries}"
RESUMED = (
    "Resuming run {run} from {unit} {position} to {target}: {applied}; "
    "retries: {retries}"
)
PROGRESS = (
    "{settled}/{expected} settled ({percent}%): {delivered} delivered, "
    "{retrying} retrying, {failed} failed; {rate:.0f} events/s now, "
    "p95 {p95}"
)
HELD = (
    "; held back by --concurrency {concurrency} (about {carried:,} events/s at "
    "the endpoint's median {p50} ms): --concurrency {needed} would reach "
    "--rate {rate}"
)
HELD_EVEN_AT_MOST = (
    "; held back by --concurrency {concurrency} (about {carried:,} events/s at "
    "the endpoint's median {p50} ms): even --concurrency {needed}, the most, "
    "would carry only about {most_carry:,} events/s of --rate {rate}"
)
SHUFFLING = "Putting the source in a random order: {read} of {size} MB read"
HELD_UNTIL = "; sending nothing until {until:%Y-%m-%d %H:%M:%S} UTC (Retry-After)"
BAD_LINE = "{unit} {position}: {reason}"
MORE_BAD = "… and {count} more bad {unit}s"
THROTTLED = "The endpoint answered 429 {count} time{s}; the replay slowed down."
NOT_SENT_AGAIN = (
    "{count} event{s} not sent: {target} received {their} messageId{s} within its "
    "deduplication window, and Segment drops a repeated messageId. Replay with "
    "--new-message-ids to send {them} again."
)
SUMMARY = (
    "Summary: {read} event{read_s} read, {bad} bad {unit}{bad_s}{repeated}, "
    "{delivered} delivered, {failed} failed{deduplicated}, {seconds:.1f} s, "
    "{rate:.0f} events/s"
)
REPEATED = ", {count} repeated messageId{s} skipped"
DEDUPLICATED = ", {count} deduplicated"
UNSENT = ", {count} cancelled before being sent"
FAILED = "{failed} of {count} event{s} ended red (see the replay's deliveries)."
NOT_DONE = (
    "{open} of {count} event{s} were not delivered: {failed} ended red, {left} "
    "not sent or waiting for a retry (--resume {run} goes on with them)."
)
STOPPING = (
    "Stopping: no new request goes out; those in flight land and are recorded "
    "(Ctrl+C again stops at once)."
)
STOPPED = (
    "Stopped by Ctrl+C: {open} of {count} event{s} not delivered yet ({failed} "
    "ended red); --resume {run} goes on with them."
)
STOPPED_READING = (
    "Stopped by Ctrl+C before every event was read: {open} of the {count} "
    "event{s} read so far not delivered yet ({failed} ended red); --resume {run} "
    "goes on with them and reads the rest."
)
# The shell's code for a command ended by Ctrl+C (128 + SIGINT).
INTERRUPTED_EXIT = 130
NOTHING_READ = "No event could be read from {file}: {bad} bad {unit}{s}."
TO_TAKES_ITS_OWN = (
    "{option} applies to --endpoint; a subscription's {what} is set on the "
    "subscription."
)
FEED_FAULT = "Reading the file failed: {detail}"
# What the replay's status is once this command has nothing more to wait for.
ENDED = frozenset({"finished", "cancelled", "stopped", "interrupted"})
# Non-TTY output prints a line this often; a TTY's bar is redrawn this often.
LINE_EVERY_SECONDS = 3.0
BAR_EVERY_SECONDS = 0.5
BAR_WIDTH = 30
# How often the command looks whether the replay has ended.
CHECK_EVERY_SECONDS = 0.2
# How often the lane's sender looks at the replay's status: a pause at 2,000
# events/s lets through at most a hundred more.
FOLLOW_EVERY_SECONDS = 0.05
BAD_LINES_PRINTED = 20
DELETED_WHILE_RUNNING = (
    "The replay was deleted while it ran; what it sent stays in the history."
)


class Ended(CommandError):
    """The replay ran, and did not deliver every event: the sentence is
    printed before the summary, which stays the last line."""


class AlreadyFinished(Exception):
    """`--resume` of a replay that sent all it had: its summary is all there is
    to show."""

    def __init__(self, replay: Replay):
        super().__init__(ALREADY_FINISHED.format(run=replay.run_id))
        self.replay = replay


class FeedingAhead(NamedTuple):
    """The replay's feeding, taken before the command's loop starts."""

    feeder: str | None
    lane: bool = False
    early: Early | None = None


class Command(BaseCommand):
    suppressed_base_arguments = {"--settings"}
    help = (
        "Replay a file of Segment events (JSON Lines or a JSON array, gzipped or "
        "not) to a subscription or an endpoint through the sandbox's pipeline, "
        "keeping each event's timestamps and messageId. Exits 0 when every event "
        "was delivered, 1 when any ended red, 2 for bad arguments or an "
        "unreadable file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", nargs="?")
        add_target_arguments(parser)
        parser.add_argument(
            "--rate", metavar="N", help="events per second at most (default: unlimited)"
        )
        parser.add_argument(
            "--concurrency", default="10", metavar="N", help="requests in flight"
        )
        parser.add_argument(
            "--shuffle",
            action="store_true",
            help="send the whole source in a random order",
        )
        parser.add_argument(
            "--new-message-ids",
            action="store_true",
            help="give every event a new messageId (timestamps are kept)",
        )
        parser.add_argument(
            "--time-scale",
            metavar="N",
            help="run --endpoint's retry schedule N times faster",
        )
        parser.add_argument(
            "--retry-policy",
            choices=retry.POLICIES,
            help="--endpoint's retries: segment (the first attempt and 9 retries "
            "over about 4 hours, the default) or none",
        )
        parser.add_argument(
            "--resume",
            metavar="RUN_ID",
            help="go on with a cancelled or interrupted replay",
        )

    def handle(self, *args, **options) -> None:
        self.verbosity = options["verbosity"]
        self.tty = sys.stdout.isatty() and options.get("stdout") is None
        self.interrupted = False
        try:
            replay = self._replay(options)
        except (BadInput, services.ReplayRefused) as error:
            raise CommandError(str(error), returncode=2) from None
        except AlreadyFinished as finished:
            self._say(str(finished))
            self._finish(finished.replay, None)
            return
        started = time.monotonic()
        ahead = _feeding_ahead(replay)
        try:
            asyncio.run(self._run(replay, ahead))
            self._finish(replay, time.monotonic() - started)
        except Replay.DoesNotExist:
            # Deleted from its page while it ran: what was sent stays in history.
            raise CommandError(DELETED_WHILE_RUNNING, returncode=1) from None

    def _say(self, line: str) -> None:
        if self.verbosity >= 1:
            self.stdout.write(line)

    # Input ----------------------------------------------------------------------

    def _replay(self, options: dict) -> Replay:
        for option in ("to", "endpoint", "api_key", "file"):
            value = options[option]
            if value is not None and safe_text(value) != value:
                raise BadInput(NOT_UNICODE.format(option=option.replace("_", "-")))
        if options["resume"] is not None:
            if options["file"] or options["to"] or options["endpoint"]:
                raise BadInput(RESUME_ALONE)
            return self._resumed(options["resume"])
        if not options["file"]:
            raise BadInput(FILE_REQUIRED)
        if options["to"]:
            for option, dest, what in (
                ("--api-key", "api_key", "API key"),
                ("--custom-settings", "custom_settings", "settings"),
            ):
                if options.get(dest) is not None:
                    raise BadInput(TO_TAKES_ITS_OWN.format(option=option, what=what))
        target = target_from_options(options)
        if options["time_scale"] is not None:
            if options["to"]:
                raise BadInput(TIME_SCALE_OF_SUBSCRIPTION)
            target = dataclasses.replace(
                target, time_scale=_time_scale(options["time_scale"])
            )
        if options["retry_policy"] is not None:
            if options["to"]:
                raise BadInput(RETRY_POLICY_OF_SUBSCRIPTION)
            target = dataclasses.replace(target, retry_policy=options["retry_policy"])
        # Absolute, not resolved: /dev/stdin resolves to no file at all.
        path = Path(options["file"]).absolute()
        replay = services.replay_create(
            target=target,
            path=path,
            file_name=options["file"],
            rate=_rate(options["rate"]),
            concurrency=_concurrency(options["concurrency"]),
            shuffle=options["shuffle"],
            new_message_ids=options["new_message_ids"],
        )
        self._say(
            STARTED.format(
                source=replay.file_name,
                target=target.name,
                run=replay.run_id,
                applied=replay.run.applied,
                retries=replay.retry_policy_label,
            )
        )
        return replay

    def _resumed(self, value: str) -> Replay:
        run_id = id_from(value)
        replay = None if run_id is None else selectors.replay_of_run(run_id=run_id)
        if replay is None:
            raise BadInput(BAD_RESUME.format(value=value))
        if (
            replay.status != Replay.Status.CANCELLED
            and selectors.replay_status(replay=replay) == "finished"
        ):
            raise AlreadyFinished(replay)
        # Refused (exit 2) when its file is gone or changed.
        replay = services.replay_resume(replay=replay)
        self._say(
            RESUMED.format(
                run=replay.run_id,
                unit="event" if replay.shuffle else replay.unit,
                position=(
                    f"{replay.position} of the shuffled order"
                    if replay.shuffle
                    else replay.position
                ),
                target=replay.target.name,
                retries=replay.retry_policy_label,
                applied=replay.run.applied,
            )
        )
        return replay

    # The run --------------------------------------------------------------------

    async def _run(self, replay: Replay, ahead: FeedingAhead) -> None:
        stopping = asyncio.Event()
        before = signal.getsignal(signal.SIGINT)
        on_ctrl_c = self._catch_ctrl_c(stopping)
        try:
            await self._send(replay, stopping, ahead)
        finally:
            if on_ctrl_c:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
                signal.signal(signal.SIGINT, before)

    def _catch_ctrl_c(self, stopping: asyncio.Event) -> bool:
        """The first Ctrl+C starts no new request and lets those in flight land
        and be recorded, so a resume sends nothing twice; a second one ends the
        process at once (a resume then finds the attempts in flight
        interrupted, and retries them). Whether it is caught here (only the
        main thread can)."""

        def ctrl_c() -> None:
            if self.interrupted:
                with contextlib.suppress(Exception):
                    self.stdout.flush()
                    self.stderr.flush()
                os._exit(INTERRUPTED_EXIT)
            self.interrupted = True
            stopping.set()
            if self.tty:
                self.stdout.write("")
            self.stderr.write(STOPPING)

        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, ctrl_c)
        except (ValueError, RuntimeError, NotImplementedError):
            return False
        return True

    async def _send(
        self, replay: Replay, stopping: asyncio.Event, ahead: FeedingAhead
    ) -> None:
        engine = Engine(concurrency=max(replay.run.concurrency, 1))
        stop_engine = asyncio.Event()
        working = asyncio.create_task(engine.run_forever(stop_engine))
        # The source is read and enqueued beside the sending, mostly by a
        # process of its own (feed_process.py), unless a live process already
        # reads it or it is all read. A webhook's first attempts go through the
        # lane (lane.py): that process writes them, this one sends them.
        feeding = sender = None
        feeder = ahead.feeder
        if feeder is not None:
            feeding = Feeding(
                replay_id=replay.pk,
                feeder=feeder,
                wake=engine.wake,
                lane=ahead.lane,
                early=ahead.early,
            )
            feeding.start()
            if feeding.lane:
                run = await sync_to_async(Run.objects.get)(pk=replay.run_id)
                sender = Sender(
                    run=run,
                    answer=feeding.answer,
                    starting=feeding.starting,
                    also_in_flight=lambda: engine.in_flight_of(run.pk),
                )
                # Bound now: `sender` is set to None once the lane is done.
                engine.others_in_flight = functools.partial(
                    _lane_in_flight, sender, run.pk
                )
                await feeding.attach(sender)
                sender.start()
        lane_feeding = feeding
        progress = sync_to_async(self._progress)
        every = BAR_EVERY_SECONDS if self.tty else LINE_EVERY_SECONDS
        following = None
        if sender is not None:
            following = asyncio.create_task(_follow(sender, replay))
        try:
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), CHECK_EVERY_SECONDS)
                if stopping.is_set():
                    break
                if feeding is not None and feeding.done():
                    if sender is not None:
                        await sender.close()
                    await self._end_feeding(feeding, replay.pk, feeder)
                    feeding = None
                    if sender is not None:
                        await _salvage(sender, replay.run_id)
                        sender = None
                status = await progress(replay.pk, every)
                if feeding is None and status in ENDED:
                    break
        finally:
            if following is not None:
                following.cancel()
            if sender is not None:
                # What it holds goes back to the child, which stores it (a
                # resume sends it); what is in flight lands and is recorded.
                await sender.close()
                await lane_feeding.end_lane()
            if feeding is not None:
                await self._end_feeding(feeding, replay.pk, feeder)
            if sender is not None:
                await _salvage(sender, replay.run_id)
            stop_engine.set()
            engine.wake()
            await working
        if self.tty and self.verbosity >= 1:
            self.stdout.write("")

    async def _end_feeding(self, feeding: Feeding, replay_id: int, feeder: str):
        fault = await feeding.stop()
        if fault:
            self.stderr.write(FEED_FAULT.format(detail=fault))
        # Stopped unread (Ctrl+C), or its process died: the replay shows as
        # interrupted, to resume.
        await sync_to_async(services.replay_feeding_release)(
            replay_id=replay_id, feeder=feeder
        )

    _last_shown = -float("inf")

    def _progress(self, replay_id: int, every: float) -> str:
        """The replay's status; its progress printed when it is time to (the
        counts read every run's row, the status one)."""
        replay = selectors.replay_get(pk=replay_id)
        now = time.monotonic()
        if self.verbosity >= 1 and now - self._last_shown >= every:
            shown = selectors.replay_progress(replay=replay)
            if shown.expected or shown.status != "reading":
                self._last_shown = now
                self._show(shown)
        return selectors.replay_status(replay=replay)

    def _show(self, shown: selectors.ReplayProgress) -> None:
        if shown.status == "shuffling":
            line = SHUFFLING.format(
                read=f"{shown.bytes_read / 2**20:.1f}",
                size=f"{shown.file_size / 2**20:.1f}",
            )
            self.stdout.write(
                f"\r{line}\x1b[K" if self.tty else line, ending="" if self.tty else "\n"
            )
            if self.tty:
                self.stdout.flush()
            return
        line = PROGRESS.format(
            settled=shown.settled,
            expected=shown.expected,
            percent=shown.percent,
            delivered=shown.delivered + shown.unsupported,
            retrying=shown.retrying,
            failed=shown.failed,
            rate=shown.current_rate,
            p95=f"{shown.latency_p95} ms" if shown.latency_p95 is not None else "-",
        )
        if shown.held_until is not None:
            line += HELD_UNTIL.format(until=shown.held_until)
        held = shown.held_by_concurrency
        if held is not None:
            said = HELD if held.most_carry is None else HELD_EVEN_AT_MOST
            line += said.format(
                concurrency=shown.concurrency,
                carried=held.carried,
                p50=shown.latency_p50,
                needed=held.needed,
                most_carry=held.most_carry,
                rate=services.rate_text(shown.rate),
            )
        if not self.tty:
            self.stdout.write(line)
            return
        filled = BAR_WIDTH * shown.percent // 100
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stdout.write(f"\r[{bar}] {line}\x1b[K", ending="")
        self.stdout.flush()

    # Output ---------------------------------------------------------------------

    def _finish(self, replay: Replay, seconds: float | None) -> None:
        """The bad lines, what went wrong, and the summary, last; `seconds`
        None: the replay's own duration (it ran before this command)."""
        replay = selectors.replay_get(pk=replay.pk)
        shown = selectors.replay_progress(replay=replay)
        if seconds is None:
            seconds = shown.seconds
        # A cancel ends what waited as failed: not sent, so not red.
        unsent = _cancelled_unsent(replay)
        shown = dataclasses.replace(
            shown,
            failed=shown.failed - unsent,
            pending=shown.pending + unsent,
            settled=shown.settled - unsent,
        )
        if self.verbosity >= 1:
            for position, reason in replay.bad_lines[:BAD_LINES_PRINTED]:
                self.stderr.write(
                    BAD_LINE.format(
                        unit=replay.unit.capitalize(), position=position, reason=reason
                    )
                )
            if replay.bad_count > BAD_LINES_PRINTED:
                self.stderr.write(
                    MORE_BAD.format(
                        count=replay.bad_count - BAD_LINES_PRINTED, unit=replay.unit
                    )
                )
            if replay.problem:
                self.stderr.write(replay.problem)
            if shown.throttled:
                count = shown.throttled
                self.stdout.write(
                    THROTTLED.format(count=count, s="" if count == 1 else "s")
                )
            if shown.deduplicated and not replay.new_message_ids:
                count = shown.deduplicated
                self.stdout.write(
                    NOT_SENT_AGAIN.format(
                        count=count,
                        s="" if count == 1 else "s",
                        target=replay.target.name,
                        their="its" if count == 1 else "their",
                        them="it" if count == 1 else "them",
                    )
                )
        ended = self._ended(replay, shown)
        if ended is not None:
            self.stderr.write(str(ended))
        self.stdout.write(
            SUMMARY.format(
                read=replay.events_read,
                read_s="" if replay.events_read == 1 else "s",
                bad=replay.bad_count,
                unit=replay.unit,
                bad_s="" if replay.bad_count == 1 else "s",
                repeated=REPEATED.format(
                    count=replay.duplicates_skipped,
                    s="" if replay.duplicates_skipped == 1 else "s",
                )
                if replay.duplicates_skipped
                else "",
                delivered=shown.delivered + shown.unsupported,
                failed=shown.failed,
                deduplicated=(
                    DEDUPLICATED.format(count=shown.deduplicated)
                    if shown.deduplicated
                    else ""
                )
                + (UNSENT.format(count=unsent) if unsent else ""),
                seconds=seconds,
                rate=shown.settled / seconds if seconds > 0 else 0.0,
            )
        )
        if ended is not None:
            # Said above: the summary stays the last line.
            raise ended

    def _ended(self, replay: Replay, shown) -> "Ended | None":
        """How the replay ended, when not with every event delivered."""
        count = shown.enqueued
        s = "" if count == 1 else "s"
        done = shown.finished and not shown.pending
        if self.interrupted and not done:
            said = STOPPED if replay.fed_at is not None else STOPPED_READING
            return Ended(
                said.format(
                    open=shown.failed + shown.retrying + shown.pending,
                    count=count,
                    s=s,
                    failed=shown.failed,
                    run=replay.run_id,
                ),
                returncode=INTERRUPTED_EXIT,
            )
        if not done:
            left = shown.retrying + shown.pending
            return Ended(
                NOT_DONE.format(
                    open=shown.failed + left,
                    count=count,
                    s=s,
                    failed=shown.failed,
                    left=left,
                    run=replay.run_id,
                ),
                returncode=1,
            )
        if shown.failed:
            return Ended(
                FAILED.format(failed=shown.failed, count=count, s=s), returncode=1
            )
        if not replay.events_read and replay.bad_count:
            bad = replay.bad_count
            return Ended(
                NOTHING_READ.format(
                    file=replay.file_name or replay.source_label,
                    bad=bad,
                    unit=replay.unit,
                    s="" if bad == 1 else "s",
                ),
                returncode=2,
            )
        return None

    def run_from_argv(self, argv) -> None:
        self._from_argv = True
        super().run_from_argv(argv)

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except Ended as ended:
            if not getattr(self, "_from_argv", False):
                raise
            # Its sentence is printed before the summary: exit without another.
            sys.exit(ended.returncode)


def _cancelled_unsent(replay: Replay) -> int:
    """How many of a cancelled replay's events the cancel ended before any
    attempt."""
    if replay.status != Replay.Status.CANCELLED:
        return 0
    return Delivery.objects.filter(
        run_id=replay.run_id,
        state=State.FAILED,
        reason=services.CANCELLED,
        attempt_count=0,
    ).count()


def _lane_in_flight(sender, lane_run_id: int, run_id: int) -> int:
    return sender.in_flight if run_id == lane_run_id else 0


async def _follow(sender, replay: Replay) -> None:
    """The lane's sender follows the replay's pause and cancel (its page's
    buttons) within FOLLOW_EVERY_SECONDS, and waits while the engine has first
    attempts of the run to send (what this command read itself while its
    reading process started, what a stop gave back): one rate, in order."""
    status_of = sync_to_async(_lane_status)
    while True:
        status, queued = await status_of(replay)
        sender.control(
            paused=status == Replay.Status.PAUSED or queued,
            cancelled=status in (Replay.Status.CANCELLED, None),
        )
        await asyncio.sleep(FOLLOW_EVERY_SECONDS)


def _lane_status(replay: Replay) -> tuple[str | None, bool]:
    status = (
        Replay.objects.filter(pk=replay.pk).values_list("status", flat=True).first()
    )
    # Spelled out: SQLite reads the partial index of a run's open rows only
    # when the query says its condition.
    queued = bool(
        queue.rows(
            f"SELECT 1 FROM {Delivery._meta.db_table} WHERE run_id = %s AND "
            "state IN ('pending', 'retrying') AND state = 'pending' LIMIT 1",
            [replay.run_id],
        )
    )
    return status, queued


async def _salvage(sender, run_id: int) -> None:
    """Whatever the feeding process left unstored (it died), stored from what
    the sender knows; nothing when it ended well."""
    await sync_to_async(lane.salvage)(
        run_id=run_id, results=list(sender.recent.values()), sending=set(sender.sending)
    )


def _uses_lane(replay: Replay) -> bool:
    return uses_lane(services.replay_target(replay=replay))


def _feeding_ahead(replay: Replay) -> FeedingAhead:
    """The replay's feeding taken for this command (None: it is all read, or a
    live process reads it), and its process forked now, before the command's
    threads start, where that can be (feed_process.fork_early): ready at once,
    where one started afresh needs Django's setup first."""
    feeder = services.replay_feeding_take(replay_id=replay.pk)
    if feeder is None:
        return FeedingAhead(None)
    lane_used = _uses_lane(replay)
    early = fork_early(replay_id=replay.pk, feeder=feeder, lane=lane_used)
    return FeedingAhead(feeder, lane_used, early)


def _rate(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        rate = float(value)
    except ValueError:
        raise BadInput(BAD_RATE.format(value=value, least=services.MIN_RATE)) from None
    if rate == 0:
        return None
    if not services.MIN_RATE <= rate < float("inf"):
        raise BadInput(BAD_RATE.format(value=value, least=services.MIN_RATE))
    return rate


def _concurrency(value: str) -> int:
    most = services.MAX_CONCURRENCY
    try:
        number = int(value)
    except ValueError:
        raise BadInput(BAD_CONCURRENCY.format(value=value, most=most)) from None
    if not 1 <= number <= most:
        raise BadInput(BAD_CONCURRENCY.format(value=value, most=most))
    return number


def _time_scale(value: str) -> float:
    try:
        scale = float(value)
    except ValueError:
        raise BadInput(BAD_TIME_SCALE.format(value=value)) from None
    if not 0 < scale < float("inf"):
        raise BadInput(BAD_TIME_SCALE.format(value=value))
    return scale
