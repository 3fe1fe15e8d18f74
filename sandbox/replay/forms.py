"""The replay page's form: where the events come from, where they go, how fast."""

from django import forms

from sandbox.replay import services
from sandbox.sources.models import Source
from sandbox.spec import EVENT_TYPES
from sandbox.subscriptions.models import Subscription


class ReadinessForm(forms.Form):
    subscription = forms.ModelChoiceField(
        queryset=Subscription.objects.filter(enabled=True).order_by("name"),
        label="Subscription",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "readiness-%s")
        super().__init__(*args, **kwargs)


NO_FILE = "Choose a file to replay (JSON Lines or a JSON array, gzipped or not)."
UNTIL_BEFORE_SINCE = (
    "“Until” comes before “From”: no event lies between them. Choose an end "
    "after the start."
)


class ReplayForm(forms.Form):
    source = forms.ChoiceField(
        choices=[
            ("file", "A file"),
            ("history", "Past deliveries"),
            ("ingested", "Events your sources received"),
        ],
        initial="file",
        widget=forms.RadioSelect,
    )
    file = forms.FileField(
        required=False,
        help_text="JSON Lines or a JSON array of Segment events, gzipped or not.",
    )
    subscription = forms.ModelChoiceField(
        queryset=Subscription.objects.filter(enabled=True).order_by("name"),
        label="Send to",
        help_text="Failed events are retried by the subscription's retry policy "
        "(Segment's schedule, or none): set it on the subscription.",
    )
    rate = forms.FloatField(
        required=False,
        min_value=services.MIN_RATE,
        label="Rate (events/s)",
        help_text="Empty: as fast as the concurrency allows.",
    )
    concurrency = forms.IntegerField(
        min_value=1, max_value=services.MAX_CONCURRENCY, initial=10
    )
    shuffle = forms.BooleanField(
        required=False,
        label="Shuffle (the whole source, in a random order)",
    )
    new_message_ids = forms.BooleanField(
        required=False,
        label="New messageIds (timestamps are kept)",
    )
    # A date picker, as on the history page; the sandbox's times are UTC.
    since = forms.DateTimeField(
        required=False,
        label="From (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = forms.DateTimeField(
        required=False,
        label="Until (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    event_type = forms.ChoiceField(
        required=False,
        choices=[("", "any type")] + [(t, t) for t in EVENT_TYPES],
        label="Type",
    )
    event_name = forms.CharField(required=False, max_length=200, label="Event name")
    from_subscription = forms.ModelChoiceField(
        required=False,
        queryset=Subscription.objects.order_by("name"),
        label="Sent to",
        empty_label="any subscription",
    )
    from_source = forms.ModelChoiceField(
        required=False,
        queryset=Source.objects.order_by("name"),
        label="Came in through",
        empty_label="any source",
        help_text="A source of the sandbox's, which SDKs send to.",
    )

    def __init__(self, *args, **kwargs):
        # Ids of their own: the layout has forms of its own.
        kwargs.setdefault("auto_id", "replay-%s")
        super().__init__(*args, **kwargs)

    HISTORY_FIELDS = (
        "since",
        "until",
        "event_type",
        "event_name",
        "from_subscription",
        "from_source",
    )
    CONTROL_FIELDS = (
        "subscription",
        "rate",
        "concurrency",
        "shuffle",
        "new_message_ids",
    )

    @staticmethod
    def initial_from(query) -> dict:
        """What a link may choose (a source's page: the events it received):
        where the events come from and the two filters; the rest is ignored."""
        initial = {}
        if query.get("source") in {"history", "ingested"}:
            initial["source"] = query["source"]
        for name in ("from_source", "from_subscription"):
            value = query.get(name, "")
            if value.isascii() and value.isdigit() and len(value) < 19:
                initial[name] = int(value)
        return initial

    def history_fields(self) -> list:
        return [self[name] for name in self.HISTORY_FIELDS]

    def control_fields(self) -> list:
        return [self[name] for name in self.CONTROL_FIELDS]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("source") == "file" and not data.get("file"):
            self.add_error("file", NO_FILE)
        since, until = data.get("since"), data.get("until")
        if data.get("source") != "file" and since and until and until < since:
            self.add_error("until", UNTIL_BEFORE_SINCE)
        return data

    def history(self) -> services.HistoryFilters:
        data = self.cleaned_data
        chosen = data.get("from_subscription")
        source = data.get("from_source")
        return services.HistoryFilters(
            since=data.get("since"),
            until=data.get("until"),
            event_type=data.get("event_type") or "",
            event_name=data.get("event_name") or "",
            subscription_id=chosen.pk if chosen else None,
            source_id=source.pk if source else None,
            ingested=data.get("source") == "ingested",
        )
