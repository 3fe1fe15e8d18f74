"""The subscription form: custom settings are edited as a JSON object, and the
fields of the other kind (a webhook's URL, a function's limits) are kept as
stored."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput

from sandbox.display import KEEP_API_KEY_HELP, indent_json, mask_secret
from sandbox.spec import parse_json
from sandbox.subscriptions.models import (
    EDITABLE_FIELDS,
    FUNCTION_FIELDS,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    WEBHOOK_FIELDS,
    Subscription,
    validate_custom_settings,
)

CUSTOM_SETTINGS_INVALID_JSON_ERROR = (
    "Custom settings are not valid JSON: {problem} (line {line}, column {column})"
)
NEW_KEY_AND_CLEAR_ERROR = "Either type a new API key or clear it, not both."
FUNCTION_FIELD_REQUIRED_ERROR = "A function subscription needs this."
# The one timeout field reads as Segment words it for each kind.
TIMEOUT_LABELS = {
    Subscription.Kind.WEBHOOK: "Timeout (seconds)",
    Subscription.Kind.FUNCTION: "Time limit (seconds)",
}
TIMEOUT_HELP = {
    Subscription.Kind.WEBHOOK: (
        "From 0.1 to 60 seconds. Segment's webhook timeout is 5 s."
    ),
    Subscription.Kind.FUNCTION: (
        "From 0.1 to 60 seconds. Segment stops a function after 5 s and retries "
        "it as a timeout."
    ),
}
# Which fields belong to one kind only; the page shows them by kind.
KIND_ONLY_FIELDS = {
    **dict.fromkeys(WEBHOOK_FIELDS, Subscription.Kind.WEBHOOK),
    **dict.fromkeys(FUNCTION_FIELDS, Subscription.Kind.FUNCTION),
}


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
            "kind": forms.RadioSelect,
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
            "memory_mb": forms.NumberInput(attrs={"min": 16, "max": 1024}),
            "batch_size": forms.NumberInput(attrs={"min": 1, "max": 400}),
            "batch_window_seconds": forms.NumberInput(
                attrs={"min": 0.1, "max": 60, "step": 0.1}
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
            "timeout_seconds": TIMEOUT_HELP[Subscription.Kind.WEBHOOK],
            "kind": (
                "A webhook receives each event as an HTTP POST; a function runs "
                "your JavaScript for it here. You write the function's code on its "
                "code page, after saving."
            ),
            "memory_mb": "From 16 to 1024 MB; 128 MB unless you change it.",
            "batch_size": (
                "From 1 to 400 events, for code that defines onBatch. Segment's "
                "destination functions batch up to 20."
            ),
            "batch_window_seconds": (
                "From 0.1 to 60 seconds: a batch goes when it is full or this long "
                "after its first event. Segment's destination functions wait up to "
                "10 s."
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
        # Missing from a post (the page disables the other kind's fields), each
        # keeps what is stored; clean() says when a function's field is blank.
        self.fields["kind"].required = False
        for name, kind in KIND_ONLY_FIELDS.items():
            self.fields[name].required = False
            self.fields[name].kind_only = kind
        shown = self.shown_kind
        self.fields["timeout_seconds"].label = TIMEOUT_LABELS[shown]
        self.fields["timeout_seconds"].help_text = TIMEOUT_HELP[shown]
        self.fields["timeout_seconds"].texts_by_kind = {
            kind: (TIMEOUT_LABELS[kind], TIMEOUT_HELP[kind]) for kind in TIMEOUT_LABELS
        }
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

    @property
    def shown_kind(self) -> str:
        """The kind the page shows: as posted when it is one, else as stored."""
        posted = self.data.get("kind") if self.is_bound else None
        if posted in Subscription.Kind.values:
            return posted
        return self.instance.kind or Subscription.Kind.WEBHOOK

    def clean_kind(self) -> str:
        # An older form, or a script, that posts no kind edits what is stored.
        return self.cleaned_data["kind"] or self.instance.kind

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        kind = cleaned_data.get("kind")
        for name, only_for in KIND_ONLY_FIELDS.items():
            if kind is not None and kind != only_for:
                # The other kind's field: whatever was typed in it is neither
                # checked nor saved, so switching back finds it as it was.
                self.errors.pop(name, None)
                cleaned_data[name] = getattr(self.instance, name)
            elif name in self.errors:
                continue
            elif name not in self.data:
                cleaned_data[name] = getattr(self.instance, name)
            elif cleaned_data.get(name) is None and name in FUNCTION_FIELDS:
                self.add_error(name, FUNCTION_FIELD_REQUIRED_ERROR)
        return self._clean_api_key(cleaned_data)

    def _clean_api_key(self, cleaned_data: dict[str, Any]) -> dict[str, Any]:
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
