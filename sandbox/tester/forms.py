"""The composer form: which subscription, which event, and the event's JSON."""

from django import forms

from sandbox import spec
from sandbox.converters import id_from
from sandbox.delivery import conditions
from sandbox.delivery.forms import duplicate_rate_field, jitter_field
from sandbox.subscriptions.selectors import subscription_get_or_none, subscription_list

SAMPLE_SELECTS = ("event_type", "source", "template")
SAMPLE_REFUSED = "Choose a valid type, source and semantic event."
WEB_SOURCE = "analytics.js"


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
    # Whether the selects must describe an event the source's library can send.
    checks_sample = True
    # Which select the user just changed, when a change asked for the sample.
    changed = forms.ChoiceField(
        choices=[("", ""), *((name, name) for name in SAMPLE_SELECTS)],
        required=False,
    )

    def clean(self):
        data = super().clean()
        changed = data.get("changed")
        if data.get("template"):
            if changed == "event_type" and data.get("event_type") != "track":
                # Choosing another type leaves the semantic event (a track) behind.
                data["template"] = ""
            else:
                # A semantic event is always a track call.
                data["event_type"] = "track"
        if self.checks_sample and "event_type" in data and "source" in data:
            _follow_the_change(data, changed)
            # What the source's library can't send (an app has no page call).
            problem = spec.sample_problem(
                data["event_type"],
                source=data["source"],
                template=data.get("template") or None,
            )
            if problem is not None:
                self.add_error("source", problem)
        return data

    def refusal(self) -> str:
        """What to tell the user when the selects describe no sample."""
        for errors in self.errors.as_data().values():
            for error in errors:
                if error.code is None:
                    return error.messages[0]
        return SAMPLE_REFUSED


def _follow_the_change(data: dict, changed: str | None) -> None:
    """A page on an app is a screen: the select the user did not touch follows."""
    if (
        data["event_type"] != "page"
        or spec.sample_problem("page", source=data["source"]) is None
    ):
        return
    if changed == "source":
        data["event_type"] = "screen"
    elif changed == "event_type":
        data["source"] = WEB_SOURCE


class SubscriptionField(forms.ModelChoiceField):
    """The subscription select; the chosen one is read with one plain statement
    (subscription_get_or_none), not through the ORM's get, on every send."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        pk = id_from(str(value))
        subscription = subscription_get_or_none(pk=pk) if pk is not None else None
        if subscription is None:
            raise forms.ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": value},
            )
        return subscription


class ComposerForm(SampleForm):
    changed = None
    # Here the selects only describe the JSON being sent, which may be any event.
    checks_sample = False
    subscription = SubscriptionField(
        queryset=subscription_list(),
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

    # Delivery conditions: the faults a real pipeline brings, on purpose.
    copies = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=conditions.MAX_COPIES,
        initial=1,
        help_text="Send this many events; each copy after the first gets a fresh "
        "messageId and timestamps.",
    )
    concurrency = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=conditions.MAX_CONCURRENCY,
        initial=1,
        help_text="Requests in flight at once.",
    )
    shuffle = forms.BooleanField(
        required=False, help_text="Segment does not guarantee order."
    )
    duplicate_rate = duplicate_rate_field(
        help_text="Share of events delivered twice with the same messageId, as "
        "at-least-once delivery does after a timeout."
    )
    jitter_ms = jitter_field(help_text="Up to this long between events.")

    field_order = ["subscription", "event_type", "source", "template", "payload"]

    def conditions(self) -> conditions.Conditions:
        """The conditions asked for; an empty field means its default."""
        data = self.cleaned_data
        defaults = conditions.Conditions()
        return conditions.Conditions(
            copies=data["copies"] or defaults.copies,
            concurrency=data["concurrency"] or defaults.concurrency,
            shuffle=data["shuffle"],
            duplicate_rate=data["duplicate_rate"] or defaults.duplicate_rate,
            jitter_ms=data["jitter_ms"] or defaults.jitter_ms,
        )

    def clean_payload(self):
        event, error = spec.parse_event_json(self.cleaned_data["payload"])
        if error is not None:
            raise forms.ValidationError(error.message, code="invalid_json")
        self.event = event
        return self.cleaned_data["payload"]
