"""Parsing the JSON text a user types or pastes, with errors that point at the spot."""

import json
from dataclasses import dataclass

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


def parse_event_json(text: str) -> tuple[object | None, JsonError | None]:
    """Parse text as JSON: (value, None) on success, (None, error) otherwise."""
    if not text or not text.strip():
        return None, JsonError(EMPTY_DOCUMENT, 1, 1)
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        message = INVALID_JSON.format(
            line=error.lineno, column=error.colno, reason=error.msg
        )
        return None, JsonError(message, error.lineno, error.colno)
    except (ValueError, RecursionError) as error:
        # Huge integers and absurd nesting fail outside the decoder, with no position.
        return None, JsonError(UNREADABLE_JSON.format(reason=error), 1, 1)
