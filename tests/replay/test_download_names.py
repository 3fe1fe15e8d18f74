"""A downloaded report named after a subscription in any script keeps its
name: an ASCII header with the name as filename* (RFC 6266)."""

import pytest
from django.urls import reverse

from sandbox.replay import readiness
from sandbox.replay.models import ReadinessCheck
from tests.factories import make_subscription


@pytest.mark.django_db
def test_a_readiness_report_of_a_name_in_any_script_downloads_under_it(client):
    subscription = make_subscription(name="<b>Partner</b> 日本語ü")
    check = readiness.readiness_create(subscription=subscription)
    ReadinessCheck.objects.filter(pk=check.pk).update(
        status=ReadinessCheck.Status.FAILED, problem="stopped"
    )
    response = client.get(reverse("replay:readiness-download", args=[check.pk]))
    assert response.status_code == 200
    header = response["Content-Disposition"]
    assert header.isascii(), header
    assert header == (
        "attachment; filename*=utf-8''"
        "replay-readiness-b-Partner--b--%E6%97%A5%E6%9C%AC%E8%AA%9E%C3%BC.html"
    )


@pytest.mark.django_db
def test_an_ascii_name_keeps_the_plain_filename(client):
    subscription = make_subscription(name="Partner hook")
    check = readiness.readiness_create(subscription=subscription)
    ReadinessCheck.objects.filter(pk=check.pk).update(
        status=ReadinessCheck.Status.FAILED, problem="stopped"
    )
    response = client.get(reverse("replay:readiness-download", args=[check.pk]))
    assert response["Content-Disposition"] == (
        'attachment; filename="replay-readiness-Partner-hook.html"'
    )
