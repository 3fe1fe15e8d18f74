"""Reading a run's outcomes against its steps' expectations, the verdict, and
what changed since the last good run (pure: no Django)."""

import json
import re
from dataclasses import asdict, dataclass, field

from sandbox.suites.fileformat import DEFAULT_OUTCOMES, Expectation
from sandbox.suites.variations import VARIATIONS, differences

READY = "Ready for review"
NOT_READY = "Not ready for review"
ALL_HELD = "Every expectation held ({count} step{s})"
SOME_FAILED = "{failed} of {count} step{s} failed"
DEDUPLICATED = "deduplicated"
NOT_ANSWERED = "no answer"

EXPECTED_OUTCOME = "expected {expected}, got {actual}: {reason}"
EXPECTED_STATUS = "expected status {expected}, got {actual}: {reason}"
NO_RESPONSE = "expected status {expected}, but no response came: {reason}"
BODY_NOT_JSON = "expected {path} = {expected} in the response body, which is not JSON"
BODY_MISSING = "expected {path} = {expected}, but the response body has no {path}"
BODY_DIFFERS = "expected {path} = {expected}, got {actual}"
WAS_DEDUPLICATED = "deduplicated, not sent: {reason}"
NOT_DEDUPLICATED = "expected Segment to drop it as a repeat, but it was {actual}"
STILL_OPEN = "still {state} when the run ended"
STILL_RETRYING = "still retrying when the run ended: {reason}"
WAITING = "not sent when the run ended"

CHANGED_STATUS = (
    "step {number} ({label}) was {before} in the last good run, now {after}{why}"
)
CHANGED_OUTCOME = (
    "step {number} ({label}) was {before} in the last good run, now {after}{why}"
)
CHANGED_MESSAGE = (
    "step {number} ({label}): the endpoint's message was {before!r} in the last "
    "good run, now {after!r}"
)
CHANGED_LATENCY = (
    "step {number} ({label}) took {before} ms in the last good run, now {after} ms"
)
# Slower than this much, and at least twice as slow, is worth saying.
LATENCY_THRESHOLD_MS = 500

VARIANT_OPEN = "not settled when the run ended"
VARIANT_DIFFERS = "{name}: {sentence}"
DUPLICATE_SENT = (
    "delivered again with the same messageId (a duplicate on purpose): {how}"
)
VARIANTS_SAME = "every variant of {count} step{s} handled like its step ({sent} sent)"
VARIANTS_DIFFER = (
    "{differed} of {sent} variant{s} handled differently from their step "
    "(in {steps} step{steps_s})"
)
OPEN_STATES = ("pending", "retrying")


@dataclass(frozen=True)
class Actual:
    """What happened to one step's delivery, as stored."""

    state: str
    outcome: str = ""
    status: int | None = None
    latency_ms: int | None = None
    message: str = ""
    reason: str = ""
    response_body: str = ""
    attempts: int = 0


@dataclass
class StepResult:
    number: int
    label: str
    event_type: str
    message_id: str
    delivery_id: int | None
    expected: str
    state: str
    outcome: str
    status: int | None
    latency_ms: int | None
    message: str
    attempts: int
    passed: bool
    reason: str
    failure: str = ""
    changes: list[str] = field(default_factory=list)
    # The variants sent after the step (a run "with variations"), each a dict
    # of variant_result; they never count toward passed.
    variants: list[dict] = field(default_factory=list)
    # The step delivered again with its messageId (a run with a duplicate rate),
    # a dict of duplicate_result; it never counts toward passed.
    duplicate: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def describe_expectation(expect: Expectation | None) -> str:
    if expect is None:
        return " or ".join(DEFAULT_OUTCOMES)
    parts = []
    if expect.deduplicated:
        parts.append(DEDUPLICATED)
    if expect.outcomes:
        parts.append(" or ".join(expect.outcomes))
    if expect.statuses:
        parts.append("status " + " or ".join(str(s) for s in expect.statuses))
    if expect.body is not None:
        parts.append(f"{expect.body.path} = {_shown(expect.body.equals)}")
    if expect.deduplicated is False:
        parts.append("not deduplicated")
    return ", ".join(parts)


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def body_value(body: str, path: str) -> tuple[bool, object]:
    """(found, value) at a path such as errors[0].code in a JSON body."""
    document = json.loads(body)
    node = document
    for name, index in _PART.findall(path.removeprefix("$").lstrip(".")):
        if index:
            if not isinstance(node, list) or int(index) >= len(node):
                return False, None
            node = node[int(index)]
        else:
            if not isinstance(node, dict) or name not in node:
                return False, None
            node = node[name]
    return True, node


def _failure(expect: Expectation | None, actual: Actual) -> str:
    """Why the step failed, in Segment's status-code words; "" when it held."""
    if actual.state == "retrying" and actual.reason:
        return STILL_RETRYING.format(reason=actual.reason)
    if actual.state == "pending" and not actual.status:
        return WAITING
    if actual.state in ("pending", "retrying"):
        return STILL_OPEN.format(state=actual.state)
    if actual.state == DEDUPLICATED:
        if expect is not None and expect.deduplicated:
            return ""
        return WAS_DEDUPLICATED.format(reason=actual.reason)
    if expect is not None and expect.deduplicated:
        return NOT_DEDUPLICATED.format(actual=actual.outcome or actual.state)
    outcomes = DEFAULT_OUTCOMES if expect is None else expect.outcomes
    reason = actual.reason or actual.state
    if outcomes and actual.outcome not in outcomes:
        return EXPECTED_OUTCOME.format(
            expected=" or ".join(outcomes),
            actual=actual.outcome or actual.state,
            reason=reason,
        )
    if expect is None:
        return ""
    if expect.statuses:
        expected = " or ".join(str(s) for s in expect.statuses)
        if actual.status is None:
            return NO_RESPONSE.format(expected=expected, reason=reason)
        if actual.status not in expect.statuses:
            return EXPECTED_STATUS.format(
                expected=expected, actual=actual.status, reason=reason
            )
    if expect.body is not None:
        path, wanted = expect.body.path, _shown(expect.body.equals)
        try:
            found, value = body_value(actual.response_body, path)
        except (ValueError, RecursionError):
            return BODY_NOT_JSON.format(path=path, expected=wanted)
        if not found:
            return BODY_MISSING.format(path=path, expected=wanted)
        if value != expect.body.equals or type(value) is not type(expect.body.equals):
            return BODY_DIFFERS.format(path=path, expected=wanted, actual=_shown(value))
    return ""


def step_result(
    *,
    number: int,
    label: str,
    event_type: str,
    message_id: str,
    delivery_id: int | None,
    expect: Expectation | None,
    actual: Actual,
) -> StepResult:
    failure = _failure(expect, actual)
    return StepResult(
        number=number,
        label=label,
        event_type=event_type,
        message_id=message_id,
        delivery_id=delivery_id,
        expected=describe_expectation(expect),
        state=actual.state,
        outcome=actual.outcome,
        status=actual.status,
        latency_ms=actual.latency_ms,
        message=actual.message,
        attempts=actual.attempts,
        passed=not failure,
        reason=actual.reason,
        failure=failure,
    )


def verdict(results: list[StepResult], *, review: bool) -> str:
    """One line: "Ready for review" (the Segment test suite) or how many held."""
    count = len(results)
    failed = [r for r in results if not r.passed]
    s = "" if count == 1 else "s"
    if review:
        if not failed:
            return READY
        return f"{NOT_READY}: " + "; ".join(
            f"step {r.number} ({r.label}) {r.failure}" for r in failed
        )
    if not failed:
        return ALL_HELD.format(count=count, s=s)
    return SOME_FAILED.format(failed=len(failed), count=count, s=s)


def _status_word(result: dict) -> str:
    if result.get("status") is not None:
        return str(result["status"])
    return result.get("outcome") or result.get("state") or NOT_ANSWERED


def changes_since(last_good: list[dict], results: list[StepResult]) -> None:
    """Mark on each result what changed since the same step in the last good
    run: outcome, status code, the endpoint's message, latency beyond the
    threshold. Steps are matched by number and label (an edited suite's new
    steps have nothing to compare with)."""
    before_by_step = {(r["number"], r["label"]): r for r in last_good}
    for result in results:
        before = before_by_step.get((result.number, result.label))
        if before is None:
            continue
        now = result.as_dict()
        why = f": {result.message}" if result.message else ""
        if before.get("status") != result.status:
            result.changes.append(
                CHANGED_STATUS.format(
                    number=result.number,
                    label=result.label,
                    before=_status_word(before),
                    after=_status_word(now),
                    why=why,
                )
            )
        elif before.get("outcome") != result.outcome:
            result.changes.append(
                CHANGED_OUTCOME.format(
                    number=result.number,
                    label=result.label,
                    before=before.get("outcome") or before.get("state"),
                    after=result.outcome or result.state,
                    why=why,
                )
            )
        if before.get("message", "") != result.message:
            result.changes.append(
                CHANGED_MESSAGE.format(
                    number=result.number,
                    label=result.label,
                    before=before.get("message", ""),
                    after=result.message,
                )
            )
        was, now_ms = before.get("latency_ms"), result.latency_ms
        if (
            was is not None
            and now_ms is not None
            and now_ms - was > LATENCY_THRESHOLD_MS
            and now_ms >= 2 * was
        ):
            result.changes.append(
                CHANGED_LATENCY.format(
                    number=result.number, label=result.label, before=was, after=now_ms
                )
            )


def _answer(status: int | None, outcome: str, message: str) -> dict:
    return {"status": status, "outcome": outcome, "message": message}


def variant_result(
    *,
    name: str,
    delivery_id: int | None,
    message_id: str,
    original: StepResult,
    actual: Actual,
) -> dict:
    """One variant's answer, and how it differs from its step's (sentences of
    variations.differences; none while either is still open)."""
    variation = VARIATIONS.get(name)
    if actual.state in OPEN_STATES:
        found = [VARIANT_OPEN]
    elif original.state in OPEN_STATES:
        found = []
    else:
        found = differences(
            _answer(original.status, original.outcome, original.message),
            _answer(actual.status, actual.outcome, actual.message),
        )
    return {
        "name": name,
        "description": variation.description if variation else "",
        "delivery_id": delivery_id,
        "message_id": message_id,
        "state": actual.state,
        "outcome": actual.outcome,
        "status": actual.status,
        "latency_ms": actual.latency_ms,
        "message": actual.message,
        "attempts": actual.attempts,
        "differences": found,
    }


def duplicate_result(*, delivery_id: int, actual: Actual) -> dict:
    """The duplicate injected after a step: what the endpoint made of the same
    messageId again, and that sentence."""
    if actual.state in OPEN_STATES:
        how = "not answered yet"
    elif actual.status is not None:
        how = f"answered {actual.status} ({actual.outcome or actual.state})"
        if actual.message:
            how = f"{how}: {actual.message}"
    else:
        how = actual.reason or actual.state
    return {
        "delivery_id": delivery_id,
        "state": actual.state,
        "outcome": actual.outcome,
        "status": actual.status,
        "latency_ms": actual.latency_ms,
        "sentence": DUPLICATE_SENT.format(how=how),
    }


def variants_differ(variants: list[dict]) -> list[str]:
    """One line for each of a step's variants the endpoint handled differently:
    "name: how" (every way it differed, "; " between them)."""
    return [
        VARIANT_DIFFERS.format(
            name=variant["name"], sentence="; ".join(variant["differences"])
        )
        for variant in variants
        if variant.get("differences")
    ]


def variations_summary(results: list[dict]) -> str:
    """One line on a run's variants; "" for a run without them."""
    sent = sum(len(result.get("variants", [])) for result in results)
    if not sent:
        return ""
    differed = [
        variant
        for result in results
        for variant in result.get("variants", [])
        if variant.get("differences")
    ]
    steps = {
        result["number"]
        for result in results
        if any(variant.get("differences") for variant in result.get("variants", []))
    }
    with_variants = sum(1 for result in results if result.get("variants"))
    if not differed:
        return VARIANTS_SAME.format(
            count=with_variants, s="" if with_variants == 1 else "s", sent=sent
        )
    return VARIANTS_DIFFER.format(
        differed=len(differed),
        sent=sent,
        s="" if sent == 1 else "s",
        steps=len(steps),
        steps_s="" if len(steps) == 1 else "s",
    )
