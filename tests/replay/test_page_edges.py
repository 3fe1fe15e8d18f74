"""The replay pages at their edges: controls without JavaScript, advice that
the most concurrency cannot follow, one readiness check at a time, words and
numbers as a person reads them, history filters that cannot match, and a
source the form does not know."""

import dataclasses
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

from sandbox.delivery import queue
from sandbox.delivery.models import Run
from sandbox.replay import forms, readiness, selectors, services, views
from sandbox.replay.models import ReadinessCheck, Replay
from tests.factories import ad_hoc_target, make_subscription
from tests.replay.helpers import write_lines


def _unfed_replay(tmp_path, receiver, **options) -> Replay:
    """A replay made and never read: interrupted, so it offers Resume and Cancel."""
    path = write_lines(tmp_path / "e.jsonl", 3)
    return services.replay_create(
        target=ad_hoc_target(receiver.url("/ok")), path=path, concurrency=5, **options
    )


def _history_replay(**filters) -> Replay:
    subscription = make_subscription(name="Hook")
    return services.replay_create(
        target=ad_hoc_target("http://127.0.0.1:9/none"),
        history=services.HistoryFilters(subscription_id=subscription.pk, **filters),
        concurrency=5,
    )


@pytest.mark.django_db
def test_the_controls_work_without_javascript(tmp_path, receiver):
    replay = _unfed_replay(tmp_path, receiver)
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(reverse("replay:detail", args=[replay.pk])).content.decode()
    action = reverse("replay:cancel", args=[replay.pk])
    form = re.search(rf'<form method="post" action="{action}".*?</form>', page)
    assert form is not None
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(0))
    assert token is not None, form.group(0)
    response = browser.post(action, {"csrfmiddlewaretoken": token.group(1)})
    assert response.status_code == 302
    replay.refresh_from_db()
    assert replay.status == Replay.Status.CANCELLED


@pytest.mark.django_db
def test_the_advice_says_when_even_the_most_concurrency_cannot_carry_the_rate(
    tmp_path, receiver
):
    replay = _unfed_replay(tmp_path, receiver)
    measured = selectors.replay_progress(replay=replay)

    def shown(**figures) -> str:
        progress = dataclasses.replace(
            measured, status="sending", slowed_to=1.0, **figures
        )
        context = {"replay": replay, "progress": progress}
        html = render_to_string("replay/replay_detail.html#replay-progress", context)
        return " ".join(html.split())

    # 200 at once at 202 ms carry about 990 events/s, far from 5,000.
    page = shown(rate=5000.0, concurrency=50, latency_p50=202)
    assert (
        "50 requests in flight at the endpoint's median 202 ms carry about 247 "
        "events/s, below the 5,000 events/s asked. Even the most, 200 at once, "
        "would carry only about 990 events/s at that latency."
    ) in page
    assert "would reach it" not in page
    # 200 at once at 200 ms carry 1,000: enough for 900, without a fifth spare.
    page = shown(rate=900.0, concurrency=10, latency_p50=200)
    assert "A replay with a concurrency of about 200 would reach it." in page


@pytest.mark.django_db
def test_a_readiness_check_is_refused_while_another_runs(client):
    running = readiness.readiness_create(
        subscription=make_subscription(name="First hook")
    )
    other = make_subscription(name="Second hook")
    response = client.post(
        reverse("replay:readiness-start"), {"subscription": other.pk}
    )
    assert response.status_code == 409
    page = response.content.decode()
    said = views.READINESS_BUSY.format(name="First hook", pk=running.pk)
    assert said in page
    link = reverse("replay:readiness-detail", args=[running.pk])
    assert f'<a href="{link}">See check #{running.pk}</a>' in page
    assert list(ReadinessCheck.objects.values_list("pk", flat=True)) == [running.pk]


@pytest.mark.django_db
def test_a_history_replay_counts_its_bad_deliveries_in_english(client):
    replay = _history_replay()
    page = client.get(reverse("replay:detail", args=[replay.pk])).content.decode()
    assert "0 events, 0 bad deliveries" in page
    assert "deliverys" not in page


@pytest.mark.django_db
def test_a_check_under_a_minute_says_its_seconds(client):
    check = readiness.readiness_create(subscription=make_subscription(name="Hook"))
    for took, said in ((38, "in 38 s"), (125, "in 2 min 5 s")):
        ReadinessCheck.objects.filter(pk=check.pk).update(
            status=ReadinessCheck.Status.FAILED,
            problem="stopped",
            finished_at=check.created_at + timedelta(seconds=took),
        )
        for name in ("replay:readiness-detail", "replay:readiness-download"):
            page = client.get(reverse(name, args=[check.pk])).content.decode()
            assert f" UTC {said}</p>" in page, name
            assert "minutes" not in page


@pytest.mark.django_db
def test_a_large_rate_is_shown_as_a_plain_number(client, tmp_path, receiver):
    replay = _unfed_replay(tmp_path, receiver, rate=1e11)
    page = client.get(reverse("replay:detail", args=[replay.pk])).content.decode()
    assert "100,000,000,000 events/s, concurrency 5, original order" in page
    assert "e+" not in page


@pytest.mark.django_db(transaction=True)
def test_history_filters_that_end_before_they_start_are_refused(client):
    subscription = make_subscription(name="Hook")
    response = client.post(
        reverse("replay:start"),
        {
            "source": "history",
            "subscription": subscription.pk,
            "concurrency": "5",
            "since": "2024-02-01T00:00",
            "until": "2024-01-01T00:00",
        },
    )
    assert response.status_code == 400
    assert "“Until” comes before “From”" in response.content.decode()
    assert forms.UNTIL_BEFORE_SINCE.startswith("“Until” comes before “From”")
    assert not Replay.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_start_given_with_an_offset_is_shown_in_utc(client):
    subscription = make_subscription(name="Hook")
    response = client.post(
        reverse("replay:start"),
        {
            "source": "history",
            "subscription": subscription.pk,
            "concurrency": "5",
            "since": "2024-01-01T00:00+05:00",
            "until": "2024-01-02T03:30-02:00",
        },
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert (
        "Past deliveries: from 2023-12-31 19:00 UTC, until 2024-01-02 05:30 UTC"
    ) in page


@pytest.mark.django_db
def test_a_source_the_form_does_not_know_is_said_on_the_page(client):
    subscription = make_subscription(name="Hook")
    response = client.post(
        reverse("replay:start"),
        {"source": "bogus", "subscription": subscription.pk, "concurrency": "5"},
    )
    assert response.status_code == 400
    assert (
        '<p class="field-error" role="alert">Select a valid choice. bogus is not '
        "one of the available choices.</p>"
    ) in response.content.decode()
    assert not Replay.objects.exists()


@pytest.mark.django_db
def test_a_replay_held_by_a_long_retry_after_says_until_when(
    client, tmp_path, receiver
):
    replay = _unfed_replay(tmp_path, receiver)
    # Read by a live process (this one), so it counts as running.
    Replay.objects.filter(pk=replay.pk).update(feeder=queue.worker_name())
    until = time.time() + 86400
    Run.objects.filter(pk=replay.run_id).update(throttled_count=1, held_until=until)
    page = client.get(reverse("replay:detail", args=[replay.pk])).content.decode()
    said = datetime.fromtimestamp(until, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert f"It sends nothing until {said} UTC, as the endpoint's Retry-After" in page
    Run.objects.filter(pk=replay.run_id).update(held_until=time.time() - 1)
    page = client.get(reverse("replay:detail", args=[replay.pk])).content.decode()
    assert "The endpoint answered 429 1 time" in page
    assert "It sends nothing until" not in page
