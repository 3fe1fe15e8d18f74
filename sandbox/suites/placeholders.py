"""Placeholders in a suite's events, filled fresh on every run (pure: no Django).

    {{uuid}}                a new UUID at each occurrence
    {{now}}                 the run's start, ISO 8601 as Segment writes it
    {{now-1d}} {{now+2h}}   that moment shifted by s, m, h, d or w
    {{userId}}              one userId per run, the same in every step
    {{anonymousId}}         one anonymousId per run, the same in every step
    {{NAME}}                the suite's variable NAME
    {{messageId:step1}}     the messageId step 1 was sent with (steps count from
    {{messageId:ID}}        1), or the step whose "id" is ID: a repeat on purpose

A placeholder that is a whole string value becomes the value itself (a variable
may be a number or an object); inside longer text it is written as text. Every
step is sent with a new messageId unless its messageId is a {{messageId:...}}
reference: a literal messageId in a step is replaced too, since Segment would
drop a repeat of it on the next run.
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sandbox.spec.timestamps import format_timestamp

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_SHIFT = re.compile(r"now([+-])(\d{1,6})([smhdw])")
_REFERENCE = re.compile(r"messageId:(.+)")
_STEP_NUMBER = re.compile(r"step(\d{1,4})")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
RESERVED = frozenset({"uuid", "now", "userId", "anonymousId", "messageId"})
KNOWN = (
    "{{uuid}}, {{now}}, {{now-1d}} / {{now+2h}}, {{userId}}, {{anonymousId}}, "
    "{{messageId:step1}}, or a variable's {{name}}"
)

UNKNOWN_PLACEHOLDER = "{path}: unknown placeholder {{{{{name}}}}}; known: {known}"
LATER_REFERENCE = (
    "{path}: {{{{messageId:{ref}}}}} must name an earlier step (by its number, "
    "step1, or its id)"
)
OUT_OF_CALENDAR = "{path}: {{{{{name}}}}} falls outside the calendar"


def _walk(value: object, path: str):
    """(path, text) for every string value, nested as deep as it goes."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def _reference_index(ref: str, earlier_ids: dict[str, int], step_number: int):
    """The 0-based index of an earlier step a reference names, or None."""
    number = _STEP_NUMBER.fullmatch(ref)
    if number is not None and 1 <= int(number.group(1)) < step_number:
        return int(number.group(1)) - 1
    found = earlier_ids.get(ref)
    return found if found is not None and found < step_number - 1 else None


def problems(
    event: object,
    *,
    path: str,
    variables: dict,
    earlier_ids: dict[str, int],
    step_number: int,
) -> list[str]:
    """Each placeholder in the event that names nothing, with its path."""
    found = []
    for where, text in _walk(event, path):
        for match in PLACEHOLDER.finditer(text):
            name = match.group(1)
            reference = _REFERENCE.fullmatch(name)
            if reference is not None:
                ref = reference.group(1).strip()
                if _reference_index(ref, earlier_ids, step_number) is None:
                    found.append(LATER_REFERENCE.format(path=where, ref=ref))
                continue
            shift = _SHIFT.fullmatch(name)
            if shift is not None:
                try:
                    _shifted(datetime(2000, 1, 1), shift)
                except OverflowError:
                    found.append(OUT_OF_CALENDAR.format(path=where, name=name))
                continue
            if name in RESERVED or name in variables:
                continue
            found.append(UNKNOWN_PLACEHOLDER.format(path=where, name=name, known=KNOWN))
    return found


def _shifted(now: datetime, shift: re.Match) -> datetime:
    sign, amount, unit = shift.groups()
    delta = timedelta(**{_UNITS[unit]: int(amount)})
    return now + delta if sign == "+" else now - delta


def new_user_id() -> str:
    return f"suite-user-{uuid.uuid4().hex[:12]}"


@dataclass
class RunValues:
    """What a run fills in: one clock, one user, the messageIds sent so far."""

    now: datetime
    variables: dict = field(default_factory=dict)
    user_id: str = field(default_factory=new_user_id)
    anonymous_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # The messageId of each step filled so far, by step index.
    message_ids: list[str] = field(default_factory=list)
    step_ids: dict[str, int] = field(default_factory=dict)

    def value(self, name: str) -> object:
        if name == "uuid":
            return str(uuid.uuid4())
        if name == "now":
            return format_timestamp(self.now)
        if name == "userId":
            return self.user_id
        if name == "anonymousId":
            return self.anonymous_id
        shift = _SHIFT.fullmatch(name)
        if shift is not None:
            return format_timestamp(_shifted(self.now, shift))
        reference = _REFERENCE.fullmatch(name)
        if reference is not None:
            index = _reference_index(
                reference.group(1).strip(),
                self.step_ids,
                len(self.message_ids) + 1,
            )
            return self.message_ids[index]
        return self.variables[name]


def is_reference(value: object) -> bool:
    """Whether a messageId value is a {{messageId:...}} reference (a repeat)."""
    if not isinstance(value, str):
        return False
    match = PLACEHOLDER.fullmatch(value.strip())
    return match is not None and _REFERENCE.fullmatch(match.group(1)) is not None


def fill(value: object, values: RunValues) -> object:
    """A copy of the value with every placeholder filled."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole is not None:
            return values.value(whole.group(1))
        return PLACEHOLDER.sub(lambda m: _as_text(values.value(m.group(1))), value)
    if isinstance(value, dict):
        return {key: fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, values) for item in value]
    return value


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
