"""The retry schedule: attempts, backoff, time scale and Retry-After."""

import random
from datetime import UTC, datetime

import pytest

from sandbox.delivery import retry


def test_segment_policy_allows_first_attempt_plus_nine_retries():
    assert retry.Policy(retry.SEGMENT).max_attempts == 10
    assert retry.Policy(retry.NONE).max_attempts == 1


def test_backoff_doubles_from_28_seconds_within_jitter():
    for number in range(1, 10):
        nominal = 28 * 2 ** (number - 1)
        delay = retry.backoff_seconds(number, rng=random.Random(number))
        assert nominal * 0.8 <= delay <= nominal * 1.2


def test_whole_schedule_spans_about_four_hours():
    total = sum(28 * 2 ** (n - 1) for n in range(1, 10))
    assert 3.8 * 3600 <= total <= 4.1 * 3600


def test_time_scale_divides_every_delay():
    rng_a, rng_b = random.Random(7), random.Random(7)
    real = retry.next_delay(policy=retry.Policy(), attempts_made=3, rng=rng_a)
    fast = retry.next_delay(
        policy=retry.Policy(time_scale=240), attempts_made=3, rng=rng_b
    )
    assert fast == pytest.approx(real / 240)


def test_no_delay_once_attempts_are_used_up():
    assert retry.next_delay(policy=retry.Policy(), attempts_made=10) is None
    assert retry.next_delay(policy=retry.Policy(retry.NONE), attempts_made=1) is None


def test_retry_after_wins_when_longer_on_429_and_503_only():
    policy = retry.Policy()
    rng = random.Random(1)
    assert retry.next_delay(
        policy=policy, attempts_made=1, status=429, retry_after=600, rng=rng
    ) == pytest.approx(600)
    short = retry.next_delay(
        policy=policy, attempts_made=1, status=503, retry_after=1, rng=random.Random(1)
    )
    assert 28 * 0.8 <= short <= 28 * 1.2
    ignored = retry.next_delay(
        policy=policy, attempts_made=1, status=500, retry_after=600, rng=rng
    )
    assert ignored < 600


def test_parse_retry_after_seconds_and_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry.parse_retry_after("120", now=now) == 120
    assert retry.parse_retry_after("Thu, 01 Jan 2026 12:01:00 GMT", now=now) == 60
    assert retry.parse_retry_after("soon", now=now) is None
    assert retry.parse_retry_after("-5", now=now) == 0


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _verdict(outcome, reason, retryable):
    from sandbox.delivery.webhook import Verdict

    return Verdict(outcome, reason, retryable)


def test_next_step_green_is_delivered():
    step = retry.next_step(
        verdict=_verdict("green", "processed (200)", False),
        policy=retry.Policy(),
        attempts_made=1,
        started_at=NOW,
    )
    assert (step.state, step.reason, step.next_attempt_at) == (
        "delivered",
        "processed (200)",
        None,
    )


def test_next_step_says_not_retried_for_final_outcomes():
    discarded = retry.next_step(
        verdict=_verdict(
            "red", "the endpoint says the API key is invalid (401)", False
        ),
        policy=retry.Policy(),
        attempts_made=1,
        started_at=NOW,
    )
    assert discarded.state == "discarded"
    assert (
        discarded.reason
        == "not retried: the endpoint says the API key is invalid (401)"
    )
    unsupported = retry.next_step(
        verdict=_verdict("yellow", "unsupported event type (501)", False),
        policy=retry.Policy(),
        attempts_made=1,
        started_at=NOW,
    )
    assert (unsupported.state, unsupported.reason) == (
        "unsupported",
        "not retried: unsupported event type (501)",
    )


def test_next_step_schedules_a_retry_with_its_time():
    step = retry.next_step(
        verdict=_verdict("red", "the endpoint is temporarily down (503)", True),
        policy=retry.Policy(time_scale=2),
        attempts_made=2,
        started_at=NOW,
        rng=random.Random(9),
    )
    assert step.state == "retrying"
    delay = (step.next_attempt_at - NOW).total_seconds()
    assert 56 * 0.8 / 2 <= delay <= 56 * 1.2 / 2
    assert step.reason == (
        "the endpoint is temporarily down (503); retry 2 of 9 at "
        f"{step.next_attempt_at:%H:%M:%S} UTC"
    )


def test_next_step_fails_when_exhausted_or_policy_none():
    verdict = _verdict("red", "internal error at the endpoint (500)", True)
    exhausted = retry.next_step(
        verdict=verdict, policy=retry.Policy(), attempts_made=10, started_at=NOW
    )
    assert exhausted.state == "failed"
    assert exhausted.reason.endswith("failed after 10 attempts (retries exhausted)")
    none = retry.next_step(
        verdict=verdict,
        policy=retry.Policy(retry.NONE),
        attempts_made=1,
        started_at=NOW,
    )
    assert none.state == "failed"
    assert none.reason.endswith("not retried (retry policy: none)")
