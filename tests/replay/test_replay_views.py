"""The replay pages: start from an uploaded file or from history, watch, control."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from sandbox.delivery.models import Delivery, Run
from sandbox.replay import uploads
from sandbox.replay.models import Replay
from tests.factories import make_delivery, make_subscription
from tests.replay.helpers import EngineThread, event, wait_until


def _start(client, subscription, **fields):
    data = {
        "source": "file",
        "subscription": subscription.pk,
        "concurrency": "5",
        **fields,
    }
    return client.post(reverse("replay:start"), data)


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_file_is_stored_and_replayed(client, settings):
    subscription = make_subscription(name="Hook")
    lines = [json.dumps(event(n)) for n in range(30)] + ['{"bad": "<script>x</script>"']
    upload = SimpleUploadedFile(
        "<img src=x onerror=alert(1)>.jsonl", "\n".join(lines).encode()
    )
    response = _start(client, subscription, file=upload, rate="100")
    replay = Replay.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("replay:detail", args=[replay.pk])
    stored = uploads.uploads_directory()
    assert replay.file_path.startswith(str(stored))
    assert replay.file_name == "<img src=x onerror=alert(1)>.jsonl"
    wait_until(lambda: Replay.objects.get().fed_at is not None)
    assert Delivery.objects.filter(run_id=replay.run_id).count() == 30
    assert Run.objects.get(pk=replay.run_id).rate == 100
    page = client.get(response["Location"]).content.decode()
    assert 'id="replay-progress"' in page
    assert f'ws-connect="/ws/runs/{replay.run_id}/"' in page
    assert "&lt;img src=x onerror=alert(1)&gt;.jsonl" in page
    assert "<img" not in page
    assert "<td>31</td><td>not JSON: " in page
    # Retries follow the subscription's policy, which the page names.
    assert "retries: Segment (first attempt + 9 retries over about 4 hours)" in page
    assert reverse("subscriptions:edit", args=[subscription.pk]) in page


@pytest.mark.django_db(transaction=True)
def test_history_is_replayed_by_filter(client):
    subscription = make_subscription(name="Hook")
    for number in range(3):
        make_delivery(subscription=subscription, event=event(number))
    make_delivery(
        subscription=subscription,
        event={**event(9), "type": "identify", "event": None},
        allow_problems=True,
    )
    other = make_subscription(name="Other")
    response = client.post(
        reverse("replay:start"),
        {
            "source": "history",
            "subscription": other.pk,
            "from_subscription": subscription.pk,
            "concurrency": "5",
            "event_type": "track",
        },
    )
    assert response.status_code == 302
    replay = Replay.objects.get()
    wait_until(lambda: Replay.objects.get().fed_at is not None)
    replayed = Delivery.objects.filter(run_id=replay.run_id)
    assert sorted(replayed.values_list("message_id", flat=True)) == [
        "replay-0",
        "replay-1",
        "replay-2",
    ]


@pytest.mark.django_db
def test_a_start_without_a_file_says_so(client):
    subscription = make_subscription(name="Hook")
    response = _start(client, subscription)
    assert response.status_code == 400
    assert "Choose a file to replay" in response.content.decode()
    assert not Replay.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_oversized_upload_is_refused(client, monkeypatch, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 1000)
    subscription = make_subscription(name="Hook")
    upload = SimpleUploadedFile("big.jsonl", b"x" * 5000)
    response = _start(client, subscription, file=upload)
    assert response.status_code == 400
    assert "larger than 0 MB" in response.content.decode()
    assert not Replay.objects.exists()
    assert not list(uploads.uploads_directory().glob("*.upload"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("content", "words"),
    [
        ((json.dumps(event(1)) + "\n").encode("utf-16"), "the file is UTF-16 text"),
        (b"\x1f\x8bnot gzip", "the file starts as gzip but is not a readable"),
    ],
    ids=["utf16", "not-gzip"],
)
def test_an_unreadable_upload_is_refused_by_its_own_name(
    client, settings, tmp_path, content, words
):
    settings.DATA_DIR = tmp_path
    subscription = make_subscription(name="Hook")
    upload = SimpleUploadedFile("export.jsonl", content)
    response = _start(client, subscription, file=upload)
    assert response.status_code == 400
    page = response.content.decode()
    assert f"Cannot read export.jsonl: {words}" in page
    assert str(tmp_path) not in page
    assert not Replay.objects.exists()
    assert not list(uploads.uploads_directory().iterdir())


@pytest.mark.django_db(transaction=True)
def test_pause_resume_cancel_over_htmx(client):
    subscription = make_subscription(name="Hook")
    upload = SimpleUploadedFile("e.jsonl", json.dumps(event(1)).encode())
    _start(client, subscription, file=upload)
    replay = Replay.objects.get()
    headers = {"HTTP_HX_REQUEST": "true"}
    paused = client.post(reverse("replay:pause", args=[replay.pk]), **headers)
    assert paused.status_code == 200
    assert 'data-status="paused"' in paused.content.decode()
    assert Run.objects.get(pk=replay.run_id).paused
    cancelled = client.post(reverse("replay:cancel", args=[replay.pk]), **headers)
    assert 'data-status="cancelled"' in cancelled.content.decode()
    resumed = client.post(reverse("replay:resume", args=[replay.pk]))
    assert resumed.status_code == 302
    assert not Run.objects.get(pk=replay.run_id).paused
    assert Replay.objects.get().status == Replay.Status.RUNNING


@pytest.mark.django_db
def test_the_list_page_has_the_form_and_the_nav_link(client):
    page = client.get(reverse("replay:list")).content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert 'href="/replays/" aria-current="page"' in page


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_page_says_when_the_concurrency_holds_the_replay_back(client, receiver):
    """One request in flight to an endpoint answering in 150 ms carries about
    6 events/s: the page says so, and what concurrency would reach 100/s."""
    subscription = make_subscription(name="Slow", endpoint_url=receiver.url("/slow"))
    lines = [json.dumps(event(n)) for n in range(200)]
    upload = SimpleUploadedFile("slow.jsonl", "\n".join(lines).encode())
    with EngineThread():
        _start(client, subscription, file=upload, rate="100", concurrency="1")
        replay = Replay.objects.get()
        wait_until(
            lambda: (
                Delivery.objects.filter(
                    run_id=replay.run_id, latency_ms__isnull=False
                ).count()
                >= 5
            )
        )
        page = client.get(reverse("replay:detail", args=[replay.pk])).content.decode()
        client.post(reverse("replay:cancel", args=[replay.pk]))
    assert "data-held-by-concurrency" in page
    assert "Held back by its concurrency: 1 request in flight" in page
    assert "below the 100 events/s asked" in page
    assert receiver.max_in_flight == 1


@pytest.mark.django_db(transaction=True)
def test_the_page_says_why_a_replay_again_sent_nothing(client, receiver):
    subscription = make_subscription(name="<b>Hook</b>", endpoint_url=receiver.url())
    lines = "\n".join(json.dumps(event(n)) for n in range(3)).encode()
    pages = []
    with EngineThread():
        for fields in ({}, {}, {"new_message_ids": "on"}):
            _start(
                client,
                subscription,
                file=SimpleUploadedFile("e.jsonl", lines),
                **fields,
            )
            replay = Replay.objects.order_by("-pk").first()
            wait_until(
                lambda replay=replay: (
                    Delivery.objects.filter(
                        run_id=replay.run_id, state__in=["delivered", "deduplicated"]
                    ).count()
                    == 3
                )
            )
            pages.append(
                client.get(reverse("replay:detail", args=[replay.pk])).content.decode()
            )
    first, again, renewed = pages
    assert "data-not-sent-again" not in first
    assert (
        "3 events not sent: &lt;b&gt;Hook&lt;/b&gt; received their messageIds "
        "within its deduplication window, and Segment drops a repeated messageId. "
        "Replay with “New messageIds” to send them again."
    ) in again
    assert "data-not-sent-again" not in renewed
    assert len(receiver.received) == 6


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_replay_gets_the_concurrency_it_asks_beyond_the_engines(client, receiver):
    """The server's engine sends 50 at once; a replay started on the page may ask
    for up to 200, and gets them while it is open."""
    subscription = make_subscription(name="Slow", endpoint_url=receiver.url("/slow"))
    lines = "\n".join(json.dumps(event(n)) for n in range(300)).encode()
    with EngineThread(concurrency=50):
        _start(
            client,
            subscription,
            file=SimpleUploadedFile("many.jsonl", lines),
            concurrency="120",
        )
        replay = Replay.objects.get()
        wait_until(
            lambda: (
                Delivery.objects.filter(run_id=replay.run_id, state="delivered").count()
                == 300
            ),
            timeout=60,
        )
    assert 100 <= receiver.max_in_flight <= 120, receiver.max_in_flight
