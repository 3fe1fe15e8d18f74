"""The form that creates and edits a source on its page."""

from django import forms

from sandbox.sources.models import Source
from sandbox.subscriptions.selectors import subscription_list


class SourceForm(forms.ModelForm):
    class Meta:
        model = Source
        fields = ["name", "write_key", "subscriptions"]
        widgets = {"subscriptions": forms.CheckboxSelectMultiple}
        help_texts = {
            "write_key": "What SDKs send as their write key. Leave it empty for a "
            "new one, like Segment's.",
            "subscriptions": "Each event the source accepts is delivered to every "
            "connected, enabled subscription.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["write_key"].required = False
        self.fields["write_key"].strip = True
        self.fields["subscriptions"].required = False
        self.fields["subscriptions"].queryset = subscription_list()
        if self.instance.pk is None:
            # Empty: a new key is made for it.
            self.initial["write_key"] = ""
