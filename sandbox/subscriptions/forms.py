"""The subscription form: custom settings are edited as a JSON object."""

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput

from sandbox.spec import parse_json
from sandbox.subscriptions.models import (
    EDITABLE_FIELDS,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    Subscription,
    validate_custom_settings,
)

CUSTOM_SETTINGS_INVALID_JSON_ERROR = (
    "Custom settings are not valid JSON: {problem} (line {line}, column {column})"
)


class CustomSettingsField(forms.JSONField):
    """A JSON textarea whose parse errors say where the problem is."""

    def to_python(self, value: Any) -> Any:
        if self.disabled:
            return value
        # An empty box means "no custom settings", not a missing value.
        if value is None or not value.strip():
            return {}
        parsed, error = parse_json(value)
        if error is not None:
            raise ValidationError(
                CUSTOM_SETTINGS_INVALID_JSON_ERROR.format(
                    problem=error.reason, line=error.line, column=error.column
                ),
                code="invalid",
            )
        return parsed

    def validate(self, value: Any) -> None:
        # Checked here as well as in Subscription.clean() so a JSON null gets this
        # message rather than Django's generic "cannot be null".
        super().validate(value)
        validate_custom_settings(value)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2)


class SubscriptionForm(forms.ModelForm):
    custom_settings = CustomSettingsField(
        required=False,
        initial=dict,
        label="Custom settings",
        help_text=(
            'A JSON object of key → value pairs, for example {"region": "eu"}. '
            "Segment sends them in the X-Segment-Settings header."
        ),
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
    )

    class Meta:
        model = Subscription
        fields = list(EDITABLE_FIELDS)
        widgets = {
            "endpoint_url": forms.URLInput(
                attrs={"placeholder": "http://localhost:3000/segment"}
            ),
            # render_value keeps the stored key on edit when the field is left alone.
            "api_key": forms.PasswordInput(
                render_value=True, attrs={"autocomplete": "off", "spellcheck": "false"}
            ),
            "timeout_seconds": forms.NumberInput(
                attrs={
                    "min": MIN_TIMEOUT_SECONDS,
                    "max": MAX_TIMEOUT_SECONDS,
                    "step": MIN_TIMEOUT_SECONDS,
                }
            ),
        }
        help_texts = {
            "endpoint_url": (
                "Where events are POSTed. Any http:// or https:// URL, "
                "including http://localhost."
            ),
            "api_key": (
                "Sent in the Authorization header as HTTP Basic auth. "
                "Masked on every page unless you reveal it."
            ),
            "timeout_seconds": (
                "From 0.1 to 60 seconds. Segment's webhook timeout is 5 s."
            ),
            "retry_policy": (
                "Segment retries timeouts, connection errors, 5xx (but 501, 505 and "
                "511) and 408, 410, 429 and 460, honouring Retry-After."
            ),
            "dedupe_window_hours": (
                "A second event with the same messageId inside this window is "
                "recorded as deduplicated and not sent. Segment's is at least 24 h."
            ),
            "enabled": "Disabled subscriptions receive no events.",
        }
