"""Parsing the JSON text a user types or pastes, with errors that point at the spot."""

import json
from dataclasses import dataclass, field

EMPTY_DOCUMENT = (
    'The event is empty. Write or paste a JSON object, such as {"type": "track"}.'
)
INVALID_JSON = "Invalid JSON at line {line}, column {column}: {reason}"
UNREADABLE_JSON = "Invalid JSON: {reason}"


@dataclass(frozen=True)
class JsonError:
    message: str
    line: int  # 1-based, like an editor's
    column: int  # 1-based, like an editor's
    # The decoder's own words, for callers that phrase their own message.
    reason: str = field(default="", compare=False)


def parse_json(text: str) -> tuple[object | None, JsonError | None]:
    """Parse any JSON text: (value, None) on success, (None, error) otherwise."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        message = INVALID_JSON.format(
            line=error.lineno, column=error.colno, reason=error.msg
        )
        return None, JsonError(message, error.lineno, error.colno, error.msg)
    except (ValueError, RecursionError) as error:
        # Huge integers and absurd nesting fail outside the decoder, with no position.
        reason = str(error) or type(error).__name__
        return None, JsonError(UNREADABLE_JSON.format(reason=reason), 1, 1, reason)


def parse_event_json(text: str) -> tuple[object | None, JsonError | None]:
    """Parse an event's text; an empty editor gets its own message."""
    if not text or not text.strip():
        return None, JsonError(EMPTY_DOCUMENT, 1, 1)
    return parse_json(text)
