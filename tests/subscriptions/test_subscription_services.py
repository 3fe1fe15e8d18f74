"""Tests for the subscription services, selectors and model validation."""

import math

import pytest
from django.core.exceptions import ValidationError

from sandbox.display import mask_secret
from sandbox.spec.endpoint_url import (
    ENDPOINT_URL_HOST_ERROR,
    ENDPOINT_URL_PORT_ERROR,
    ENDPOINT_URL_SCHEME_ERROR,
    ENDPOINT_URL_WHITESPACE_ERROR,
)
from sandbox.subscriptions.models import (
    CUSTOM_SETTINGS_API_KEY_ERROR,
    CUSTOM_SETTINGS_NOT_OBJECT_ERROR,
    ENDPOINT_URL_REQUIRED_ERROR,
    NAME_TAKEN_ERROR,
    TIMEOUT_RANGE_ERROR,
    Subscription,
)
from sandbox.subscriptions.selectors import (
    subscription_first_enabled,
    subscription_get,
    subscription_get_by_name,
    subscription_list,
)
from sandbox.subscriptions.services import (
    subscription_create,
    subscription_delete,
    subscription_ensure,
    subscription_update,
)
from tests.factories import make_subscription


def create_errors(**fields) -> dict[str, list[str]]:
    fields = {"name": "Hook", "endpoint_url": "http://localhost:3000", **fields}
    with pytest.raises(ValidationError) as raised:
        subscription_create(**fields)
    return raised.value.message_dict


@pytest.mark.django_db
def test_subscription_create_uses_segment_defaults():
    subscription = subscription_create(name="Hook", endpoint_url="https://example.com")
    assert subscription.timeout_seconds == 5.0
    assert subscription.enabled is True
    assert subscription.custom_settings == {}
    assert subscription.api_key == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    "endpoint_url",
    [
        "http://localhost:3000/segment",
        "http://127.0.0.1:8000/mock/in",
        "http://[::1]:3000/",
        "http://receiver:8080/hook",
        "HTTPS://partner.example.com/segment?token=abc",
    ],
)
def test_subscription_create_allows_any_http_url(endpoint_url):
    subscription = subscription_create(name="Hook", endpoint_url=endpoint_url)
    assert subscription.endpoint_url == endpoint_url


@pytest.mark.django_db
@pytest.mark.parametrize(
    "endpoint_url",
    ["ftp://example.com/in", "file:///etc/passwd", "localhost:3000/segment", ""],
)
def test_subscription_create_refuses_non_http_scheme(endpoint_url):
    errors = create_errors(endpoint_url=endpoint_url)
    expected = ENDPOINT_URL_SCHEME_ERROR
    if not endpoint_url:
        # Blank is allowed for a function only.
        expected = ENDPOINT_URL_REQUIRED_ERROR
    assert errors == {"endpoint_url": [expected]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("endpoint_url", "message"),
    [
        ("http://", ENDPOINT_URL_HOST_ERROR),
        ("https:///segment", ENDPOINT_URL_HOST_ERROR),
        ("http://[::1/segment", ENDPOINT_URL_HOST_ERROR),
        ("http://localhost:99999/", ENDPOINT_URL_PORT_ERROR),
        ("http://localhost:port/", ENDPOINT_URL_PORT_ERROR),
        ("http://localhost:0/", ENDPOINT_URL_PORT_ERROR),
        ("http://localhost/my hook", ENDPOINT_URL_WHITESPACE_ERROR),
    ],
)
def test_subscription_create_refuses_malformed_url(endpoint_url, message):
    assert create_errors(endpoint_url=endpoint_url) == {"endpoint_url": [message]}


@pytest.mark.django_db
@pytest.mark.parametrize("timeout_seconds", [0.0, 0.09, 60.01, -1.0, math.nan])
def test_subscription_create_refuses_timeout_out_of_bounds(timeout_seconds):
    errors = create_errors(timeout_seconds=timeout_seconds)
    assert errors == {"timeout_seconds": [TIMEOUT_RANGE_ERROR]}


@pytest.mark.django_db
@pytest.mark.parametrize("timeout_seconds", [0.1, 5.0, 60.0])
def test_subscription_create_accepts_timeout_bounds(timeout_seconds):
    subscription = subscription_create(
        name="Hook", endpoint_url="http://localhost", timeout_seconds=timeout_seconds
    )
    assert subscription.timeout_seconds == timeout_seconds


@pytest.mark.django_db
@pytest.mark.parametrize("custom_settings", [[], ["a"], "region=eu", 3])
def test_subscription_create_refuses_non_object_settings(custom_settings):
    errors = create_errors(custom_settings=custom_settings)
    assert errors == {"custom_settings": [CUSTOM_SETTINGS_NOT_OBJECT_ERROR]}


@pytest.mark.django_db
def test_subscription_create_refuses_api_key_setting():
    errors = create_errors(custom_settings={"apiKey": "abc", "region": "eu"})
    assert errors == {"custom_settings": [CUSTOM_SETTINGS_API_KEY_ERROR]}


@pytest.mark.django_db
def test_subscription_create_refuses_duplicate_name(subscription):
    assert create_errors(name=subscription.name) == {"name": [NAME_TAKEN_ERROR]}


@pytest.mark.django_db
def test_subscription_update_saves_fields(subscription):
    subscription_update(
        subscription=subscription,
        endpoint_url="https://partner.example.com/in",
        enabled=False,
        custom_settings={},
    )
    stored = subscription_get(pk=subscription.pk)
    assert stored.endpoint_url == "https://partner.example.com/in"
    assert stored.enabled is False
    assert stored.custom_settings == {}
    assert stored.timeout_seconds == 2.5


@pytest.mark.django_db
def test_subscription_update_validates(subscription):
    with pytest.raises(ValidationError) as raised:
        subscription_update(subscription=subscription, endpoint_url="ws://localhost")
    assert raised.value.message_dict == {"endpoint_url": [ENDPOINT_URL_SCHEME_ERROR]}
    assert subscription_get(pk=subscription.pk).endpoint_url.startswith("http://")


@pytest.mark.django_db
def test_subscription_update_refuses_unknown_field(subscription):
    with pytest.raises(TypeError):
        subscription_update(subscription=subscription, created_at=None)


@pytest.mark.django_db
def test_subscription_delete_removes_it(subscription):
    subscription_delete(subscription=subscription)
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_subscription_ensure_is_idempotent():
    first = subscription_ensure(
        name="Demo", endpoint_url="http://127.0.0.1:8000/mock/in", api_key="demo-key"
    )
    subscription_update(subscription=first, endpoint_url="http://localhost:4000/")
    second = subscription_ensure(
        name="Demo", endpoint_url="http://127.0.0.1:8000/mock/in", api_key="other"
    )
    assert second.pk == first.pk
    assert second.endpoint_url == "http://localhost:4000/"
    assert second.api_key == "demo-key"
    assert Subscription.objects.count() == 1


@pytest.mark.django_db
def test_subscription_list_filters_enabled(subscription):
    subscription_create(name="Off", endpoint_url="http://localhost", enabled=False)
    assert [s.name for s in subscription_list()] == ["Acme webhook", "Off"]
    assert [s.name for s in subscription_list(enabled_only=True)] == ["Acme webhook"]


@pytest.mark.django_db
def test_subscription_get_by_name_raises_when_missing(subscription):
    assert subscription_get_by_name(name="Acme webhook").pk == subscription.pk
    with pytest.raises(Subscription.DoesNotExist):
        subscription_get_by_name(name="Nope")


def test_mask_secret_shows_only_last_four():
    assert mask_secret("segment-test-key-WXYZ") == "••••••••WXYZ"
    assert mask_secret("abcd") == "••••••••"
    assert mask_secret("") == ""


@pytest.mark.django_db
def test_subscription_first_enabled_is_the_oldest_enabled():
    assert subscription_first_enabled() is None
    make_subscription(name="B disabled", enabled=False)
    oldest = make_subscription(name="Z oldest enabled")
    make_subscription(name="A newer")
    assert subscription_first_enabled() == oldest
