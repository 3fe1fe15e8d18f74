"""Fixtures for the subscription tests."""

import pytest

from sandbox.subscriptions.models import Subscription
from sandbox.subscriptions.services import subscription_create


@pytest.fixture
def api_key() -> str:
    return "segment-test-key-WXYZ"


@pytest.fixture
def subscription(db, api_key) -> Subscription:
    return subscription_create(
        name="Acme webhook",
        endpoint_url="http://localhost:3000/segment",
        api_key=api_key,
        custom_settings={"region": "eu", "sampleRate": 0.5},
        timeout_seconds=2.5,
    )
