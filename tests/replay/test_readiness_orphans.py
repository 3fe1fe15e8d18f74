"""A readiness check whose process ended while it ran (the server stopped or
restarted) is shown ended, saying so, instead of running for ever; one whose
process runs stays running."""

import html
import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from sandbox.replay import readiness
from sandbox.replay.models import ReadinessCheck
from tests.factories import make_subscription


def _ended_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.django_db
def test_a_check_whose_process_ended_is_shown_ended(client):
    subscription = make_subscription(name="Partner")
    orphan = readiness.readiness_create(subscription=subscription)
    ReadinessCheck.objects.filter(pk=orphan.pk).update(
        runner=f"{socket.gethostname()}:{_ended_pid()}:abcdef"
    )
    alive = readiness.readiness_create(subscription=subscription)
    assert alive.runner.split(":")[1] == str(os.getpid())
    page = client.get(reverse("replay:readiness-detail", args=[orphan.pk]))
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert readiness.ORPHANED in text
    orphan.refresh_from_db()
    alive.refresh_from_db()
    assert orphan.status == ReadinessCheck.Status.FAILED
    assert orphan.finished_at is not None
    assert alive.status == ReadinessCheck.Status.RUNNING


@pytest.mark.django_db
def test_a_check_made_before_checks_named_their_process_ends_once_long_past(client):
    subscription = make_subscription(name="Partner")
    old = readiness.readiness_create(subscription=subscription)
    ReadinessCheck.objects.filter(pk=old.pk).update(
        runner="", created_at=timezone.now() - timedelta(hours=1)
    )
    # ReadinessCheck rows as older versions left them: both running, neither
    # naming its process.
    recent = ReadinessCheck.objects.create(
        subscription=subscription,
        subscription_name=subscription.name,
        endpoint_url=subscription.endpoint_url,
    )
    page = client.get(reverse("replay:list"))
    assert page.status_code == 200
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.status == ReadinessCheck.Status.FAILED
    assert old.problem == readiness.ORPHANED
    assert recent.status == ReadinessCheck.Status.RUNNING


@pytest.mark.django_db(transaction=True)
def test_two_checks_started_at_the_same_moment_make_one():
    subscription = make_subscription(name="Partner")
    ready = threading.Barrier(4)

    def start() -> str:
        ready.wait()
        try:
            readiness.readiness_create(subscription=subscription)
        except readiness.ReadinessBusy as busy:
            return f"busy:{busy.running.pk}"
        finally:
            connection.close()
        return "made"

    with ThreadPoolExecutor(4) as pool:
        said = sorted(pool.map(lambda _: start(), range(4)))
    [made] = ReadinessCheck.objects.values_list("pk", flat=True)
    assert said == [f"busy:{made}"] * 3 + ["made"]
