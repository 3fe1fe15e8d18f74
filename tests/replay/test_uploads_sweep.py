"""Uploaded files are never left behind: a refused upload is removed at once,
whatever refused it, and the sweep removes old files no replay points at."""

import os
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from sandbox.delivery.services import Target
from sandbox.replay import services, uploads
from sandbox.replay.models import Replay
from tests.factories import make_subscription
from tests.replay.helpers import write_lines

HOUR = 3600


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


def _aged(path, seconds: float):
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def _left() -> list[str]:
    return sorted(p.name for p in uploads.uploads_directory().iterdir())


def _start(client, subscription, **fields):
    data = {"source": "file", "subscription": subscription.pk, "concurrency": "5"}
    return client.post(reverse("replay:start"), {**data, **fields})


@pytest.mark.django_db
def test_uploads_sweep_removes_old_unreferenced_files_only(tmp_path):
    directory = uploads.uploads_directory()
    orphan = _aged(write_lines(directory / "orphan.upload", 2), 2 * HOUR)
    fresh = write_lines(directory / "arriving.upload", 2)
    used = _aged(write_lines(directory / "used.upload", 2), 2 * HOUR)
    services.replay_create(target=Target.of(make_subscription(name="Hook")), path=used)
    outside = _aged(write_lines(tmp_path / "mine.jsonl", 2), 2 * HOUR)
    (directory / "a-folder").mkdir()

    removed = uploads.uploads_sweep()

    assert removed == [orphan]
    assert _left() == ["a-folder", "arriving.upload", "used.upload"]
    assert fresh.exists() and used.exists() and outside.exists()
    assert uploads.uploads_sweep(older_than_seconds=0) == [fresh]


@pytest.mark.django_db
def test_uploads_sweep_of_an_empty_directory_asks_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert uploads.uploads_sweep() == []


@pytest.mark.django_db
def test_the_list_page_sweeps(client):
    _aged(write_lines(uploads.uploads_directory() / "old.upload", 2), 2 * HOUR)
    write_lines(uploads.uploads_directory() / "new.upload", 2)
    assert client.get(reverse("replay:list")).status_code == 200
    assert _left() == ["new.upload"]


@pytest.mark.django_db(transaction=True)
def test_creating_a_replay_sweeps_once_it_commits(tmp_path):
    _aged(write_lines(uploads.uploads_directory() / "old.upload", 2), 2 * HOUR)
    kept = _aged(write_lines(uploads.uploads_directory() / "kept.upload", 2), 2 * HOUR)
    services.replay_create(target=Target.of(make_subscription(name="H")), path=kept)
    assert _left() == ["kept.upload"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "content"),
    [
        ({"concurrency": "0"}, b'{"type": "track"}\n'),
        ({"source": "history"}, b'{"type": "track"}\n'),
        ({}, b"\x1f\x8b\x08 not really gzip"),
        ({}, b""),
    ],
    ids=["refused-form", "history-with-a-file", "unreadable", "empty"],
)
def test_an_upload_refused_or_unused_is_removed_at_once(client, fields, content):
    subscription = make_subscription(name="Hook")
    upload = SimpleUploadedFile("e.jsonl.gz", content)
    response = _start(client, subscription, file=upload, **fields)
    assert response.status_code in {302, 400}
    assert not Replay.objects.filter(source=Replay.Source.FILE).exists()
    assert _left() == []


@pytest.mark.django_db
def test_an_upload_refused_by_csrf_is_removed():
    subscription = make_subscription(name="Hook")
    upload = SimpleUploadedFile("e.jsonl", b'{"type": "track"}\n')
    response = _start(Client(enforce_csrf_checks=True), subscription, file=upload)
    assert response.status_code == 403
    assert _left() == []


@pytest.mark.django_db(transaction=True)
def test_an_accepted_upload_is_kept(client, monkeypatch):
    # Only the upload matters here, not the sending.
    monkeypatch.setattr(services, "replay_feed_in_background", lambda **_: None)
    subscription = make_subscription(name="Hook")
    upload = SimpleUploadedFile("e.jsonl", b'{"type": "track", "event": "x"}\n')
    response = _start(client, subscription, file=upload)
    assert response.status_code == 302
    replay = Replay.objects.get()
    assert _left() == [os.path.basename(replay.file_path)]
