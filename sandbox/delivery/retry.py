"""Segment's retry schedule (pure): whether, and when, to try a delivery again."""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from sandbox.delivery.webhook import GREEN, YELLOW, Verdict

SEGMENT = "segment"
NONE = "none"
POLICIES = (SEGMENT, NONE)

# segment-reference.md section 9: the first attempt plus up to nine retries, base 28 s
# doubling, each delay multiplied by a random factor in [0.8, 1.2]: about four hours.
MAX_RETRIES = 9
BASE_DELAY_SECONDS = 28.0
JITTER = (0.8, 1.2)
RETRY_AFTER_STATUSES = frozenset({429, 503})
# The longest single wait of Segment's schedule (the last backoff at its highest
# jitter): a Retry-After beyond it is held to it, as no retry waits longer.
LONGEST_WAIT_SECONDS = BASE_DELAY_SECONDS * 2 ** (MAX_RETRIES - 1) * JITTER[1]
RETRY_AFTER_CAPPED = (
    "the endpoint asked for Retry-After {asked}; held to {cap}, the longest wait "
    "in Segment's schedule"
)


@dataclass(frozen=True)
class Policy:
    name: str = SEGMENT
    time_scale: float = 1.0

    @property
    def max_attempts(self) -> int:
        return 1 + (MAX_RETRIES if self.name == SEGMENT else 0)


def backoff_seconds(retry_number: int, *, rng: random.Random | None = None) -> float:
    """Unscaled delay before retry `retry_number` (1 for the first retry)."""
    factor = (rng or random).uniform(*JITTER)
    return BASE_DELAY_SECONDS * 2 ** (retry_number - 1) * factor


def parse_retry_after(value: str, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: a number or an HTTP date."""
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
            seconds = (moment - now).total_seconds()
        except (TypeError, ValueError, OverflowError):
            return None
    if seconds != seconds:
        # NaN is no number of seconds.
        return None
    return max(seconds, 0.0)


def next_delay(
    *,
    policy: Policy,
    attempts_made: int,
    status: int | None = None,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt after a retryable failure, or None when done."""
    if attempts_made >= policy.max_attempts:
        return None
    delay = backoff_seconds(attempts_made, rng=rng)
    if retry_after is not None and status in RETRY_AFTER_STATUSES:
        delay = max(delay, min(retry_after, LONGEST_WAIT_SECONDS))
    return delay / max(policy.time_scale, 1e-9)


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "forever"
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 1e9:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.3g} s"


def _clause(reason: str) -> str:
    """A reason as the clause of a longer one: a transport error is a sentence
    ("...before the response was complete.") and an endpoint's message may end
    in any punctuation, so its closing marks go before "; retry 3 of 9" follows."""
    return reason.rstrip().rstrip(".;:,!?").rstrip()


# States a delivery moves to (the names of sandbox.delivery.models.State).
DELIVERED = "delivered"
UNSUPPORTED = "unsupported"
DISCARDED = "discarded"
RETRYING = "retrying"
FAILED = "failed"


@dataclass(frozen=True)
class Step:
    """What follows an attempt: the delivery's state, when to try again, and why."""

    state: str
    reason: str
    next_attempt_at: datetime | None = None


def next_step(
    *,
    verdict: Verdict,
    policy: Policy,
    attempts_made: int,
    started_at: datetime,
    status: int | None = None,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> Step:
    """Segment's reading of an attempt: done, given up, or retried (and when)."""
    if verdict.outcome == GREEN:
        return Step(DELIVERED, verdict.reason)
    reason = _clause(verdict.reason)
    if verdict.outcome == YELLOW:
        return Step(UNSUPPORTED, f"not retried: {reason}")
    if not verdict.retryable:
        return Step(DISCARDED, f"not retried: {reason}")
    if policy.name == NONE:
        return Step(FAILED, f"{reason}; not retried (retry policy: none)")
    delay = next_delay(
        policy=policy,
        attempts_made=attempts_made,
        status=status,
        retry_after=retry_after,
        rng=rng,
    )
    if delay is None:
        return Step(
            FAILED,
            f"{reason}; failed after {attempts_made} attempts (retries exhausted)",
        )
    moment = started_at + timedelta(seconds=delay)
    if (
        retry_after is not None
        and status in RETRY_AFTER_STATUSES
        and retry_after > LONGEST_WAIT_SECONDS
    ):
        capped = RETRY_AFTER_CAPPED.format(
            asked=_duration(retry_after), cap=_duration(LONGEST_WAIT_SECONDS)
        )
        reason = f"{reason}; {capped}"
    return Step(
        RETRYING,
        f"{reason}; retry {attempts_made} of {MAX_RETRIES} at {moment:%H:%M:%S} UTC",
        moment,
    )
