"""The replay readiness check against endpoints that behave as partners' do:
one that rejects old timestamps, one that fails on reordering, one that
rate-limits at a known rate (which the report finds within 20 %), one that
answers slowly.

/sluggish answers after 0.5 s; /fresh refuses a timestamp older than 30 minutes."""

import asyncio
import html
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from django.urls import reverse

from sandbox.replay import readiness
from sandbox.replay.models import ReadinessCheck
from sandbox.spec import parse_timestamp
from tests.factories import make_subscription
from tests.receiver import Receiver
from tests.replay.helpers import EngineThread, wait_until

FAST = readiness.RampOptions(start=40, most=200, step_seconds=1.5)


@dataclass
class Partner(Receiver):
    """/recent: 400 for a timestamp older than 7 days. /in-order: 400 for an
    event older than the last one of its user. Other paths as Receiver."""

    latest: dict = field(default_factory=dict)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/sluggish":
            await self._record(request)
            await asyncio.sleep(0.5)
            return web.json_response({"success": True})
        if request.path == "/fresh":
            await self._record(request)
            at = parse_timestamp(self.received[-1].json["timestamp"])
            if at < datetime.now(UTC) - timedelta(minutes=30):
                return web.json_response({"message": "timestamp too old"}, status=400)
            return web.json_response({"success": True})
        if request.path not in {"/recent", "/in-order"}:
            return await super()._handle(request)
        await self._record(request)
        body = self.received[-1].json
        at = parse_timestamp(body["timestamp"])
        if request.path == "/recent":
            if at < datetime.now(UTC) - timedelta(days=7):
                return web.json_response({"message": "too old"}, status=400)
            return web.json_response({"success": True})
        last = self.latest.get(body["userId"])
        if last is not None and at < last:
            return web.json_response({"message": "out of order"}, status=400)
        self.latest[body["userId"]] = at
        return web.json_response({"success": True})


@pytest.fixture
def partner():
    server = Partner().start()
    yield server
    server.stop()


def _check(url: str, options=FAST) -> ReadinessCheck:
    subscription = make_subscription(name="Partner", endpoint_url=url)
    check = readiness.readiness_create(subscription=subscription)
    with EngineThread():
        return readiness.readiness_run(
            check_id=check.pk, options=options, rng=random.Random(7)
        )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_endpoint_that_rejects_old_timestamps_is_named(partner):
    options = readiness.RampOptions(start=20, most=20, step_seconds=0.5)
    check = _check(partner.url("/recent"), options)
    assert check.status == ReadinessCheck.Status.DONE, check.problem
    timestamps = check.report["timestamps"]
    assert timestamps["rejected"] == ["30 days", "1 year", "3 years"]
    assert not timestamps["passed"]
    assert check.report["order"]["passed"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_endpoint_that_refuses_every_dated_probe_but_takes_recent_events(partner):
    # Its window is shorter than the newest probe's hour: every dated probe is
    # refused, and the order question's events, minutes old, are taken.
    options = readiness.RampOptions(start=20, most=20, step_seconds=0.5)
    check = _check(partner.url("/fresh"), options)
    assert check.status == ReadinessCheck.Status.DONE, check.problem
    timestamps = check.report["timestamps"]
    assert timestamps["rejected"] == [age for age, _ in readiness.AGES]
    assert timestamps["verdict"] == readiness.NO
    assert "rejects events by their timestamp" in timestamps["problem"]
    assert check.report["order"]["ok_in_order"] == readiness.ORDER_EVENTS


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_endpoint_that_fails_on_reordering_is_found(partner):
    options = readiness.RampOptions(start=20, most=20, step_seconds=0.5)
    check = _check(partner.url("/in-order"), options)
    order = check.report["order"]
    assert order["ok_in_order"] == readiness.ORDER_EVENTS
    assert order["ok_shuffled"] < readiness.ORDER_EVENTS
    assert order["order_matters"] and not order["passed"]
    assert check.report["timestamps"]["passed"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_rate_an_endpoint_sustains_is_found_within_20_percent(partner):
    check = _check(partner.url("/limited/100"))
    rate = check.report["rate"]
    assert rate["limit"] is not None and rate["limit"]["refused"] > 0
    assert 80 <= rate["sustained"] <= 120, rate
    assert check.report["timestamps"]["passed"] and check.report["order"]["passed"]
    # The rate doubles until a step fails, then each step goes between the
    # highest rate that passed and the lowest that failed, until those are
    # within 20 %.
    rates = [step["rate"] for step in rate["steps"]]
    first_failed = next(i for i, step in enumerate(rate["steps"]) if not step["passed"])
    assert rates[: first_failed + 1] == [40.0 * 2**i for i in range(first_failed + 1)]
    for i in range(first_failed + 1, len(rates)):
        before = rate["steps"][:i]
        highest = max(step["rate"] for step in before if step["passed"])
        lowest = min(step["rate"] for step in before if not step["passed"])
        assert highest < rates[i] < lowest, rates
    assert rate["limit"]["rate"] / rate["sustained"] <= 1.2 + 1e-6, rates
    assert rate["limit"]["rate"] == min(
        step["rate"] for step in rate["steps"] if not step["passed"]
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_report_page_and_its_download(client, receiver):
    subscription = make_subscription(
        name="<img src=x onerror=alert(1)>", endpoint_url=receiver.url("/status/500")
    )
    with EngineThread():
        response = client.post(
            reverse("replay:readiness-start"), {"subscription": subscription.pk}
        )
        check = ReadinessCheck.objects.get()
        assert response["Location"] == reverse(
            "replay:readiness-detail", args=[check.pk]
        )
        wait_until(lambda: ReadinessCheck.objects.get().status != "running", timeout=60)
    page = client.get(response["Location"]).content.decode()
    assert 'data-status="done"' in page
    assert "&lt;img src=x" in page and "<img" not in page
    # Every probe answered 500: no answer says anything about timestamps or
    # order, and the first rate step failed.
    assert 'data-verdict="rate">below 10.0 events/s' in page
    assert "At 10.0 events/s: " in page and "answered 5xx" in page
    download = client.get(reverse("replay:readiness-download", args=[check.pk]))
    assert download["Content-Disposition"].startswith("attachment;")
    body = download.content.decode()
    assert "<script" not in body and "/static/" not in body
    assert 'data-verdict="timestamps">cannot tell' in body
    assert 'data-verdict="order">cannot tell' in body
    assert "accepted none of the 29 events of the first two questions " in body
    assert "(29 answered 500)" in body


@pytest.mark.django_db(transaction=True)
def test_a_ramp_its_time_budget_ends_says_so_not_that_every_rate_passed(
    partner, client
):
    # One short step, then the budget is spent before the next: nothing failed,
    # but the highest rate the check tries was never reached.
    options = readiness.RampOptions(
        start=10, most=2000, step_seconds=0.5, budget_seconds=0.1
    )
    check = _check(partner.url("/ok"), options)
    rate = check.report["rate"]
    assert rate["limit"] is None
    assert rate["out_of_time"] is True
    assert rate["reached_most"] is False
    page = client.get(reverse("replay:readiness-detail", args=[check.pk]))
    text = html.unescape(page.content.decode())
    assert "Every step passed until the check's 0 s ran out" in text
    assert "the highest the check tries" not in text


def _report_page(client, rate: dict) -> str:
    subscription = make_subscription(name="Partner")
    check = ReadinessCheck.objects.create(
        subscription=subscription,
        subscription_name=subscription.name,
        endpoint_url=subscription.endpoint_url,
        status=ReadinessCheck.Status.DONE,
        report={"rate": rate},
    )
    page = client.get(reverse("replay:readiness-detail", args=[check.pk]))
    return html.unescape(page.content.decode())


def _step(rate: float, passed: bool) -> dict:
    return {
        "rate": rate,
        "events": int(rate * 3),
        "achieved": rate,
        "p95_ms": 2,
        "refused": 0 if passed else 5,
        "server_errors": 0,
        "accepted_none": False,
        "passed": passed,
        "failures": [] if passed else ["5 answered 429"],
    }


@pytest.mark.django_db
def test_a_report_whose_narrowing_ran_out_of_time_gives_the_bracket(client):
    steps = [_step(10.0, True), _step(20.0, True), _step(40.0, False)]
    text = _report_page(
        client,
        {
            "steps": steps,
            "sustained": 20.0,
            "limit": steps[-1],
            "reached_most": False,
            "cannot_tell": False,
            "out_of_time": False,
            "between": [20.0, 40.0],
            "budget_seconds": 90.0,
            "latency_limit_ms": 1000,
            "most": 2000.0,
            "within_percent": 20,
        },
    )
    assert 'data-verdict="rate">20.0 events/s' in text
    assert "At 40.0 events/s: 5 answered 429." in text
    assert "its limit lies between 20.0 and 40.0 events/s" in text
    assert "until those are within 20 %" in text


@pytest.mark.django_db
def test_a_report_whose_every_step_passed_names_the_highest_rate_tried(client):
    steps = [_step(10.0, True), _step(20.0, True)]
    text = _report_page(
        client,
        {
            "steps": steps,
            "sustained": 20.0,
            "limit": None,
            "reached_most": True,
            "cannot_tell": False,
            "out_of_time": False,
            "between": None,
            "budget_seconds": 90.0,
            "latency_limit_ms": 1000,
            "most": 20.0,
            "within_percent": 20,
        },
    )
    assert "Every step passed, up to 20 events/s, the highest the check tries." in text
    assert "lies between" not in text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_rate_held_by_the_steps_concurrency_is_not_called_the_endpoints(
    partner, client
):
    # 5 requests at once at 0.5 s each carry 10 events/s, below the 20 asked.
    options = readiness.RampOptions(start=20, most=20, step_seconds=1.0)
    check = _check(partner.url("/sluggish"), options)
    rate = check.report["rate"]
    [step] = rate["steps"]
    assert step["passed"] and step["short"], step
    assert step["concurrency"] == 5 and step["achieved"] < 18
    assert rate["held"] == step
    assert rate["sustained"] == step["achieved"]
    page = client.get(reverse("replay:readiness-detail", args=[check.pk]))
    text = html.unescape(page.content.decode())
    assert (
        f"At {step['rate']} events/s the sandbox sent {step['achieved']}: 5 "
        "requests at once at the endpoint's median"
    ) in text
    assert "the endpoint may sustain more than this report says" in text
    assert f"(sent {step['achieved']}/s: 5 at once at a median" in text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_step_sends_enough_at_once_for_the_latency_the_step_before_saw(partner):
    # The first step, 5 at once at 0.5 s, is held; the second sizes its
    # requests in flight from that p95 (40/s at 0.5 s, with room: 30) and
    # carries its rate.
    options = readiness.RampOptions(start=20, most=40, step_seconds=2.0)
    check = _check(partner.url("/sluggish"), options)
    rate = check.report["rate"]
    first, second = rate["steps"]
    assert first["short"] and first["concurrency"] == 5, first
    assert first["p95_ms"] >= 500
    assert second["concurrency"] == readiness.step_concurrency(40, first["p95_ms"])
    assert second["concurrency"] >= 30
    assert second["passed"] and not second["short"], second
    assert second["achieved"] >= 36
    assert rate["held"] is None and rate["reached_most"]
    assert rate["sustained"] >= 36


@pytest.mark.parametrize(
    ("rate", "latency_ms", "expected"),
    [
        (10, None, 5),
        (100, None, 20),
        (100, 300, 45),
        (100, 20, 20),
        (2000, None, 200),
        (100, 5000, 200),
    ],
)
def test_step_concurrency_carries_the_rate_at_the_latency_seen(
    rate, latency_ms, expected
):
    assert readiness.step_concurrency(rate, latency_ms) == expected


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_question_out_of_time_sends_no_more_of_its_events(partner):
    # One at a time at 0.5 s each: about two answered within the second given;
    # the rest is not sent, saying why, and nothing reaches the endpoint later.
    subscription = make_subscription(name="Slow", endpoint_url=partner.url("/sluggish"))
    target = readiness._probe_target(subscription)
    now = datetime.now(UTC)
    events = [readiness._event("slow", n, now) for n in range(20)]
    with EngineThread():
        _, deliveries, settled = readiness._send(
            target,
            events,
            label="Readiness: slow",
            created=lambda run: None,
            concurrency=1,
            timeout=1.0,
        )
        time.sleep(1.5)
    assert not settled
    unsent = [d for d in deliveries if d.reason.startswith("Not sent:")]
    assert len(unsent) >= 14, [d.reason for d in deliveries]
    assert all(d.attempt_count == 0 for d in unsent)
    assert len(partner.received) <= 20 - len(unsent)
