"""Segment's subscription webhook request and its reading of the answer (pure)."""

import base64
import json
from dataclasses import dataclass

from sandbox.display import mask_secret_in, safe_text

USER_AGENT = "Segment.io/1.0"

GREEN = "green"
YELLOW = "yellow"
RED = "red"


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


class BodyEncoder(json.JSONEncoder):
    """The event as compact JSON, as Segment sends it; deliveries store their
    event in this form too, so the stored text is the body (see body_of_text)."""

    def __init__(self, **kwargs):
        kwargs.update(separators=(",", ":"), ensure_ascii=False)
        super().__init__(**kwargs)


_BODY = BodyEncoder()
# Any text with fewer brackets than this is shallower than Python's decoder goes.
_SHALLOW = 500


def encode_body(event: object) -> bytes:
    """The event as compact UTF-8 JSON, one event per request as Segment sends it."""
    return _BODY.encode(event).encode()


def body_of_text(text: str) -> bytes:
    """The body for an event stored as JSON text by BodyEncoder: the text itself.

    Text with a \\u escape (it may spell a lone surrogate) or many brackets is
    decoded and encoded again, so what cannot travel raises here, before sending.
    """
    if "\\u" not in text and text.count("{") + text.count("[") < _SHALLOW:
        return text.encode()
    return encode_body(json.loads(text))


def authorization_value(api_key: str) -> str:
    # Segment always sends the colon, even though the password part is empty.
    token = base64.b64encode(f"{api_key}:".encode()).decode("ascii")
    return f"Basic {token}"


def settings_value(custom_settings: dict) -> str:
    settings = {k: v for k, v in custom_settings.items() if k != "apiKey"}
    raw = json.dumps(settings, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(raw.encode()).decode("ascii")


def build_request(
    *, url: str, api_key: str, custom_settings: dict, event: object
) -> WebhookRequest:
    """Exactly the headers of segment-reference.md section 9, in that order."""
    return request_for(
        url=url,
        authorization=authorization_value(api_key),
        settings_header=settings_value(custom_settings),
        body=encode_body(event),
    )


def request_for(
    *, url: str, authorization: str, settings_header: str, body: bytes
) -> WebhookRequest:
    """The request with its target's two encoded headers given (a sender encodes
    them once per target, not once per event)."""
    headers = [
        ("Accept", "*/*"),
        ("Authorization", authorization),
        ("Cache-Control", "no-cache"),
        ("Connection", "Keep-Alive"),
        ("Content-Length", str(len(body))),
        ("Content-Type", "application/json"),
        ("User-Agent", USER_AGENT),
        ("X-Segment-Settings", settings_header),
    ]
    return WebhookRequest(method="POST", url=url, headers=headers, body=body)


def decode_basic(value: str) -> str | None:
    """The `user:password` text inside a Basic header, or None when it is not one."""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        return base64.b64decode(token, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def decode_settings(value: str) -> object | None:
    try:
        return json.loads(base64.b64decode(value, validate=True))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


# Segment's reading of a partner's status codes (segment-reference.md 6.3).
STATUS_READINGS = {
    200: "processed",
    201: "processed",
    202: "accepted, not processed yet",
    204: "processed",
    400: "the endpoint says the event is malformed",
    401: "the endpoint says the API key is invalid or expired",
    403: "the endpoint says the API key lacks permission",
    404: "the endpoint URL was not found",
    408: "the endpoint timed out reading the request",
    410: "the endpoint says it is gone",
    429: "the endpoint is rate limiting",
    500: "internal error at the endpoint",
    501: "unsupported event type",
    502: "bad gateway in front of the endpoint",
    503: "the endpoint is temporarily down",
    504: "gateway timeout in front of the endpoint",
}

# Statuses that Segment retries (segment-reference.md section 9).
RETRYABLE_4XX = frozenset({408, 410, 429, 460})
FINAL_5XX = frozenset({501, 505, 511})


@dataclass(frozen=True)
class Verdict:
    outcome: str
    reason: str
    retryable: bool


def status_reading(status: int) -> str:
    if status in STATUS_READINGS:
        return STATUS_READINGS[status]
    if 200 <= status < 300:
        return "processed"
    if 300 <= status < 400:
        return "redirect: Segment does not follow redirects"
    if 400 <= status < 500:
        return "the endpoint rejected the event"
    return "the endpoint failed"


def is_retryable_status(status: int) -> bool:
    if status in RETRYABLE_4XX:
        return True
    return 500 <= status < 600 and status not in FINAL_5XX


def classify_status(status: int, *, message: str = "") -> Verdict:
    """Outcome class as the Dev Center Test Suite colours it, with the reason."""
    reading = f"{status_reading(status)} ({status})"
    if message:
        reading = f"{reading}: {message}"
    if 200 <= status < 300:
        return Verdict(GREEN, reading, retryable=False)
    if status == 501:
        return Verdict(YELLOW, reading, retryable=False)
    return Verdict(RED, reading, retryable=is_retryable_status(status))


def classify_error(sentence: str, *, retryable: bool = True) -> Verdict:
    """Transport errors (timeouts, refused, reset, DNS, TLS) are red and retryable."""
    return Verdict(RED, sentence, retryable=retryable)


def error_message(body: str, content_type: str, *, secret: str = "") -> str:
    """The `message` of a JSON error body, which Segment shows in its debugger;
    the key it was sent masked before the message is cut to length, so a key
    across the cut is masked too."""
    if "json" not in content_type.lower() and not body.lstrip().startswith("{"):
        return ""
    if "message" not in body and "\\u" not in body:
        # No member named so, not even spelled with escapes (most answers):
        # nothing to parse.
        return ""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        # An endpoint's answer may be anything, absurdly nested JSON included.
        return ""
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return safe_text(mask_secret_in(parsed["message"], secret)[:300])
    return ""
