"""The subscription form: custom settings are edited as a JSON object."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput

from sandbox.display import KEEP_API_KEY_HELP, indent_json, mask_secret
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
NEW_KEY_AND_CLEAR_ERROR = "Either type a new API key or clear it, not both."


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

    def bound_data(self, data: Any, initial: Any) -> Any:
        # Re-shown as typed whenever it was refused: Django's own re-parse would
        # accept NaN or a lone surrogate and render what no page can encode.
        if self.disabled:
            return initial
        if data is None:
            return None
        parsed, error = parse_json(data) if data.strip() else ({}, None)
        return InvalidJSONInput(data) if error is not None else parsed

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        return indent_json(value)


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
            # The key is never sent back to the browser; blank on edit keeps it.
            "api_key": forms.PasswordInput(
                attrs={"autocomplete": "off", "spellcheck": "false"}
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stored_api_key = self.instance.api_key if self.instance.pk else ""
        if not self.stored_api_key:
            return
        api_key = self.fields["api_key"]
        api_key.help_text = (
            f"{api_key.help_text} "
            f"{KEEP_API_KEY_HELP.format(masked=mask_secret(self.stored_api_key))}"
        )
        # Placed right under the key it clears.
        fields = list(self.fields.items())
        at = [name for name, _ in fields].index("api_key") + 1
        clear = forms.BooleanField(required=False, label="Clear the API key")
        self.fields = dict([*fields[:at], ("clear_api_key", clear), *fields[at:]])

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        if not self.stored_api_key:
            return cleaned_data
        clear = cleaned_data.pop("clear_api_key", False)
        typed = cleaned_data.get("api_key")
        if clear and typed:
            self.add_error("api_key", NEW_KEY_AND_CLEAR_ERROR)
        elif clear:
            cleaned_data["api_key"] = ""
        elif not typed and "api_key" in cleaned_data:
            cleaned_data["api_key"] = self.stored_api_key
        return cleaned_data
