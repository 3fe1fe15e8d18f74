"""Parsing the JSON text a user types or pastes, with errors that point at the spot.

Beyond the grammar, a value must be one the rest of the pipeline can store, encode
and send: finite numbers, real Unicode text and a sane depth. Python's decoder
accepts NaN, Infinity, 1e400 (as infinity, and written out as an integer as a
number no double holds) and lone UTF-16 surrogates such as "\\ud800"; Segment's
API refuses them, and so does the sandbox, at the door.
"""

import json
import re
import sys
from dataclasses import dataclass, field

EMPTY_DOCUMENT = (
    'The event is empty. Write or paste a JSON object, such as {"type": "track"}.'
)
INVALID_JSON = "Invalid JSON at line {line}, column {column}: {reason}"
UNREADABLE_JSON = "Invalid JSON: {reason}"
NOT_A_NUMBER = (
    "{token} is not a JSON number (JSON has no NaN or Infinity); "
    "use null or a finite number"
)
NUMBER_TOO_LONG = "a number has more than {limit:,} digits, more than the sandbox reads"
NUMBER_TOO_LARGE = "the number {text} is too large to represent (at most about 1.8e308)"
TOO_DEEP = (
    "objects and arrays are nested deeper than {limit} levels; the sandbox "
    "accepts at most {limit}"
)
LONE_SURROGATE = (
    "{where} contains a lone UTF-16 surrogate ({escape}), which is not "
    "valid Unicode; remove it, or pair it to form a real character"
)

# Deeper than any real event; far below the depth at which Python's own recursion
# (in the encoder, the database's JSON functions, the page's pretty-printer) gives up.
MAX_DEPTH = 100
_SURROGATE = re.compile("[\ud800-\udfff]")
# Digits (with a sign) below which no integer can be too large for a double.
_DOUBLE_DIGITS = 308


@dataclass(frozen=True)
class JsonError:
    message: str
    line: int  # 1-based, like an editor's
    column: int  # 1-based, like an editor's
    # The decoder's own words, for callers that phrase their own message.
    reason: str = field(default="", compare=False)


class _Refused(ValueError):
    """A number the decoder would accept but JSON does not allow."""


def _refuse_constant(token: str) -> float:
    raise _Refused(NOT_A_NUMBER.format(token=token))


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        shown = text if len(text) <= 30 else text[:27] + "..."
        raise _Refused(NUMBER_TOO_LARGE.format(text=shown))
    return value


def _finite_int(text: str) -> int:
    value = int(text)
    # Segment's API and JavaScript read every JSON number as a double, so an
    # integer past the largest one (1 followed by 400 zeros) is infinity to them.
    if len(text) > _DOUBLE_DIGITS:
        try:
            float(value)
        except OverflowError:
            shown = text if len(text) <= 30 else text[:27] + "..."
            raise _Refused(NUMBER_TOO_LARGE.format(text=shown)) from None
    return value


# json.loads' number hooks that refuse what JSON does not allow (NaN, infinity,
# an integer past the largest double), raising ValueError.
STRICT_NUMBERS = {
    "parse_constant": _refuse_constant,
    "parse_float": _finite_float,
    "parse_int": _finite_int,
}


def _escaped(text: str) -> str:
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _path(link: tuple | None) -> str:
    """The dotted path of a walked item from its chain of (parent link, key)."""
    keys = []
    while link is not None:
        link, key = link
        keys.append(key)
    path = ""
    for key in reversed(keys):
        if isinstance(key, int):
            path += f"[{key}]"
        else:
            # A key may itself hold the surrogate being reported: never echo it raw.
            path += f".{_escaped(key)}" if path else _escaped(key)
    return path


def _surrogate_reason(text: str, where: str) -> str | None:
    match = _SURROGATE.search(text)
    if match is None:
        return None
    escape = f"\\u{ord(match.group()):04x}"
    if len(where) > 120:
        where = where[:60] + "…" + where[-50:]
    return LONE_SURROGATE.format(where=where, escape=escape)


def value_problem(value: object) -> str | None:
    """Why a decoded value cannot travel through the pipeline, or None."""
    return encoded_or_problem(value)[1]


def encoded_or_problem(value: object) -> tuple[bytes | None, str | None]:
    """The value as compact UTF-8 JSON (as sizes are measured), or why it cannot
    travel through the pipeline; (None, None) for a value JSON cannot encode that
    is not JSON's (a datetime, say), which the caller encodes its own way.

    Most values are fine: one strict encoding proves it (no NaN or infinity, no
    lone surrogate, and fewer brackets than the depth limit means no deeper
    nesting). Otherwise the value is walked without recursion, so any depth is
    safe to ask about, and a path is spelled out for the item at fault.
    """
    try:
        encoded = json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (ValueError, TypeError, RecursionError):
        return None, _walked_problem(value)
    if encoded.count(b"{") + encoded.count(b"[") <= MAX_DEPTH:
        return encoded, None
    problem = _walked_problem(value)
    return (encoded if problem is None else None), problem


def _walked_problem(value: object) -> str | None:
    # (item, link, depth); a link is (the parent's link, this item's key).
    stack: list[tuple[object, tuple | None, int]] = [(value, None, 1)]
    while stack:
        item, link, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                where = f"the text at {_path(link) or 'the top level'}"
                return _surrogate_reason(item, where)
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return NOT_A_NUMBER.format(token=repr(item))
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return TOO_DEEP.format(limit=MAX_DEPTH)
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str) and _SURROGATE.search(key):
                    return _surrogate_reason(key, f"the key {_path((link, key))}")
                stack.append((child, (link, key), depth + 1))
    return None


def member_size(key: str, value: object, *, default=None) -> int:
    """Bytes of `"key":value` in compact UTF-8 JSON (as json_size counts).

    Raises ValueError (UnicodeEncodeError for a lone surrogate), TypeError
    (without `default`, json.dumps's) or RecursionError for what cannot be
    encoded.
    """
    name = json.encoder.encode_basestring(key)
    if isinstance(value, str):
        text = json.encoder.encode_basestring(value)
    else:
        text = json.dumps(
            value,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=default,
        )
    return len(name.encode("utf-8")) + 1 + len(text.encode("utf-8"))


def json_size(value: object) -> int:
    """Bytes of a value as compact UTF-8 JSON, the form Segment's size limits count.

    Raises ValueError or RecursionError for what cannot be encoded.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return len(text.encode("utf-8"))


def parse_json(text: str) -> tuple[object | None, JsonError | None]:
    """Parse any JSON text: (value, None) on success, (None, error) otherwise."""
    try:
        value = json.loads(
            text,
            **STRICT_NUMBERS,
        )
    except json.JSONDecodeError as error:
        message = INVALID_JSON.format(
            line=error.lineno, column=error.colno, reason=error.msg
        )
        return None, JsonError(message, error.lineno, error.colno, error.msg)
    except RecursionError:
        reason = TOO_DEEP.format(limit=MAX_DEPTH)
        return None, JsonError(UNREADABLE_JSON.format(reason=reason), 1, 1, reason)
    except ValueError as error:
        # Huge integers and refused numbers fail outside the decoder's grammar,
        # with no position.
        reason = str(error) or type(error).__name__
        if "integer string conversion" in reason:
            reason = NUMBER_TOO_LONG.format(limit=sys.get_int_max_str_digits())
        return None, JsonError(UNREADABLE_JSON.format(reason=reason), 1, 1, reason)
    reason = value_problem(value)
    if reason is not None:
        return None, JsonError(UNREADABLE_JSON.format(reason=reason), 1, 1, reason)
    return value, None


def parse_event_json(text: str) -> tuple[object | None, JsonError | None]:
    """Parse an event's text; an empty editor gets its own message."""
    if not text or not text.strip():
        return None, JsonError(EMPTY_DOCUMENT, 1, 1)
    return parse_json(text)
