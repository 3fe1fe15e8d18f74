"""How a mock endpoint reads a delivery and words its answers (pure, no Django)."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus

from sandbox.delivery.webhook import decode_basic
from sandbox.spec import parse_json

MISSING_AUTHORIZATION = "Missing Authorization header"
NOT_BASIC_AUTH = "Authorization header must use the Basic scheme"
MALFORMED_BASIC_AUTH = "Authorization header is not valid base64 of 'apiKey:'"
API_KEY_MISMATCH = "API key does not match"
BODY_NOT_UTF8 = "Body is not valid UTF-8"
BODY_NOT_JSON = "Body is not valid JSON: {error} (line {line}, column {column})"
BODY_NOT_OBJECT = "Body must be one JSON object (one event per request)"
UNSUPPORTED_TYPE = "Event type '{event_type}' is not supported"
FAILING_ATTEMPT = "Failing attempt {attempt} of {total} on purpose"
METHOD_NOT_ALLOWED = "Method {method} not allowed; Segment delivers with POST"
UNKNOWN_ENDPOINT = "No mock endpoint with slug '{slug}'"
BODY_TOO_LARGE = (
    "Body of {size} bytes is over the mock's {limit} limit; "
    "Segment sends at most 32 KB per event"
)

JSON_CONTENT_TYPE = "application/json"
SUCCESS_BODY = json.dumps({"success": True})


@dataclass(frozen=True)
class MockAnswer:
    status: int
    body: str
    content_type: str = JSON_CONTENT_TYPE


def message_answer(status: int, message: str) -> MockAnswer:
    """An error answer the way the partner contract asks: JSON with `message`."""
    return MockAnswer(status=status, body=json.dumps({"message": message}))


def default_body(status: int) -> str:
    """What the mock says when the user configured no body for this status."""
    if status < 200 or status in (204, 304):
        # HTTP forbids a body with these statuses.
        return ""
    if status < 300:
        return SUCCESS_BODY
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = f"Mock endpoint answered {status}"
    return json.dumps({"message": reason})


def auth_error(headers: Sequence[Sequence[str]], api_key: str) -> str | None:
    """Why the Basic auth does not carry this key, or None when it does."""
    value = next(
        (value for name, value in headers if name.lower() == "authorization"), None
    )
    if value is None:
        return MISSING_AUTHORIZATION
    value = value.strip()
    if value.partition(" ")[0].lower() != "basic":
        return NOT_BASIC_AUTH
    credentials = decode_basic(value)
    if credentials is None:
        return MALFORMED_BASIC_AUTH
    # Segment always sends "apiKey:", so a missing colon is not what Segment sends.
    if credentials != f"{api_key}:":
        return API_KEY_MISMATCH
    return None


def parse_event(body: bytes) -> tuple[dict | None, str | None]:
    """The event in a request body, or the reason it is not one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None, BODY_NOT_UTF8
    event, error = parse_json(text)
    if error is not None:
        return None, BODY_NOT_JSON.format(
            error=error.reason, line=error.line, column=error.column
        )
    if not isinstance(event, dict):
        return None, BODY_NOT_OBJECT
    return event, None


def event_field(event: dict | None, key: str, max_length: int) -> str:
    """A top-level field as text for recording; empty when absent."""
    value = (event or {}).get(key)
    if value is None:
        return ""
    return str(value)[:max_length]
