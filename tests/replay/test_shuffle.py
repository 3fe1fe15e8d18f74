"""A shuffled replay: the whole source in one random order, in bounded memory,
the same order again after a resume, bad lines still named by their line."""

import itertools
import json
import threading
import time

import pytest
from django.urls import reverse

from sandbox.delivery.models import Delivery
from sandbox.replay import reading, selectors, services, shuffling, uploads
from sandbox.replay.models import Replay
from tests.factories import ad_hoc_target
from tests.replay.helpers import event, wait_until, write_lines

URL = "http://127.0.0.1:9/never-sent"


def _numbers_in_queue_order(replay: Replay) -> list[int]:
    """The events' numbers in the order they were enqueued (no engine runs, so
    this is the order they would be claimed in)."""
    return [
        payload["properties"]["number"]
        for payload in Delivery.objects.filter(run_id=replay.run_id)
        .order_by("pk")
        .values_list("payload", flat=True)
    ]


def _feed_until_stopped(
    replay: Replay, *, chunk_events: int, window: int, enqueued: int
) -> None:
    """Feed the replay in a thread (no engine runs, so the window fills), and
    stop the feeding once `enqueued` of its events are in the queue."""
    stop = threading.Event()
    feeding = threading.Thread(
        target=services.replay_feed,
        kwargs={
            "replay_id": replay.pk,
            "chunk_events": chunk_events,
            "window": window,
            "stop": stop,
        },
    )
    feeding.start()
    wait_until(
        lambda: Delivery.objects.filter(run_id=replay.run_id).count() >= enqueued
    )
    time.sleep(0.2)
    stop.set()
    feeding.join(10)


def _items(count: int):
    return ((n, event(n), None) for n in range(1, count + 1))


def test_every_item_comes_once_in_an_order_across_the_whole_source(tmp_path):
    source = shuffling.ShuffledSource(tmp_path / "s", seed="a")
    assert source.prepare(_items(10_000)) == 10_000
    order = [position for position, _, _ in source.items()]
    assert sorted(order) == list(range(1, 10_001))
    # A shuffle within windows of 2,000 would keep each window's items together:
    # the first 200 here come from all over the source.
    first = order[:200]
    assert max(first) - min(first) > 9_000
    assert sum(1 for n in first if n > 5_000) > 60
    # Not merely rotated or reversed: neighbours are rarely neighbours.
    adjacent = sum(1 for a, b in itertools.pairwise(order) if abs(a - b) == 1)
    assert adjacent < 100


def test_the_order_depends_on_the_seed_alone_and_a_skip_resumes_it(tmp_path):
    one = shuffling.ShuffledSource(tmp_path / "one", seed="same")
    two = shuffling.ShuffledSource(tmp_path / "two", seed="same")
    other = shuffling.ShuffledSource(tmp_path / "other", seed="different")
    for source in (one, two, other):
        source.prepare(_items(3_000))
    order = [p for p, _, _ in one.items()]
    assert order == [p for p, _, _ in two.items()]
    assert order != [p for p, _, _ in other.items()]
    for skip in (0, 1, 11, 1_499, 2_999, 3_000):
        assert [p for p, _, _ in one.items(skip=skip)] == order[skip:]


def test_complete_buckets_are_reused_and_broken_ones_are_built_again(tmp_path):
    directory = tmp_path / "s"
    source = shuffling.ShuffledSource(directory, seed="x")
    source.prepare(_items(500))
    order = [p for p, _, _ in source.items()]
    # Complete: the source is not read again.
    again = shuffling.ShuffledSource(directory, seed="x")
    assert again.prepare(iter(())) == 500
    assert [p for p, _, _ in again.items()] == order
    # A first pass that stopped half way (no marker) is started over.
    (directory / shuffling.COMPLETE).unlink()
    next(directory.glob("*.jsonl")).write_text("half a line")
    rebuilt = shuffling.ShuffledSource(directory, seed="x")
    assert rebuilt.prepare(_items(500)) == 500
    assert [p for p, _, _ in rebuilt.items()] == order


def test_a_lone_surrogate_and_the_problems_survive_the_buckets(tmp_path):
    source = shuffling.ShuffledSource(tmp_path / "s", seed="x")
    items = [(1, {"text": "\ud800 ok"}, None), (2, None, "not JSON: oops")]
    source.prepare(items)
    assert sorted(source.items()) == sorted(items, key=lambda item: item[0])


@pytest.mark.django_db(transaction=True)
def test_a_shuffled_file_replay_enqueues_the_whole_file_in_one_random_order(
    tmp_path,
):
    path = tmp_path / "e.jsonl"
    write_lines(path, 3_000)
    with path.open("ab") as out:
        out.write(b"{broken\n")
    replay = services.replay_create(target=ad_hoc_target(URL), path=path, shuffle=True)
    assert "shuffled" in replay.run.applied
    services.replay_feed(replay_id=replay.pk, chunk_events=250, window=10_000)
    numbers = _numbers_in_queue_order(replay)
    assert sorted(numbers) == list(range(3_000))
    # The first chunk holds events from the whole file, not its first 2,000.
    assert sum(1 for n in numbers[:250] if n >= 2_000) > 30
    replay.refresh_from_db()
    assert replay.fed_at is not None
    assert replay.events_read == 3_000
    assert replay.bad_count == 1
    # The bad line is still named by where it is in the file.
    assert replay.bad_lines[0][0] == 3_001
    assert "not JSON" in replay.bad_lines[0][1]
    # Fed: its buckets are gone.
    assert not services.shuffle_directory(replay.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_stopped_shuffled_replay_resumes_in_the_same_order_without_repeats(
    tmp_path,
):
    path = write_lines(tmp_path / "e.jsonl.gz", 2_000, gzipped=True)
    replay = services.replay_create(target=ad_hoc_target(URL), path=path, shuffle=True)
    # No engine runs: the window fills after two chunks and the feeding waits
    # there until it is told to stop, as a process that dies would leave it.
    _feed_until_stopped(replay, chunk_events=300, window=600, enqueued=600)
    replay.refresh_from_db()
    assert replay.position == 600
    assert replay.fed_at is None
    # Kept for the resume.
    assert (services.shuffle_directory(replay.pk) / shuffling.COMPLETE).exists()
    services.replay_feed(replay_id=replay.pk, chunk_events=300, window=10_000)
    numbers = _numbers_in_queue_order(replay)
    assert sorted(numbers) == list(range(2_000))
    expected = shuffling.ShuffledSource(
        tmp_path / "expected", seed=f"replay-{replay.pk}"
    )
    expected.prepare(
        (item.position, item.event, item.problem)
        for item in reading.EventFile(path).items()
    )
    assert numbers == [e["properties"]["number"] for _, e, _ in expected.items()]


@pytest.mark.django_db(transaction=True)
def test_a_deleted_replay_and_a_stale_folder_leave_no_buckets(tmp_path):
    path = write_lines(tmp_path / "e.jsonl", 700)
    replay = services.replay_create(target=ad_hoc_target(URL), path=path, shuffle=True)
    _feed_until_stopped(replay, chunk_events=100, window=100, enqueued=1)
    directory = services.shuffle_directory(replay.pk)
    assert directory.exists()
    services.replay_delete(replay=replay)
    assert not directory.exists()
    # A folder no replay feeds from goes with the next sweep.
    stale = uploads.shuffles_directory() / "999999"
    stale.mkdir(parents=True)
    (stale / "000.jsonl").write_text(json.dumps([1, {}, None]) + "\n")
    uploads.uploads_sweep()
    assert not stale.exists()


@pytest.mark.django_db(transaction=True)
def test_the_first_pass_shows_as_shuffling_with_how_far_it_read(tmp_path, client):
    path = write_lines(tmp_path / "e.jsonl", 30_000)
    replay = services.replay_create(target=ad_hoc_target(URL), path=path, shuffle=True)
    seen: list[tuple[str, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            current = Replay.objects.get(pk=replay.pk)
            if current.feeder:
                progress = selectors.replay_progress(replay=current)
                seen.append((progress.status, progress.bytes_read))
                if progress.status == "shuffling" and progress.bytes_read:
                    page = client.get(reverse("replay:detail", args=[replay.pk]))
                    seen.append(("page", page.content.count(b"data-shuffling")))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        services.replay_feed(replay_id=replay.pk, chunk_events=1_000, window=100_000)
    finally:
        stop.set()
        watcher.join(10)
    statuses = [status for status, _ in seen]
    assert "shuffling" in statuses
    # While shuffling, how far it read grows; then it sends.
    read = [n for status, n in seen if status == "shuffling"]
    assert max(read) > 0
    assert ("page", 1) in seen
    assert statuses.index("shuffling") < max(
        i for i, s in enumerate(statuses) if s in ("reading", "sending", "finished")
    )
