"""The forms that import a suite file's text and start a run."""

from django import forms

from sandbox.delivery.conditions import CONCURRENCY_RANGE, MAX_CONCURRENCY
from sandbox.subscriptions.selectors import subscription_list


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
    replace = forms.BooleanField(
        label="Replace a stored suite of the same name", required=False
    )


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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subscription"].queryset = subscription_list()
