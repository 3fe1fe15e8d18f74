"""`manage.py replay` at its edges: a resume whose file is gone or changed, a
resume of a replay that finished, and Ctrl+C in the middle of a replay."""

import asyncio
import json
import os
import re
import signal
import subprocess
import threading
from collections import Counter
from datetime import UTC, datetime
from io import StringIO

import pytest
from aiohttp import web
from django.core.management import CommandError, call_command
from django.urls import reverse

from sandbox.delivery.models import Delivery, State
from sandbox.replay import services
from sandbox.replay.management.commands.replay import Command as ReplayCommand
from sandbox.replay.models import Replay
from sandbox.replay.selectors import ReplayProgress
from tests.factories import ad_hoc_target
from tests.receiver import Receiver
from tests.replay.helpers import replay_argv, wait_until, write_lines
from tests.server import ROOT, Server


def _replay(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("replay", *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), f"{err.getvalue()}{error}\n"
    return 0, out.getvalue(), err.getvalue()


def _half_read(url: str, path) -> Replay:
    """A replay whose process stopped after enqueueing 200 of the file's events,
    none of them sent: interrupted, to resume."""
    replay = services.replay_create(target=ad_hoc_target(url), path=path)
    stop = threading.Event()
    feeding = threading.Thread(
        target=services.replay_feed,
        kwargs={
            "replay_id": replay.pk,
            "chunk_events": 100,
            "window": 200,
            "stop": stop,
        },
    )
    feeding.start()
    # No engine: the window fills, and the feeding waits there for room.
    wait_until(lambda: Delivery.objects.filter(run_id=replay.run_id).count() >= 200)
    stop.set()
    feeding.join(10)
    replay.refresh_from_db()
    assert replay.fed_at is None and replay.position == 200
    return replay


@pytest.mark.django_db(transaction=True)
def test_a_resume_whose_file_is_gone_is_refused_before_sending(receiver, tmp_path):
    path = write_lines(tmp_path / "e.jsonl", 500)
    replay = _half_read(receiver.url("/ok"), path)
    path.unlink()
    code, out, err = _replay("--resume", str(replay.run_id))
    assert code == 2, err
    assert f"Run {replay.run_id} cannot go on: its file {path} cannot be read" in err
    assert "ended red" not in out + err
    assert not receiver.received
    assert set(
        Delivery.objects.filter(run_id=replay.run_id).values_list("state", flat=True)
    ) == {State.PENDING}


@pytest.mark.django_db(transaction=True)
def test_a_resume_whose_file_changed_is_refused_before_sending(receiver, tmp_path):
    path = write_lines(tmp_path / "e.jsonl", 500)
    replay = _half_read(receiver.url("/ok"), path)
    then = path.stat().st_size
    with path.open("ab") as grown:
        grown.write(b'{"type": "track", "event": "Later", "userId": "u"}\n')
    code, _, err = _replay("--resume", str(replay.run_id))
    assert code == 2, err
    run = replay.run_id
    assert (
        f"Run {run} cannot go on: the file {path} changed since run {run} started "
        f"(size {then} bytes then, {path.stat().st_size} now); replay it anew."
    ) in err
    assert not receiver.received
    assert Replay.objects.get(pk=replay.pk).position == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("endpoint", "code", "counts"),
    [("/ok", 0, "3 delivered, 0 failed"), ("/status/400", 1, "0 delivered, 3 failed")],
)
def test_a_resume_of_a_finished_replay_shows_its_summary(
    receiver, tmp_path, endpoint, code, counts
):
    path = write_lines(tmp_path / "e.jsonl", 3)
    first = _replay(
        str(path),
        *("--endpoint", receiver.url(endpoint), "--api-key", "k"),
        *("--retry-policy", "none"),
    )
    assert first[0] == code, first
    run = Replay.objects.get().run_id
    resumed, out, err = _replay("--resume", str(run))
    assert resumed == code, err
    lines = out.strip().splitlines()
    assert lines[0] == f"Run {run} finished already: nothing is left to send."
    assert lines[-1].startswith(f"Summary: 3 events read, 0 bad lines, {counts}, ")
    assert "Resuming" not in out
    assert len(receiver.received) == 3


class SlowReceiver(Receiver):
    """Answers /slower after 0.3 s, so a few requests are always in flight."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path != "/slower":
            return await super()._handle(request)
        await self._record(request)
        self.in_flight += 1
        try:
            await asyncio.sleep(0.3)
        finally:
            self.in_flight -= 1
        return web.json_response({"success": True})


@pytest.fixture
def slow_receiver():
    server = SlowReceiver().start()
    yield server
    server.stop()


@pytest.mark.slow
def test_ctrl_c_lets_what_is_in_flight_land_and_a_resume_sends_the_rest_once(
    slow_receiver, tmp_path
):
    server = Server(tmp_path)
    server.manage("migrate", "-v0")
    path = write_lines(tmp_path / "e.jsonl", 150)
    replaying = subprocess.Popen(
        replay_argv(
            path, slow_receiver.url("/slower"), "--rate", "40", "--concurrency", "10"
        ),
        env={**server.env, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group, as a terminal's job: Ctrl+C reaches the whole
        # group (the command and its reading process).
        start_new_session=True,
    )
    wait_until(
        lambda: len(slow_receiver.received) >= 30 and slow_receiver.in_flight >= 3,
        timeout=60,
        every=0.005,
    )
    os.killpg(replaying.pid, signal.SIGINT)
    output, _ = replaying.communicate(timeout=60)
    assert replaying.returncode == 130, output
    lines = output.strip().splitlines()
    # The reading process reads as the rate needs: at 40 events/s, part of the
    # file was read when Ctrl+C came.
    summary = re.match(r"Summary: (\d+) events read, 0 bad lines, ", lines[-1])
    assert summary is not None and 0 < int(summary[1]) < 150, output
    assert lines[-2].startswith("Stopped by Ctrl+C before every event was read: ")
    assert f"of the {summary[1]} events read so far not delivered yet" in lines[-2]
    assert lines[-2].endswith("--resume 1 goes on with them and reads the rest.")
    assert "Traceback" not in output and "Unclosed" not in output
    sent_first = len(slow_receiver.received)
    assert sent_first < 150

    resumed = server.manage("replay", "--resume", "1", check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (
        resumed.stdout.strip()
        .splitlines()[-1]
        .startswith("Summary: 150 events read, 0 bad lines, 150 delivered, 0 failed")
    )
    seen = Counter(json.loads(r.body)["messageId"] for r in slow_receiver.received)
    assert seen == Counter({f"replay-{n}": 1 for n in range(150)})
    assert not server.query(
        "SELECT 1 FROM delivery_attempt WHERE error_kind = 'interrupted'"
    )


@pytest.mark.django_db(transaction=True)
def test_events_a_cancel_ended_unsent_are_not_counted_red(slow_receiver, tmp_path):
    path = write_lines(tmp_path / "e.jsonl", 300)

    def cancel_once_sending() -> None:
        wait_until(lambda: len(slow_receiver.received) >= 20, timeout=60)
        services.replay_cancel(replay=Replay.objects.get())

    cancelling = threading.Thread(target=cancel_once_sending)
    cancelling.start()
    code, out, err = _replay(
        str(path),
        *("--endpoint", slow_receiver.url("/slower"), "--api-key", "k"),
        *("--rate", "40", "--concurrency", "10"),
    )
    cancelling.join(10)
    assert code == 1, err
    sent = len(slow_receiver.received)
    assert sent < 300
    run = Replay.objects.get().run_id
    assert (
        f"of 300 events were not delivered: 0 ended red, {300 - sent} not sent or "
        f"waiting for a retry (--resume {run} goes on with them)."
    ) in err
    summary = out.strip().splitlines()[-1]
    assert f", {sent} delivered, 0 failed, " in summary
    assert ", 0 failed, " in summary and "cancelled before being sent" in summary


def _sending(**figures) -> ReplayProgress:
    values = {
        "read": 100,
        "bad": 0,
        "enqueued": 100,
        "sent": 50,
        "delivered": 50,
        "unsupported": 0,
        "retrying": 0,
        "failed": 0,
        "pending": 50,
        "deduplicated": 0,
        "settled": 50,
        "throttled": 0,
        "slowed_to": 1.0,
        "current_rate": 6.0,
        "average_rate": 6.0,
        "latency_p50": 300,
        "latency_p95": 320,
        "expected": 100,
        "eta_seconds": 8.0,
        "status": "sending",
        "finished": False,
        "seconds": 8.0,
        "concurrency": 2,
    }
    return ReplayProgress(**{**values, **figures})


def _line_for(progress: ReplayProgress) -> str:
    out = StringIO()
    command = ReplayCommand(stdout=out)
    command.tty = False
    command._show(progress)
    return out.getvalue().strip()


def test_the_progress_line_says_when_even_the_most_concurrency_cannot_carry_the_rate():
    line = _line_for(_sending(rate=5000.0))
    assert line.endswith(
        "held back by --concurrency 2 (about 6 events/s at the endpoint's median "
        "300 ms): even --concurrency 200, the most, would carry only about 666 "
        "events/s of --rate 5,000"
    ), line
    assert "would reach" not in line
    line = _line_for(_sending(rate=100.0))
    assert line.endswith("--concurrency 36 would reach --rate 100"), line


@pytest.mark.django_db(transaction=True)
def test_a_large_rate_is_said_as_a_plain_number_when_the_command_starts(
    tmp_path, receiver
):
    path = write_lines(tmp_path / "e.jsonl", 3)
    code, out, err = _replay(
        str(path),
        "--endpoint",
        receiver.url("/ok"),
        "--api-key",
        "k",
        "--rate",
        "1e11",
    )
    assert code == 0, out + err
    assert "): 100,000,000,000 events/s, concurrency" in out
    assert "e+" not in out


def test_the_progress_line_says_until_when_retry_after_holds_the_replay():
    until = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)
    line = _line_for(_sending(held_until=until, rate=None))
    assert line.endswith(
        "; sending nothing until 2026-11-30 01:02:03 UTC (Retry-After)"
    ), line
    assert "Retry-After" not in _line_for(_sending(rate=None))


@pytest.mark.django_db(transaction=True)
def test_the_pages_resume_refuses_a_file_that_changed_too(client, receiver, tmp_path):
    path = write_lines(tmp_path / "e.jsonl", 500)
    replay = _half_read(receiver.url("/ok"), path)
    with path.open("ab") as grown:
        grown.write(b'{"type": "track", "event": "Later", "userId": "u"}\n')
    response = client.post(reverse("replay:resume", args=[replay.pk]), follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    run = replay.run_id
    assert f"Run {run} cannot go on: the file {path} changed since run {run}" in page
    stored = Replay.objects.get(pk=replay.pk)
    assert (stored.position, stored.feeder, stored.fed_at) == (200, "", None)
    assert not receiver.received
