"""The form that configures a mock endpoint's key and behaviour."""

from django import forms

from sandbox.display import KEEP_API_KEY_HELP
from sandbox.mock.models import UNKNOWN_EVENT_TYPES, MockEndpoint
from sandbox.spec import EVENT_TYPES


class MockEndpointForm(forms.ModelForm):
    unsupported_types = forms.MultipleChoiceField(
        choices=[(event_type, event_type) for event_type in EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Answer 501 to",
        help_text="Event types this endpoint says it does not support.",
        error_messages={
            "invalid_choice": UNKNOWN_EVENT_TYPES.format(choices=", ".join(EVENT_TYPES))
        },
    )

    class Meta:
        model = MockEndpoint
        fields = [
            "name",
            "slug",
            "api_key",
            "status_code",
            "response_body",
            "delay_ms",
            "fail_first_n",
            "fail_status",
            "unsupported_types",
        ]
        labels = {
            "slug": "Slug",
            "api_key": "API key",
            "status_code": "Status code",
            "response_body": "Response body",
            "delay_ms": "Delay (ms)",
            "fail_first_n": "Fail the first N attempts",
            "fail_status": "Failure status",
        }
        help_texts = {
            "slug": "The endpoint's address is /mock/<slug>/.",
            "api_key": "Deliveries must carry Basic auth of this key plus a colon, "
            "as Segment sends it.",
            "status_code": "Answered once the failing attempts are used up.",
            "response_body": 'JSON. Leave blank for {"success": true} on 2xx and '
            '{"message": …} otherwise.',
            "delay_ms": "Wait this long before answering (0 to 30000).",
            "fail_first_n": "Per messageId: these attempts get the failure status, "
            "later ones the status code above.",
            "fail_status": "Sent for the failing attempts (400 to 599).",
        }
        widgets = {
            # The key is never sent back to the browser; blank on edit keeps it.
            "api_key": forms.PasswordInput(attrs={"autocomplete": "off"}),
            "response_body": forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Subscriptions point at /mock/<slug>/; renaming would break them.
            self.fields["slug"].disabled = True
            self.fields["slug"].help_text = "Fixed once created: subscriptions use it."
            # Every mock endpoint has a key, so blank can only mean "keep it".
            api_key = self.fields["api_key"]
            api_key.required = False
            api_key.help_text = (
                f"{api_key.help_text} "
                f"{KEEP_API_KEY_HELP.format(masked=self.instance.masked_api_key)}"
            )

    def clean_api_key(self) -> str:
        return self.cleaned_data["api_key"] or self.instance.api_key
