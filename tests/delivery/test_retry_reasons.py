"""A delivery's reason reads as one sentence: a transport error's own full stop,
or an endpoint message's, never runs into "; retry 3 of 9"."""

import random
import re
import string
from datetime import UTC, datetime

import pytest

from sandbox.delivery import queue, retry, transport, webhook

STARTED = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
# A mark that ends a sentence or clause straight before the clause separator.
DOUBLED = re.compile(r"[.;:,!?]\s*;")
SAMPLE_FIELDS = {
    "timeout": 5.0,
    "host": "hooks.example.com:443",
    "url": "ftp://hooks.example.com/segment",
    "detail": "Cannot connect to host hooks.example.com:443 ssl:default.",
}


def _sentences() -> dict[str, str]:
    """Every sentence the transport writes, filled in, and the engine's own."""
    sentences = {}
    for name, template in vars(transport).items():
        if name.isupper() and isinstance(template, str):
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
            sentences[name] = template.format(**{f: SAMPLE_FIELDS[f] for f in fields})
    sentences["INTERRUPTED"] = queue.INTERRUPTED
    return sentences


SENTENCES = _sentences()


def _steps(verdict: webhook.Verdict) -> list[retry.Step]:
    rng = random.Random(3)
    segment = retry.Policy()
    return [
        retry.next_step(
            verdict=verdict,
            policy=segment,
            attempts_made=3,
            started_at=STARTED,
            rng=rng,
        ),
        retry.next_step(
            verdict=verdict,
            policy=segment,
            attempts_made=10,
            started_at=STARTED,
            rng=rng,
        ),
        retry.next_step(
            verdict=verdict,
            policy=retry.Policy(retry.NONE),
            attempts_made=1,
            started_at=STARTED,
        ),
        retry.next_step(
            verdict=webhook.Verdict(verdict.outcome, verdict.reason, retryable=False),
            policy=segment,
            attempts_made=1,
            started_at=STARTED,
        ),
    ]


def test_the_transport_has_the_sentences_this_test_knows():
    assert {"TIMEOUT", "REFUSED", "DNS_FAILURE", "RESET", "INVALID_URL"} <= set(
        SENTENCES
    )
    # Each is a sentence of its own, as an attempt shows it.
    assert SENTENCES["RESET"].endswith("complete.")


@pytest.mark.parametrize("name", sorted(SENTENCES))
def test_no_transport_error_doubles_its_punctuation(name):
    verdict = webhook.classify_error(SENTENCES[name])
    for step in _steps(verdict):
        assert not DOUBLED.search(step.reason), step.reason


@pytest.mark.parametrize(
    "message", ["Try again later.", "Slow down!", "Who are you?", "Bad input;", "ok"]
)
def test_no_endpoint_message_doubles_its_punctuation(message):
    for status in (500, 503, 429, 400):
        verdict = webhook.classify_status(status, message=message)
        for step in _steps(verdict):
            assert not DOUBLED.search(step.reason), step.reason


def test_a_retried_reset_reads_as_one_sentence():
    step = retry.next_step(
        verdict=webhook.classify_error(transport.RESET),
        policy=retry.Policy(),
        attempts_made=3,
        started_at=STARTED,
        rng=random.Random(3),
    )
    assert step.reason == (
        "The endpoint closed the connection before the response was complete; "
        f"retry 3 of 9 at {step.next_attempt_at:%H:%M:%S} UTC"
    )


def test_an_exhausted_timeout_reads_as_one_sentence():
    step = retry.next_step(
        verdict=webhook.classify_error(transport.TIMEOUT.format(timeout=5.0)),
        policy=retry.Policy(),
        attempts_made=10,
        started_at=STARTED,
    )
    assert step.reason == (
        "The endpoint did not answer within 5 s, the subscription's timeout; "
        "failed after 10 attempts (retries exhausted)"
    )


def test_an_endpoint_message_keeps_its_words():
    verdict = webhook.classify_status(503, message="Down for maintenance...")
    step = retry.next_step(
        verdict=verdict, policy=retry.Policy(retry.NONE), attempts_made=1,
        started_at=STARTED,
    )  # fmt: skip
    assert step.reason == (
        "the endpoint is temporarily down (503): Down for maintenance; "
        "not retried (retry policy: none)"
    )
