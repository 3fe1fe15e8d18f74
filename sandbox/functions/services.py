"""Saving a function's source: checked first, then kept as a new version."""

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from sandbox.functions import runtime
from sandbox.functions.models import FunctionVersion
from sandbox.subscriptions.models import Subscription

logger = logging.getLogger(__name__)

BOILERPLATE_PATH = Path(__file__).with_name("boilerplate.js")
# Far more than any function Segment accepts; a limit so a paste cannot fill the disk.
MAX_SOURCE_BYTES = 512 * 1024
SOURCE_TOO_LARGE_ERROR = (
    "The function is {size:,} bytes; the sandbox accepts at most {limit:,}."
)
SOURCE_EMPTY_ERROR = "The function is empty: write at least one handler."
SOURCE_NUL_ERROR = "The function contains a NUL character, which cannot be saved."
SOURCE_CHECK_FAILED_ERROR = (
    "The sandbox could not check the function's syntax, so it was not saved. "
    "Try again; the server's console says what went wrong."
)
SOURCE_UNENCODABLE_ERROR = (
    "The function contains a character that cannot be stored as UTF-8 "
    "(a lone surrogate, line {line})."
)


@dataclass(frozen=True)
class SourceProblem:
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"{self.message} (line {self.line}, column {self.column})"


def boilerplate(endpoint_url: str = "") -> str:
    """Segment's starting point: every handler, sending to `endpoint_url`."""
    endpoint = endpoint_url or f"{settings.BASE_URL}/mock/demo/"
    text = BOILERPLATE_PATH.read_text()
    return text.replace(
        "__ENDPOINT__", endpoint.replace("\\", "\\\\").replace("'", "\\'")
    )


def source_problem(source: str) -> SourceProblem | None:
    """Why this source cannot be saved or run, or None: size, encoding, syntax."""
    if not source.strip():
        return SourceProblem(SOURCE_EMPTY_ERROR)
    try:
        size = len(source.encode())
    except UnicodeEncodeError as error:
        line = source.count("\n", 0, error.start) + 1
        return SourceProblem(SOURCE_UNENCODABLE_ERROR.format(line=line))
    if size > MAX_SOURCE_BYTES:
        return SourceProblem(
            SOURCE_TOO_LARGE_ERROR.format(size=size, limit=MAX_SOURCE_BYTES)
        )
    at = source.find("\x00")
    if at >= 0:
        line_start = source.rfind("\n", 0, at) + 1
        line = source.count("\n", 0, at) + 1
        return SourceProblem(SOURCE_NUL_ERROR, line, at - line_start + 1)
    try:
        found = runtime.check_syntax(source)
    except (OSError, RuntimeError, subprocess.SubprocessError):
        # Node could not be run or did not answer: nothing is saved unchecked.
        logger.warning("The syntax check of a function failed", exc_info=True)
        return SourceProblem(SOURCE_CHECK_FAILED_ERROR)
    if found is not None:
        return SourceProblem(found.message, found.line, found.column)
    return None


class SourceFileRefused(Exception):
    """A function file that cannot be read, or whose source cannot run."""


def source_of_file(path: str) -> str:
    """The source of a function file, checked as the code page checks a save;
    SourceFileRefused, with the reason, otherwise."""
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SourceFileRefused(f"cannot read it: {error}") from None
    problem = source_problem(source)
    if problem is not None:
        raise SourceFileRefused(str(problem))
    return source


def normalize(source: str) -> str:
    # Browsers post textareas with CRLF; line numbers count the same either way.
    return source.replace("\r\n", "\n").replace("\r", "\n")


@transaction.atomic
def function_version_save(
    *, subscription: Subscription, source: str
) -> tuple[FunctionVersion, bool]:
    """Keep `source` as the subscription's newest version; (version, created).

    The caller has checked it with source_problem(). Saving the same source as
    the newest version again makes no new version."""
    source = normalize(source)
    digest = FunctionVersion.hash_of(source)
    newest = (
        FunctionVersion.objects.select_for_update()
        .filter(subscription=subscription)
        .order_by("-number")
        .first()
    )
    if newest is not None and newest.source_sha256 == digest:
        return newest, False
    version = FunctionVersion.objects.create(
        subscription=subscription,
        number=(newest.number + 1) if newest is not None else 1,
        source=source,
        source_sha256=digest,
    )
    return version, True


def ad_hoc_version(source: str) -> FunctionVersion:
    """The stored version for a function run from a file (no subscription)."""
    source = normalize(source)
    digest = FunctionVersion.hash_of(source)
    found = FunctionVersion.objects.filter(
        subscription__isnull=True, source_sha256=digest
    ).first()
    if found is not None:
        return found
    return FunctionVersion.objects.create(
        subscription=None, number=1, source=source, source_sha256=digest
    )
