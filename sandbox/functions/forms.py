"""The code page's form: a function's JavaScript, checked before it is saved."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from sandbox.functions import services

# Kept here too: the code page's tests name them through its form.
SOURCE_NUL_ERROR = services.SOURCE_NUL_ERROR
SOURCE_CHECK_FAILED_ERROR = services.SOURCE_CHECK_FAILED_ERROR


class SourceField(forms.CharField):
    """The source exactly as typed: indentation and trailing lines are code."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strip=False, **kwargs)
        # A NUL is refused by services.source_problem(), with where it is.
        self.validators = []


class FunctionSourceForm(forms.Form):
    source = SourceField(
        required=False,
        label="Code",
        widget=forms.Textarea(
            attrs={
                "rows": 30,
                "spellcheck": "false",
                "autocapitalize": "off",
                "autocomplete": "off",
                "wrap": "off",
                "data-code-editor": "javascript",
            }
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Why it was not saved, with line and column when it has them.
        self.problem: services.SourceProblem | None = None

    def clean_source(self) -> str:
        source = services.normalize(self.cleaned_data["source"])
        self.problem = services.source_problem(source)
        if self.problem is not None:
            raise ValidationError(str(self.problem), code="invalid")
        return source
