"""What the composer shows about the JSON being edited (pure apart from the spec)."""

import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field

from sandbox import spec
from sandbox.display import indent_json
from sandbox.spec.json_text import INVALID_JSON, MAX_DEPTH

DUPLICATE_KEY = "key {key} appears {times} in {where}; Segment keeps only one, the last"
MORE_DUPLICATE_KEYS = "…and {count:,} more repeated keys"
THE_EVENT = "the event"
# A paste with thousands of repeated keys lists only the first few.
MAX_DUPLICATE_WARNINGS = 10
_KEY_SHOWN = 60

# context.library.name as each source's SDKs report it: the sources' own
# libraries (analytics.js by its version's form), then older and other libraries.
_LIBRARY_SOURCES = {
    "analytics-next": "analytics.js",
    "analytics-ios": "ios",
    "analytics-android": "android",
    "analytics-ruby": "server",
    "analytics-go": "server",
    "analytics-java": "server",
    "analytics-php": "server",
    "analytics.NET": "server",
    **{library.name: key for key, library in reversed(spec.LIBRARIES.items())},
}
_NPM_VERSION = "npm:"


# One token of JSON text, enough to find what the decoder refused without
# saying where: strings (possessive, so an unterminated one cannot backtrack),
# brackets, the non-numbers and numbers.
_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*+"?|[\[{]|[\]}]|-?(?:NaN|Infinity)\b|-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?',
    re.S,
)
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\.", re.S)
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Position:
    """Where in the editor: 1-based line, and column in UTF-16 code units as the
    browser's editor counts them (an emoji is two)."""

    line: int
    column: int


@dataclass(frozen=True)
class DuplicateKey:
    """A key written more than once in one object; JSON readers keep the last."""

    path: str  # the object holding the key; "" for the event itself
    key: str
    count: int

    @property
    def message(self) -> str:
        key = json.dumps(self.key, ensure_ascii=False)
        if len(key) > _KEY_SHOWN:
            key = key[: _KEY_SHOWN - 2] + "…" + key[-1]
        times = "twice" if self.count == 2 else f"{self.count:,} times"
        return DUPLICATE_KEY.format(key=key, times=times, where=self.path or THE_EVENT)


@dataclass(frozen=True)
class Check:
    json_error: spec.JsonError | None = None
    # Where the editor marks json_error.
    error_at: Position | None = None
    problems: list[spec.Problem] = field(default_factory=list)
    # Warnings: the event can still be sent as it is.
    warnings: list[spec.Problem] = field(default_factory=list)
    duplicates: list[DuplicateKey] = field(default_factory=list)
    more_duplicates: int = 0
    size_bytes: int = 0
    # What the Type, Source and Semantic event selects should show for this
    # event; None leaves a select as it is.
    event_type: str | None = None
    source: str | None = None
    template: str | None = None

    @property
    def ok(self) -> bool:
        return self.json_error is None and not self.problems

    @property
    def more_duplicates_message(self) -> str:
        return MORE_DUPLICATE_KEYS.format(count=self.more_duplicates)


def check_text(text: str) -> Check:
    """Invalid JSON first (with where to mark it), then the Spec's problems and
    the keys written twice."""
    event, error = spec.parse_event_json(text)
    if error is not None:
        return Check(json_error=error, error_at=error_position(text, error))
    duplicates = duplicate_keys(text)
    try:
        # The size the send checks against the limit: what the client sent.
        size = spec.event_size(event)
    except (ValueError, RecursionError):
        size = spec.json_size(event)
    return Check(
        problems=spec.validate_event(event),
        warnings=spec.event_warnings(event),
        duplicates=duplicates[:MAX_DUPLICATE_WARNINGS],
        more_duplicates=max(0, len(duplicates) - MAX_DUPLICATE_WARNINGS),
        size_bytes=size,
        **event_selects(event),
    )


def editor_text(event: object) -> str:
    """The event as the editor shows it."""
    return indent_json(event)


def event_selects(event: object) -> dict[str, str | None]:
    """The type, source and semantic event that describe an event, for the
    composer's selects: each None when the event does not say."""
    if not isinstance(event, dict):
        return {"event_type": None, "source": None, "template": None}
    event_type = event.get("type")
    context = event.get("context")
    library = context.get("library") if isinstance(context, dict) else None
    library_name = library.get("name") if isinstance(library, dict) else None
    source = (
        _LIBRARY_SOURCES.get(library_name) if isinstance(library_name, str) else None
    )
    version = library.get("version") if isinstance(library, dict) else None
    if source == "analytics.js" and str(version).startswith(_NPM_VERSION):
        source = "analytics.js-npm"
    name = event.get("event")
    template = ""
    if event_type == "track" and isinstance(name, str) and name in spec.TEMPLATES:
        template = name
    return {
        "event_type": event_type if event_type in spec.EVENT_TYPES else None,
        "source": source if source in spec.SOURCES else None,
        "template": template,
    }


class _Repeats(dict):
    """An object in which some key was written more than once."""

    repeated: dict[str, int]


def _object(pairs: list[tuple[str, object]]) -> dict:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    value = _Repeats(pairs)
    value.repeated = {
        key: count for key, count in Counter(k for k, _ in pairs).items() if count > 1
    }
    return value


def duplicate_keys(text: str) -> list[DuplicateKey]:
    """Every key written twice or more in one object of valid JSON text, in
    the order they appear."""
    try:
        value = json.loads(text, object_pairs_hook=_object)
    except (ValueError, RecursionError):
        return []
    found = []
    stack: list[tuple[object, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, _Repeats):
            found += [
                DuplicateKey(path, key, count) for key, count in item.repeated.items()
            ]
        if isinstance(item, dict):
            children = [
                (child, f"{path}.{key}" if path else key) for key, child in item.items()
            ]
        elif isinstance(item, list):
            children = [(child, f"{path}[{i}]") for i, child in enumerate(item)]
        else:
            continue
        stack += reversed(children)
    return found


def error_position(text: str, error: spec.JsonError) -> Position:
    """Where to mark a JSON error in the editor.

    The decoder says where its grammar broke. What it refused for other reasons
    (NaN, a number too large, a lone surrogate, too deep) comes without a place,
    so the first such token is looked for; failing that, the start.
    """
    positioned = error.message == INVALID_JSON.format(
        line=error.line, column=error.column, reason=error.reason
    )
    if positioned:
        lines = text.split("\n")
        line = lines[error.line - 1] if error.line <= len(lines) else ""
        return Position(error.line, _utf16_length(line[: error.column - 1]) + 1)
    offset = _refused_token(text)
    if offset is None:
        return Position(1, 1)
    start = text.rfind("\n", 0, offset) + 1
    return Position(
        text.count("\n", 0, offset) + 1, _utf16_length(text[start:offset]) + 1
    )


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _refused_token(text: str) -> int | None:
    """The offset of the first token JSON readers here refuse, or None."""
    depth = 0
    max_digits = sys.get_int_max_str_digits()
    for match in _TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        if first in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif first in "]}":
            depth -= 1
        elif first == '"':
            if _has_lone_surrogate(token):
                return match.start()
        elif token.lstrip("-")[0] in "NI" or _unreadable_number(token, max_digits):
            return match.start()
    return None


def _unreadable_number(token: str, max_digits: int) -> bool:
    if "." not in token and "e" not in token.lower():
        return max_digits > 0 and len(token.lstrip("-")) > max_digits
    try:
        return float(token) in (float("inf"), float("-inf"))
    except ValueError:
        return False


def _has_lone_surrogate(token: str) -> bool:
    if _SURROGATE.search(token):
        return True
    # (code unit or None for another escape, where it starts, where it ends)
    escapes = [
        (int(m.group(1), 16) if m.group(1) else None, m.start(), m.end())
        for m in _ESCAPE.finditer(token)
    ]
    index = 0
    while index < len(escapes):
        unit, _, end = escapes[index]
        if unit is not None and 0xD800 <= unit <= 0xDBFF:
            following = escapes[index + 1] if index + 1 < len(escapes) else None
            paired = (
                following is not None
                and following[1] == end
                and following[0] is not None
                and 0xDC00 <= following[0] <= 0xDFFF
            )
            if not paired:
                return True
            index += 2
            continue
        if unit is not None and 0xDC00 <= unit <= 0xDFFF:
            return True
        index += 1
    return False
