"""Reads for function subscriptions: their versions and what their code defines."""

import logging
import subprocess
import threading
from dataclasses import dataclass

from django.db.models import Func, IntegerField, Max, QuerySet

from sandbox.functions import runtime
from sandbox.functions.models import FunctionVersion
from sandbox.subscriptions.models import Subscription

BATCH_HANDLER = "onBatch"

logger = logging.getLogger(__name__)
# Listing handlers runs the code's top level in a Node process (a tenth of a
# second, up to the check's time limit for code that never finishes); a version's
# source never changes, so each is asked once per process.
HANDLERS_SEEN_SIZE = 512
_handlers_seen: dict[str, list[str]] = {}
_handlers_seen_lock = threading.Lock()


class ByteLength(Func):
    """A text's length in UTF-8 bytes, as the source limit counts it."""

    function = "OCTET_LENGTH"
    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # SQLite's length() counts a BLOB in bytes; octet_length came in 3.43.
        return self.as_sql(
            compiler, connection, template="length(CAST(%(expressions)s AS BLOB))"
        )


@dataclass(frozen=True)
class FunctionSummary:
    """A function subscription's newest version and the handlers it defines."""

    version: FunctionVersion | None
    handlers: list[str]

    @property
    def batches(self) -> bool:
        return BATCH_HANDLER in self.handlers


def function_summary(*, subscription: Subscription) -> FunctionSummary | None:
    """The newest version and its handlers; None for a webhook."""
    if not subscription.is_function:
        return None
    version = subscription.current_function
    handlers = function_handlers(source=version.source) if version else []
    return FunctionSummary(version=version, handlers=handlers)


def function_handlers(*, source: str) -> list[str]:
    """The handlers this source defines; [] when Node could not tell."""
    digest = FunctionVersion.hash_of(source)
    handlers = _handlers_seen.get(digest)
    if handlers is None:
        try:
            handlers = runtime.defined_handlers(source)
        except (OSError, RuntimeError, subprocess.SubprocessError):
            # A page that lists handlers still shows everything else.
            logger.warning("Could not list the handlers of a function", exc_info=True)
            return []
        with _handlers_seen_lock:
            if len(_handlers_seen) >= HANDLERS_SEEN_SIZE:
                _handlers_seen.pop(next(iter(_handlers_seen)))
            _handlers_seen[digest] = handlers
    return list(handlers)


def function_version_list(*, subscription: Subscription) -> QuerySet[FunctionVersion]:
    """Its versions, newest first, each with its `size` in bytes but without its
    source (a history can be long)."""
    return (
        FunctionVersion.objects.filter(subscription=subscription)
        .annotate(size=ByteLength("source"))
        .defer("source")
        .order_by("-number")
    )


def function_version_get(*, subscription: Subscription, number: int) -> FunctionVersion:
    return FunctionVersion.objects.get(subscription=subscription, number=number)


def function_version_numbers(*, subscription_ids: list[int]) -> dict[int, int]:
    """The newest version number of each of these subscriptions that has one."""
    rows = (
        FunctionVersion.objects.filter(subscription_id__in=subscription_ids)
        .values("subscription_id")
        .annotate(newest=Max("number"))
    )
    return {row["subscription_id"]: row["newest"] for row in rows}
