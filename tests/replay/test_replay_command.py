"""`manage.py replay`: a file through the pipeline from a terminal, with its
progress, its summary line and its exit codes."""

import json
import math
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sandbox.delivery.models import Delivery, Door, Run, State
from sandbox.replay.models import Replay
from tests.factories import make_subscription
from tests.replay.helpers import event, write_lines

ENDPOINT = ["--endpoint", "http://127.0.0.1:9/", "--api-key", "k"]


def _replay(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("replay", *args, stdout=out, stderr=err)
    except CommandError as error:
        err.write(f"CommandError: {error}\n")
        return error.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_file_is_replayed_keeping_timestamps_and_message_ids(receiver, tmp_path):
    path = write_lines(tmp_path / "export.jsonl.gz", 500, gzipped=True)
    code, out, err = _replay(
        str(path), "--endpoint", receiver.url("/ok"), "--api-key", "k"
    )
    assert code == 0, err
    summary = out.strip().splitlines()[-1]
    assert summary.startswith(
        "Summary: 500 events read, 0 bad lines, 500 delivered, 0 failed, "
    )
    assert summary.endswith(" events/s")
    bodies = [r.json for r in receiver.received]
    assert sorted(b["messageId"] for b in bodies) == sorted(
        f"replay-{n}" for n in range(500)
    )
    first = next(b for b in bodies if b["messageId"] == "replay-7")
    assert first["timestamp"] == event(7)["timestamp"]
    assert first["originalTimestamp"] == event(7)["originalTimestamp"]
    run = Run.objects.get()
    assert run.door == Door.REPLAY
    assert set(Delivery.objects.values_list("door", flat=True)) == {Door.REPLAY}
    replay = Replay.objects.get()
    assert replay.position == 500 and replay.fed_at is not None


@pytest.mark.django_db(transaction=True)
def test_bad_lines_are_listed_and_red_events_exit_1(receiver, tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(event(n)) for n in range(5)] + ["{broken", "[]"]
    path.write_text("\n".join(lines))
    code, out, err = _replay(
        str(path), "--endpoint", receiver.url("/status/400"), "--api-key", "k"
    )
    assert code == 1
    assert "Line 6: not JSON" in err
    assert "Line 7: not an event" in err
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith("Summary: 5 events read, 2 bad lines, 0 delivered, 5 failed, ")
    )


@pytest.mark.django_db(transaction=True)
def test_the_summary_counts_the_events_a_file_repeats(receiver, tmp_path):
    path = tmp_path / "repeats.jsonl"
    path.write_text("".join(json.dumps(event(n % 2)) + "\n" for n in range(5)))
    code, out, err = _replay(
        str(path), "--endpoint", receiver.url("/ok"), "--api-key", "k"
    )
    assert code == 0, err
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith(
            "Summary: 5 events read, 0 bad lines, 3 repeated messageIds skipped, "
            "2 delivered, 0 failed, "
        )
    )
    assert len(receiver.received) == 2
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps(event(7)) + "\n{broken\n")
    code, out, err = _replay(
        str(one), "--endpoint", receiver.url("/ok"), "--api-key", "k"
    )
    assert code == 0, err
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith("Summary: 1 event read, 1 bad line, 1 delivered, 0 failed, ")
    )


@pytest.mark.django_db(transaction=True)
def test_the_retry_policy_of_an_endpoint_is_chosen_and_said(receiver, tmp_path):
    path = write_lines(tmp_path / "e.jsonl", 3)
    url = receiver.url("/status/500")
    code, out, err = _replay(
        str(path), "--endpoint", url, "--api-key", "k", "--retry-policy", "none"
    )
    assert code == 1, err
    assert out.splitlines()[0].endswith("; retries: None (one attempt)")
    # One attempt each: a 500 is retried under Segment's schedule.
    assert len(receiver.received) == 3
    assert set(Delivery.objects.values_list("attempt_count", flat=True)) == {1}
    subscription = make_subscription(name="Hook", endpoint_url=receiver.url("/ok"))
    code, out, err = _replay(str(path), "--to", subscription.name)
    assert code == 0, err
    assert out.splitlines()[0].endswith(
        "; retries: Segment (first attempt + 9 retries over about 4 hours)"
    )
    code, _, err = _replay(str(path), "--to", "Hook", "--retry-policy", "none")
    assert code == 2
    assert "--retry-policy applies to --endpoint" in err


@pytest.mark.django_db(transaction=True)
def test_new_message_ids_keep_the_timestamps(receiver, tmp_path):
    path = write_lines(tmp_path / "e.jsonl", 20)
    subscription = make_subscription(name="Hook", endpoint_url=receiver.url("/ok"))
    code, _, err = _replay(str(path), "--to", subscription.name, "--new-message-ids")
    assert code == 0, err
    bodies = [r.json for r in receiver.received]
    assert len(bodies) == 20
    assert not {b["messageId"] for b in bodies} & {f"replay-{n}" for n in range(20)}
    assert {b["timestamp"] for b in bodies} == {event(0)["timestamp"]}
    assert Delivery.objects.filter(subscription=subscription).count() == 20


@pytest.mark.django_db(transaction=True)
def test_a_replay_again_is_deduplicated_unless_its_message_ids_are_new(
    receiver, tmp_path
):
    path = write_lines(tmp_path / "e.jsonl", 10)
    subscription = make_subscription(name="Hook", endpoint_url=receiver.url("/ok"))
    code, _, err = _replay(str(path), "--to", subscription.name)
    assert code == 0, err
    code, out, err = _replay(str(path), "--to", subscription.name)
    assert code == 0, err
    assert "0 delivered, 0 failed, 10 deduplicated, " in out
    # Why nothing went out, and what sends them again; the summary stays last.
    assert (
        "10 events not sent: Hook received their messageIds within its "
        "deduplication window, and Segment drops a repeated messageId. Replay "
        "with --new-message-ids to send them again.\n"
    ) in out
    assert out.strip().splitlines()[-1].startswith("Summary: ")
    assert len(receiver.received) == 10
    assert Delivery.objects.filter(state=State.DEDUPLICATED).count() == 10
    code, out, err = _replay(str(path), "--to", subscription.name, "--new-message-ids")
    assert code == 0, err
    assert len(receiver.received) == 20
    assert "not sent" not in out


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--endpoint", "http://127.0.0.1:9/x", "--api-key", "k"], "Give the FILE"),
        (["{file}"], "Give --to SUBSCRIPTION_NAME"),
        (["{file}", "--to", "nobody"], "No subscription named 'nobody'"),
        (
            ["{missing}", "--endpoint", "http://127.0.0.1:9/", "--api-key", "k"],
            "Cannot read",
        ),
        (
            [
                "{file}",
                "--endpoint",
                "http://127.0.0.1:9/",
                "--api-key",
                "k",
                "--rate",
                "x",
            ],
            "--rate 'x'",
        ),
        (
            [
                "{file}",
                "--endpoint",
                "http://127.0.0.1:9/",
                "--api-key",
                "k",
                "--concurrency",
                "0",
            ],
            "--concurrency '0'",
        ),
        (
            [
                "{file}",
                "--endpoint",
                "http://127.0.0.1:9/",
                "--api-key",
                "k",
                "--time-scale",
                "-1",
            ],
            "--time-scale '-1'",
        ),
        (["--resume", "999"], "no replay has run 999"),
        (["{file}", "--to", "Hook", "--time-scale", "10"], "--time-scale applies"),
    ],
)
def test_bad_arguments_and_unreadable_files_exit_2(tmp_path, args, words):
    make_subscription(name="Hook")
    path = write_lines(tmp_path / "e.jsonl", 1)
    given = [a.format(file=path, missing=tmp_path / "missing.jsonl") for a in args]
    code, _, err = _replay(*given)
    assert code == 2
    assert words in err
    assert not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_empty_file_replays_nothing_and_exits_0(receiver, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    code, out, err = _replay(str(path), *ENDPOINT)
    assert code == 0, err
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith("Summary: 0 events read, 0 bad lines, 0 delivered, 0 failed, ")
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_replay_held_back_by_its_concurrency_says_what_would_reach_its_rate(
    receiver, tmp_path
):
    """Two requests in flight to an endpoint answering in 150 ms carry about
    13 events/s: a replay asked for 200 events/s says so, and names the
    concurrency that would reach it (200 events/s times 0.15 s, and a fifth
    to spare)."""
    path = write_lines(tmp_path / "export.jsonl", 80)
    code, out, err = _replay(
        str(path),
        "--endpoint",
        receiver.url("/slow"),
        "--api-key",
        "k",
        "--rate",
        "200",
        "--concurrency",
        "2",
    )
    assert code == 0, err
    held = [line for line in out.splitlines() if "held back" in line]
    assert held, out
    found = re.search(
        r"held back by --concurrency 2 \(about (\d+) events/s at the endpoint's "
        r"median (\d+) ms\): --concurrency (\d+) would reach --rate 200$",
        held[-1],
    )
    assert found, held[-1]
    carried, p50, needed = (int(group) for group in found.groups())
    assert 150 <= p50 < 250 and carried == int(2000 / p50)
    assert needed == math.ceil(200 * p50 / 1000 * 1.2)
    assert receiver.max_in_flight <= 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_replay_its_concurrency_carries_says_nothing_of_it(receiver, tmp_path):
    path = write_lines(tmp_path / "export.jsonl", 80)
    code, out, err = _replay(
        str(path),
        *("--endpoint", receiver.url("/slow"), "--api-key", "k"),
        *("--rate", "20", "--concurrency", "10"),
    )
    assert code == 0, err
    assert "held back" not in out
    assert "settled" in out


@pytest.mark.django_db(transaction=True)
def test_a_shuffled_replay_lists_its_bad_lines_in_the_order_of_the_file(
    receiver, tmp_path
):
    path = tmp_path / "mixed.jsonl"
    bad = {4, 9, 17, 23, 31, 38}
    path.write_text(
        "\n".join("{broken" if n in bad else json.dumps(event(n)) for n in range(1, 41))
    )
    code, _, err = _replay(
        str(path), "--endpoint", receiver.url("/ok"), "--api-key", "k", "--shuffle"
    )
    assert code == 0, err
    listed = [int(line.split()[1].rstrip(":")) for line in err.splitlines()]
    assert listed == sorted(bad), err
    assert Replay.objects.get().bad_lines == [
        [n, "not JSON: Expecting property name enclosed in double quotes"]
        for n in sorted(bad)
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("count", [3, 6000])
def test_a_file_whose_lines_end_in_a_carriage_return_alone_says_so(
    receiver, tmp_path, count
):
    path = tmp_path / "mac.jsonl"
    path.write_bytes(b"\r".join(json.dumps(event(n)).encode() for n in range(count)))
    code, out, err = _replay(
        str(path), "--endpoint", receiver.url("/ok"), "--api-key", "k"
    )
    assert code == 2, out + err
    assert (
        "Line 1: lines separated by a carriage return alone (classic Mac OS line "
        "endings) read as one; save the file with LF or CRLF line endings"
    ) in err
    assert not receiver.received
