"""The forms that import a suite file's text and start a run."""

import json
import re

from django import forms

from sandbox import spec
from sandbox.delivery.conditions import CONCURRENCY_RANGE, MAX_CONCURRENCY
from sandbox.delivery.forms import duplicate_rate_field, jitter_field
from sandbox.display import indent_json
from sandbox.subscriptions.selectors import subscription_list
from sandbox.suites import fileformat
from sandbox.suites.selectors import FILE_TOO_LARGE, MAX_FILE_BYTES

BOTH_GIVEN = "Paste the suite's text or choose its file, not both."
NOT_UTF8 = "{name} is not UTF-8 text (byte {at}); a suite file is JSON in UTF-8."


class SuiteImportForm(forms.Form):
    text = forms.CharField(
        label="Suite file",
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        strip=False,
        # Empty text is answered by the file format's own words, as any file is.
        required=False,
        help_text="The JSON of a *.suite.json file; nothing is stored unless all "
        "of it is valid.",
    )
    upload = forms.FileField(
        label="Or choose the file",
        required=False,
        # An empty file is answered by the file format's own words, as text is.
        allow_empty_file=True,
        widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}),
    )
    replace = forms.BooleanField(
        label="Replace a stored suite of the same name", required=False
    )

    def file_text(self) -> str:
        """The suite file's text, pasted or chosen; SuiteRefused-worthy words
        (ValueError) for a file that is too large, not UTF-8, or given twice."""
        upload = self.cleaned_data.get("upload")
        text = self.cleaned_data.get("text") or ""
        if upload is None:
            return text
        if text.strip():
            raise ValueError(BOTH_GIVEN)
        if upload.size > MAX_FILE_BYTES:
            raise ValueError(
                FILE_TOO_LARGE.format(
                    path=upload.name, limit=MAX_FILE_BYTES // (1024 * 1024)
                )
            )
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                NOT_UTF8.format(name=upload.name, at=error.start)
            ) from None


class SuiteRunForm(forms.Form):
    suite = forms.CharField(max_length=120)
    subscription = forms.ModelChoiceField(queryset=None, empty_label=None)
    concurrency = forms.IntegerField(
        min_value=1,
        max_value=MAX_CONCURRENCY,
        initial=1,
        error_messages={
            "min_value": CONCURRENCY_RANGE,
            "max_value": CONCURRENCY_RANGE,
        },
        help_text="1 sends each step once the one before has its final outcome.",
    )
    shuffle = forms.BooleanField(required=False)
    duplicate_rate = duplicate_rate_field(
        help_text="Share of steps delivered a second time with the same messageId, "
        "as at-least-once delivery does after a timeout; what the endpoint made of "
        "the repeat is told beside the step, and never changes the verdict."
    )
    jitter_ms = jitter_field(help_text="Up to this long between steps.")
    variations = forms.BooleanField(
        label="With variations",
        required=False,
        help_text="After each step, also send it as other SDKs and customers shape "
        "it (snake_case traits, +00:00 times, nulls, each SDK's messageId…) and "
        "show which variants the endpoint handled differently. Variants never "
        "change the verdict.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subscription"].queryset = subscription_list()


class SuiteNameForm(forms.Form):
    """A name for a suite (a rename, a duplicate); the file format judges it."""

    name = forms.CharField(label="Name", required=False)


DEDUPLICATED_CHOICES = [
    ("", "Not checked"),
    ("true", "Dropped by Segment as a repeat"),
    ("false", "Not dropped as a repeat"),
]
_STATUS_SEPARATORS = re.compile(r"[\s,]+")


def _template_choices() -> list:
    return [
        ("", "Choose a semantic event"),
        *(
            (category, [(name, name) for name in names])
            for category, names in spec.templates_by_category()
        ),
    ]


class SuiteStepForm(forms.Form):
    """One step of a stored suite: what it sends and what it expects. The file
    format reads it with the rest of the suite, so each problem has its path."""

    name = forms.CharField(
        label="Name",
        required=False,
        help_text="What results call the step; blank uses the event's name.",
    )
    step_id = forms.CharField(
        label="Id",
        required=False,
        help_text="Lets a later step repeat this one's messageId with "
        "{{messageId:ID}}.",
    )
    event = forms.CharField(
        label="Event JSON",
        required=False,
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 18, "spellcheck": "false", "data-json-editor": "1"}
        ),
        help_text="Placeholders such as {{uuid}}, {{now}} and {{userId}} are "
        "filled on every run; the messageId is made fresh unless it is a "
        "{{messageId:...}} repeat.",
    )
    template = forms.CharField(
        label="Semantic event",
        required=False,
        widget=forms.Select(choices=_template_choices),
    )
    type = forms.CharField(
        label="Type",
        required=False,
        widget=forms.Select(choices=[(t, t) for t in spec.EVENT_TYPES]),
    )
    source = forms.CharField(
        label="Source library",
        required=False,
        widget=forms.Select(
            choices=[("", "Default (analytics.js)"), *spec.SOURCES.items()]
        ),
    )
    outcomes = forms.MultipleChoiceField(
        label="Outcome",
        required=False,
        choices=[(outcome, outcome) for outcome in fileformat.OUTCOMES],
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked and nothing else expected: green or yellow.",
    )
    statuses = forms.CharField(
        label="Status codes",
        required=False,
        help_text="One or more, such as 200, 201.",
    )
    body_path = forms.CharField(
        label="JSON path in the response body",
        required=False,
        help_text="Such as success or errors[0].code.",
    )
    body_equals = forms.CharField(
        label="Expected value there (JSON)",
        required=False,
        help_text='Such as true, 400 or "ok".',
    )
    deduplicated = forms.ChoiceField(
        label="Deduplication", required=False, choices=DEDUPLICATED_CHOICES
    )

    @staticmethod
    def initial_for(raw: dict) -> dict:
        """The form's values for a step of a file document."""
        expect = raw.get("expect") or {}
        body = expect.get("body") or {}
        outcomes = expect.get("outcome", [])
        statuses = expect.get("status", [])
        deduplicated = expect.get("deduplicated")
        return {
            "name": raw.get("name", ""),
            "step_id": raw.get("id", ""),
            "event": indent_json(raw["event"]) if "event" in raw else "",
            "template": raw.get("template", ""),
            "type": raw.get("type", ""),
            "source": raw.get("source", ""),
            "outcomes": outcomes if isinstance(outcomes, list) else [outcomes],
            "statuses": ", ".join(
                str(s) for s in (statuses if isinstance(statuses, list) else [statuses])
            ),
            "body_path": body.get("path", ""),
            "body_equals": json.dumps(body["equals"], ensure_ascii=False)
            if "equals" in body
            else "",
            "deduplicated": "" if deduplicated is None else str(deduplicated).lower(),
        }

    def step_document(self, *, kind: str, index: int) -> tuple[dict, list[str]]:
        """The step as the file writes it, and the problems of its JSON fields
        (the rest is for the file format to judge). kind: event, template, type."""
        data = self.cleaned_data
        at = f"steps[{index}]"
        problems: list[str] = []
        step: dict = {}
        if data["step_id"]:
            step["id"] = data["step_id"]
        if data["name"]:
            step["name"] = data["name"]
        if kind == "event":
            event, error = spec.parse_event_json(data["event"])
            if error is not None:
                problems.append(f"{at}.event: {error.message}")
            step["event"] = event
        else:
            step[kind] = data[kind]
            if data["source"]:
                step["source"] = data["source"]
        expect: dict = {}
        if data["outcomes"]:
            expect["outcome"] = _one_or_list(data["outcomes"])
        statuses = [
            int(text) if text.isdecimal() and len(text) <= 3 else text
            for text in _STATUS_SEPARATORS.split(data["statuses"])
            if text
        ]
        if statuses:
            expect["status"] = _one_or_list(statuses)
        if data["body_path"] or data["body_equals"]:
            body: dict = {}
            if data["body_path"]:
                body["path"] = data["body_path"]
            if data["body_equals"]:
                value, error = spec.parse_json(data["body_equals"])
                if error is not None:
                    problems.append(f"{at}.expect.body.equals: {error.message}")
                body["equals"] = value
            expect["body"] = body
        if data["deduplicated"]:
            expect["deduplicated"] = data["deduplicated"] == "true"
        if expect:
            step["expect"] = expect
        return step, problems


def _one_or_list(values: list) -> object:
    return values[0] if len(values) == 1 else list(values)


class SuiteAddStepForm(forms.Form):
    """ "Add to suite": the event (the composer's text, or a stored delivery's),
    and a stored suite to add it to or a new suite's name."""

    payload = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)
    delivery = forms.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput
    )
    suite = forms.CharField(label="Add to", required=False)
    new_suite_name = forms.CharField(label="or a new suite named", required=False)
    # Set by the chooser's own button: without it the request asks for a choice.
    add = forms.BooleanField(required=False, widget=forms.HiddenInput)


class SuiteDeleteForm(forms.Form):
    confirm = forms.BooleanField(required=False)
