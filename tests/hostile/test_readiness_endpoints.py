"""The replay readiness check against endpoints that misbehave: each check ends
in bounded time (a Retry-After of days holds none of its probes), an endpoint
that takes no event gets "cannot tell", not "no" (and no rate read from its
refusals), and its report page and download show what came back escaped, never
a 500."""

import random
import time

import pytest
from django.urls import reverse

from sandbox.replay import readiness
from sandbox.replay.models import ReadinessCheck
from tests.factories import make_subscription
from tests.replay.helpers import EngineThread

TINY = readiness.RampOptions(
    start=5, most=6, step_seconds=0.5, budget_seconds=3, latency_limit_ms=500
)
PATHS = [
    "/html",
    "/reset",
    "/huge",
    "/redirect",
    "/moved",
    "/surrogate",
    "/status/500",
    "/status/401",
    "/status/204",
    "/retry-after/99999999",
    "/retry-after/-5",
    "/retry-after/soon",
]
# Answered at once and taking nothing: refused for what the events hold, or
# sent elsewhere.
TAKES_NOTHING = {"/surrogate", "/status/401", "/redirect", "/moved"}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", PATHS)
def test_a_readiness_check_against_a_hostile_endpoint_ends_and_shows(
    client, receiver, path
):
    subscription = make_subscription(name="Hostile", endpoint_url=receiver.url(path))
    check = readiness.readiness_create(subscription=subscription)
    started = time.monotonic()
    with EngineThread():
        check = readiness.readiness_run(
            check_id=check.pk, options=TINY, rng=random.Random(3)
        )
    assert time.monotonic() - started < 60
    assert check.finished_at is not None
    assert check.status == ReadinessCheck.Status.DONE, check.problem
    report = check.report
    accepted = [r["ok"] for r in report["timestamps"]["results"]]
    if not any(accepted):
        # The first news: nothing was taken, and what the probes got.
        none = report["accepted_none"]
        assert none["probes"] == len(readiness.AGES) + 2 * readiness.ORDER_EVENTS
        assert none["answers"]
        assert report["timestamps"]["verdict"] == readiness.UNKNOWN
        assert report["order"]["verdict"] == readiness.UNKNOWN
        assert report["timestamps"]["problem"] and report["order"]["problem"]
    else:
        assert all(accepted) and report["timestamps"]["verdict"] == readiness.YES
        assert "accepted_none" not in report
    rate = report["rate"]
    assert rate["cannot_tell"] == (path in TAKES_NOTHING), rate
    if rate["cannot_tell"]:
        assert rate["sustained"] == 0 and rate["limit"] == rate["steps"][0]
        assert rate["limit"]["failures"][0].startswith("accepted none of its")
    for name in ("replay:readiness-detail", "replay:readiness-download"):
        page = client.get(reverse(name, args=[check.pk]))
        assert page.status_code == 200
        text = page.content.decode()
        assert "<script>alert(1)" not in text
        assert "\ud800" not in text
        if not any(accepted):
            assert text.count(">cannot tell</span>") == 2 + rate["cannot_tell"]
            assert "data-accepted-none>The endpoint accepted none of the 29" in text
        if rate["cannot_tell"]:
            assert 'class="unknown" data-verdict="rate">cannot tell</span>' in text
            assert "say nothing of the rate it sustains" in text
        elif not rate["steps"][0]["passed"]:
            assert ">below 5 events/s</span>" in text
