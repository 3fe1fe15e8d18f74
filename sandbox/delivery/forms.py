"""Forms for browsing deliveries, and the delivery-condition fields the
composer and a suite run share."""

from django import forms

from sandbox.delivery import conditions
from sandbox.delivery.models import Outcome, State
from sandbox.delivery.selectors import HistoryFilters
from sandbox.spec import EVENT_TYPES
from sandbox.subscriptions.models import Subscription


class HistoryFilterForm(forms.Form):
    subscription = forms.ModelChoiceField(
        queryset=Subscription.objects.all(), required=False, empty_label="Any"
    )
    type = forms.ChoiceField(
        choices=[("", "Any"), *((t, t) for t in EVENT_TYPES)], required=False
    )
    event = forms.CharField(
        required=False,
        label="Event name",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "any part, any case"}
        ),
    )
    outcome = forms.ChoiceField(choices=[("", "Any"), *Outcome.choices], required=False)
    state = forms.ChoiceField(choices=[("", "Any"), *State.choices], required=False)
    duplicates = forms.BooleanField(required=False, label="Injected duplicates only")
    status = forms.IntegerField(
        required=False, min_value=100, max_value=599, label="Status code"
    )
    since = forms.DateTimeField(
        required=False,
        label="From",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = forms.DateTimeField(
        required=False,
        label="To",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    q = forms.CharField(
        required=False,
        label="messageId, userId or anonymousId",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "start of an id"}
        ),
    )
    before = forms.IntegerField(required=False, widget=forms.HiddenInput)

    # As the filter row shows them: the two searches side by side, the checkbox last.
    field_order = [
        "subscription",
        "type",
        "event",
        "q",
        "outcome",
        "state",
        "status",
        "since",
        "until",
        "duplicates",
    ]

    def filters(self) -> HistoryFilters:
        data = self.cleaned_data
        subscription = data.get("subscription")
        return HistoryFilters(
            subscription_id=subscription.pk if subscription else None,
            event_type=data.get("type") or "",
            event_name=(data.get("event") or "").strip(),
            outcome=data.get("outcome") or "",
            state=data.get("state") or "",
            injected_duplicates=bool(data.get("duplicates")),
            status=data.get("status"),
            since=data.get("since"),
            until=data.get("until"),
            search=(data.get("q") or "").strip(),
        )


def duplicate_rate_field(*, help_text: str) -> forms.FloatField:
    range_error = conditions.DUPLICATE_RATE_RANGE
    return forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        initial=0,
        label="Duplicate rate",
        error_messages={"min_value": range_error, "max_value": range_error},
        help_text=help_text,
    )


def jitter_field(*, help_text: str) -> forms.IntegerField:
    return forms.IntegerField(
        required=False,
        min_value=0,
        max_value=conditions.MAX_JITTER_MS,
        initial=0,
        label="Jitter (ms)",
        error_messages={
            "min_value": conditions.JITTER_RANGE,
            "max_value": conditions.JITTER_RANGE,
        },
        help_text=help_text,
    )
