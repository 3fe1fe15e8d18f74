"""How a subscription's key and settings read on its pages, without a database."""

import pytest

from sandbox.display import SECRET_MASK, mask_secret
from sandbox.subscriptions.models import Subscription

TIMES = "\N{MULTIPLICATION SIGN}"
REAL_TIME = f"1{TIMES} (real time)"


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("", ""),
        ("k", SECRET_MASK),
        ("abcdef", SECRET_MASK),
        ("abcdefg", SECRET_MASK),
        ("abcdefgh", SECRET_MASK + "gh"),
        ("abcdefghijk", SECRET_MASK + "jk"),
        ("abcdefghijkl", SECRET_MASK + "jkl"),
        ("abcdefghijklmnop", SECRET_MASK + "mnop"),
        ("sk_live_0123456789abcdefWXYZ", SECRET_MASK + "WXYZ"),
    ],
)
def test_mask_secret_shows_at_most_a_quarter_and_at_most_four(secret, masked):
    assert mask_secret(secret) == masked


def test_mask_secret_never_tells_the_length():
    assert {mask_secret("x" * n) for n in range(1, 8)} == {SECRET_MASK}
    assert len(mask_secret("x" * 40)) == len(mask_secret("x" * 16))


def test_mask_secret_of_a_short_key_shows_none_of_it():
    for key in ("abc123", "s3cr3t", "k-1234"):
        masked = mask_secret(key)
        assert not any(character in masked for character in key), (key, masked)


def test_mask_secret_shows_the_end_of_a_long_key_only():
    key = "partner-key-1234"
    masked = mask_secret(key)
    assert masked.endswith("1234")
    assert "partner" not in masked
    assert masked.count("•") == 8


@pytest.mark.parametrize(
    ("fields", "policy", "time_scale", "dedupe"),
    [
        ({}, "Segment", REAL_TIME, "24 h"),
        (
            {"retry_policy": "none", "time_scale": 240.0, "dedupe_window_hours": 0.5},
            "None",
            f"240{TIMES}",
            "30 min",
        ),
        (
            {"time_scale": 1.5, "dedupe_window_hours": 168.0},
            "Segment",
            f"1.5{TIMES}",
            "7 d",
        ),
        ({"dedupe_enabled": False}, "Segment", REAL_TIME, "off"),
        ({"dedupe_window_hours": 36.0}, "Segment", REAL_TIME, "36 h"),
    ],
)
def test_subscription_labels_say_policy_time_scale_and_dedupe(
    fields, policy, time_scale, dedupe
):
    subscription = Subscription(name="Hook", endpoint_url="http://localhost", **fields)
    assert subscription.retry_policy_label == policy
    assert subscription.time_scale_label == time_scale
    assert subscription.dedupe_label == dedupe
