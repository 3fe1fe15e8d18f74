"""Deleting a replay: cancelled first if it still sends, its row and uploaded
file gone, its deliveries kept in history; and the page's delete door."""

import pytest
from django.test import Client
from django.urls import reverse

from sandbox.delivery.models import OPEN_STATES, Delivery, Run, State
from sandbox.delivery.services import Target
from sandbox.replay import services, uploads, views
from sandbox.replay.models import Replay
from tests.factories import make_subscription
from tests.replay.helpers import write_lines


def _target() -> Target:
    return Target.of(make_subscription(name="Hook", endpoint_url="http://127.0.0.1:9/"))


def _uploaded(name: str = "a.upload", count: int = 20):
    return write_lines(uploads.uploads_directory() / name, count)


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


@pytest.mark.django_db(transaction=True)
def test_replay_delete_cancels_removes_the_row_and_file_and_keeps_deliveries():
    path = _uploaded()
    replay = services.replay_create(target=_target(), path=path)
    # Fed with no engine running: every delivery is still open.
    services.replay_feed(replay_id=replay.pk)
    made = list(Delivery.objects.filter(run_id=replay.run_id).values_list("pk"))
    assert len(made) == 20

    services.replay_delete(replay=replay)

    assert not Replay.objects.exists()
    assert not path.exists()
    kept = Delivery.objects.filter(run_id=replay.run_id)
    assert list(kept.values_list("pk")) == made
    assert not kept.filter(state__in=OPEN_STATES).exists()
    assert set(kept.values_list("reason", flat=True)) == {services.CANCELLED}
    assert Run.objects.get(pk=replay.run_id).paused


@pytest.mark.django_db(transaction=True)
def test_replay_delete_of_a_replay_being_fed_stops_its_feeding():
    path = _uploaded(count=100)
    replay = services.replay_create(target=_target(), path=path)
    # No engine: the feeder fills its window and waits for room.
    feeding = services.replay_feed_in_background(
        replay_id=replay.pk, chunk_events=10, window=10
    )
    while not Delivery.objects.filter(run_id=replay.run_id).exists():
        feeding.join(0.02)

    services.replay_delete(replay=Replay.objects.get(pk=replay.pk))
    feeding.join(10)

    assert not feeding.is_alive()
    kept = Delivery.objects.filter(run_id=replay.run_id)
    assert kept.count() == 10
    assert not kept.filter(state__in=OPEN_STATES).exists()
    assert not path.exists()


@pytest.mark.django_db(transaction=True)
def test_replay_delete_keeps_a_file_another_replay_reads():
    path = _uploaded()
    first = services.replay_create(target=_target(), path=path)
    second = services.replay_create(target=Target.of(first.subscription), path=path)

    services.replay_delete(replay=first)
    assert path.exists()
    services.replay_delete(replay=second)
    assert not path.exists()


@pytest.mark.django_db(transaction=True)
def test_replay_delete_never_removes_a_file_named_on_the_command_line(tmp_path):
    path = write_lines(tmp_path / "mine.jsonl", 3)
    replay = services.replay_create(target=_target(), path=path)
    services.replay_delete(replay=replay)
    assert not Replay.objects.exists()
    assert path.read_bytes().count(b"\n") == 3


@pytest.mark.django_db(transaction=True)
def test_replay_delete_of_a_history_replay_that_finished():
    replay = services.replay_create(target=_target(), history=services.HistoryFilters())
    services.replay_feed(replay_id=replay.pk)
    services.replay_delete(replay=Replay.objects.get(pk=replay.pk))
    assert not Replay.objects.exists()
    # Nothing was open: nothing to cancel, and the run stays as it was.
    assert not Run.objects.get(pk=replay.run_id).paused


@pytest.mark.django_db(transaction=True)
def test_the_delete_button_posts_and_redirects_to_the_list_with_a_message(client):
    replay = services.replay_create(target=_target(), path=_uploaded())
    delete = reverse("replay:delete", args=[replay.pk])
    page = client.get(reverse("replay:detail", args=[replay.pk])).content.decode()
    assert f'action="{delete}"' in page and 'hx-confirm="Delete replay' in page
    assert "Its deliveries stay in history." in page
    listing = client.get(reverse("replay:list")).content.decode()
    assert f'hx-post="{delete}"' in listing

    response = client.post(delete)

    assert response.status_code == 302
    assert response["Location"] == reverse("replay:list")
    shown = client.get(response["Location"]).content.decode()
    assert views.DELETED.format(pk=replay.pk) in shown
    assert f'data-replay="{replay.pk}"' not in shown


@pytest.mark.django_db(transaction=True)
def test_the_delete_over_htmx_from_the_list_answers_the_rows(client):
    kept = services.replay_create(target=_target(), path=_uploaded("k.upload"))
    gone = services.replay_create(
        target=Target.of(kept.subscription), path=_uploaded("g.upload")
    )
    response = client.post(
        reverse("replay:delete", args=[gone.pk]),
        headers={"HX-Request": "true", "HX-Target": "replay-rows"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div class="card" id="replay-rows">')
    assert views.DELETED.format(pk=gone.pk) in body
    assert f'data-replay="{kept.pk}"' in body
    assert f'data-replay="{gone.pk}"' not in body


@pytest.mark.django_db(transaction=True)
def test_the_delete_over_htmx_from_the_replay_page_redirects(client):
    replay = services.replay_create(target=_target(), path=_uploaded())
    response = client.post(
        reverse("replay:delete", args=[replay.pk]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("replay:list")
    assert not Replay.objects.exists()


@pytest.mark.django_db
def test_the_delete_of_an_unknown_replay_is_404_and_get_is_405(client):
    missing = client.post(reverse("replay:delete", args=[999]))
    assert missing.status_code == 404
    replay = services.replay_create(target=_target(), path=_uploaded())
    refused = client.get(reverse("replay:delete", args=[replay.pk]))
    assert refused.status_code == 405
    assert Replay.objects.filter(pk=replay.pk).exists()


@pytest.mark.django_db
def test_the_delete_needs_the_csrf_token():
    replay = services.replay_create(target=_target(), path=_uploaded())
    response = Client(enforce_csrf_checks=True).post(
        reverse("replay:delete", args=[replay.pk])
    )
    assert response.status_code == 403
    assert Replay.objects.filter(pk=replay.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_replay_delete_of_a_settled_replay_leaves_its_deliveries_as_they_were():
    replay = services.replay_create(target=_target(), path=_uploaded(count=2))
    services.replay_feed(replay_id=replay.pk)
    Delivery.objects.filter(run_id=replay.run_id).update(state=State.DELIVERED)
    services.replay_delete(replay=Replay.objects.get(pk=replay.pk))
    states = Delivery.objects.filter(run_id=replay.run_id).values_list(
        "state", flat=True
    )
    assert list(states) == [State.DELIVERED, State.DELIVERED]
    assert not Run.objects.get(pk=replay.run_id).paused


@pytest.mark.django_db(transaction=True)
def test_replay_delete_twice_is_harmless():
    replay = services.replay_create(target=_target(), path=_uploaded())
    services.replay_delete(replay=replay)
    services.replay_delete(replay=replay)
    assert not Replay.objects.exists()
