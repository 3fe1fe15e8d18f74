"""The composer form: which subscription, which event, and the event's JSON."""

from django import forms

from sandbox import spec
from sandbox.subscriptions.models import Subscription


def template_choices() -> list:
    return [
        ("", "No template"),
        *(
            (category, [(name, name) for name in names])
            for category, names in spec.templates_by_category()
        ),
    ]


class SampleForm(forms.Form):
    """What "Generate sample event" needs."""

    event_type = forms.ChoiceField(
        label="Type", choices=[(t, t) for t in spec.EVENT_TYPES], initial="track"
    )
    source = forms.ChoiceField(
        choices=list(spec.SOURCES.items()), initial="analytics.js"
    )
    template = forms.ChoiceField(
        label="Semantic event", choices=template_choices, required=False
    )

    def clean(self):
        data = super().clean()
        # A semantic event is always a track call.
        if data.get("template"):
            data["event_type"] = "track"
        return data


class ComposerForm(SampleForm):
    subscription = forms.ModelChoiceField(
        queryset=Subscription.objects.all(),
        empty_label=None,
        error_messages={"required": "Choose a subscription to send to."},
    )
    payload = forms.CharField(
        label="Event JSON",
        strip=False,
        widget=forms.Textarea(
            attrs={"spellcheck": "false", "data-json-editor": "1", "rows": 24}
        ),
        error_messages={"required": "Write or generate an event first."},
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    field_order = ["subscription", "event_type", "source", "template", "payload"]

    def clean_payload(self):
        event, error = spec.parse_event_json(self.cleaned_data["payload"])
        if error is not None:
            raise forms.ValidationError(error.message, code="invalid_json")
        self.event = event
        return self.cleaned_data["payload"]
