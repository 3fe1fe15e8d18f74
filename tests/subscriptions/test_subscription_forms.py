"""Tests for the subscription form: custom settings JSON, timeout and API key."""

import pytest

from sandbox.display import KEEP_API_KEY_HELP
from sandbox.subscriptions.forms import (
    CUSTOM_SETTINGS_INVALID_JSON_ERROR,
    NEW_KEY_AND_CLEAR_ERROR,
    SubscriptionForm,
)
from sandbox.subscriptions.models import (
    CUSTOM_SETTINGS_API_KEY_ERROR,
    CUSTOM_SETTINGS_NOT_OBJECT_ERROR,
    TIMEOUT_RANGE_ERROR,
)
from tests.factories import subscription_form_data


def bound_form(**data) -> SubscriptionForm:
    data = subscription_form_data(**data)
    return SubscriptionForm(data)


@pytest.mark.django_db
def test_subscription_form_parses_settings_object():
    form = bound_form(custom_settings='{\n  "region": "eu",\n  "retries": 3\n}')
    assert form.is_valid(), form.errors
    assert form.cleaned_data["custom_settings"] == {"region": "eu", "retries": 3}


@pytest.mark.django_db
def test_subscription_form_treats_empty_settings_as_empty_object():
    form = bound_form(custom_settings="  ")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["custom_settings"] == {}


@pytest.mark.django_db
def test_subscription_form_reports_invalid_json_line_and_column():
    form = bound_form(custom_settings='{\n  "region": "eu",\n  "retries": \n}')
    assert not form.is_valid()
    expected = CUSTOM_SETTINGS_INVALID_JSON_ERROR.format(
        problem="Expecting value", line=4, column=1
    )
    assert (
        expected
        == "Custom settings are not valid JSON: Expecting value (line 4, column 1)"
    )
    assert form.errors["custom_settings"] == [expected]


@pytest.mark.django_db
def test_subscription_form_keeps_invalid_json_as_typed():
    form = bound_form(custom_settings='{"region": eu}')
    assert not form.is_valid()
    assert "{&quot;region&quot;: eu}</textarea>" in str(form["custom_settings"])


@pytest.mark.django_db
@pytest.mark.parametrize("custom_settings", ["[]", '["region"]', '"eu"', "3", "null"])
def test_subscription_form_refuses_non_object_settings(custom_settings):
    form = bound_form(custom_settings=custom_settings)
    assert not form.is_valid()
    assert form.errors["custom_settings"] == [CUSTOM_SETTINGS_NOT_OBJECT_ERROR]


@pytest.mark.django_db
def test_subscription_form_refuses_api_key_setting():
    form = bound_form(custom_settings='{"apiKey": "abc"}')
    assert not form.is_valid()
    assert form.errors["custom_settings"] == [CUSTOM_SETTINGS_API_KEY_ERROR]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("timeout_seconds", "valid"),
    [("0.1", True), ("60", True), ("0.05", False), ("60.5", False), ("0", False)],
)
def test_subscription_form_bounds_timeout(timeout_seconds, valid):
    form = bound_form(timeout_seconds=timeout_seconds)
    assert form.is_valid() is valid
    if not valid:
        assert form.errors["timeout_seconds"] == [TIMEOUT_RANGE_ERROR]


def test_subscription_form_defaults_timeout_to_five_seconds():
    form = SubscriptionForm()
    assert form["timeout_seconds"].value() == 5.0
    assert (
        "Segment's webhook timeout is 5 s" in form.fields["timeout_seconds"].help_text
    )


def test_subscription_form_hides_api_key_input():
    html = str(SubscriptionForm()["api_key"])
    assert 'type="password"' in html


@pytest.mark.django_db
def test_subscription_form_never_renders_a_typed_key():
    form = bound_form(api_key="typed-secret-key", timeout_seconds="61")
    assert not form.is_valid()
    assert "typed-secret-key" not in str(form["api_key"])


@pytest.mark.django_db
def test_subscription_form_create_allows_a_blank_key():
    form = bound_form(api_key="")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["api_key"] == ""
    assert "clear_api_key" not in form.fields


@pytest.mark.django_db
def test_subscription_form_edit_keeps_stored_key_when_blank(subscription, api_key):
    data = bound_form(api_key="").data
    form = SubscriptionForm(data, instance=subscription)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["api_key"] == api_key
    assert "clear_api_key" not in form.cleaned_data


@pytest.mark.django_db
def test_subscription_form_edit_takes_a_new_key(subscription):
    data = bound_form(api_key="replacement-key").data
    form = SubscriptionForm(data, instance=subscription)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["api_key"] == "replacement-key"


@pytest.mark.django_db
def test_subscription_form_edit_clears_the_key(subscription):
    data = bound_form(api_key="", clear_api_key="on").data
    form = SubscriptionForm(data, instance=subscription)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["api_key"] == ""


@pytest.mark.django_db
def test_subscription_form_edit_refuses_new_key_and_clear(subscription):
    data = bound_form(api_key="replacement-key", clear_api_key="on").data
    form = SubscriptionForm(data, instance=subscription)
    assert not form.is_valid()
    assert form.errors["api_key"] == [NEW_KEY_AND_CLEAR_ERROR]


@pytest.mark.django_db
def test_subscription_form_edit_says_which_key_is_kept(subscription):
    form = SubscriptionForm(instance=subscription)
    assert KEEP_API_KEY_HELP.format(masked=subscription.masked_api_key) in (
        form.fields["api_key"].help_text
    )
    names = list(form.fields)
    assert names[names.index("api_key") + 1] == "clear_api_key"


@pytest.mark.django_db
def test_subscription_form_refuses_absurdly_nested_settings_clearly():
    form = bound_form(custom_settings="[" * 100_000 + "]" * 100_000)
    assert not form.is_valid()
    assert form.errors["custom_settings"][0].startswith(
        "Custom settings are not valid JSON: "
    )
