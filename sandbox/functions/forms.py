"""The code page's form: a function's JavaScript, checked before it is saved."""

import logging
import subprocess
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from sandbox.functions import services

SOURCE_NUL_ERROR = "The function contains a NUL character, which cannot be saved."
SOURCE_CHECK_FAILED_ERROR = (
    "The sandbox could not check the function's syntax, so it was not saved. "
    "Try again; the server's console says what went wrong."
)

logger = logging.getLogger(__name__)


class SourceField(forms.CharField):
    """The source exactly as typed: indentation and trailing lines are code."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strip=False, **kwargs)
        # A NUL is refused in clean_source(), with where it is.
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
        self.problem = _nul_problem(source) or _checked(source)
        if self.problem is not None:
            raise ValidationError(str(self.problem), code="invalid")
        return source


def _checked(source: str) -> services.SourceProblem | None:
    try:
        return services.source_problem(source)
    except (OSError, RuntimeError, subprocess.SubprocessError):
        # Node could not be run or did not answer: nothing is saved unchecked.
        logger.warning("The syntax check of a function failed", exc_info=True)
        return services.SourceProblem(SOURCE_CHECK_FAILED_ERROR)


def _nul_problem(source: str) -> services.SourceProblem | None:
    at = source.find("\x00")
    if at < 0:
        return None
    line_start = source.rfind("\n", 0, at) + 1
    return services.SourceProblem(
        SOURCE_NUL_ERROR, line=source.count("\n", 0, at) + 1, column=at - line_start + 1
    )
