"""What the request and response panes show of an attempt: decoded, masked, copyable."""

import shlex
from dataclasses import dataclass

from sandbox.delivery.models import Attempt
from sandbox.delivery.webhook import decode_basic, decode_settings
from sandbox.display import indent_json, mask_authorization, mask_secret, pretty_json


@dataclass(frozen=True)
class RequestPane:
    headers: list[tuple[str, str]]
    api_key_masked: str
    colon_present: bool
    settings_pretty: str
    body_pretty: str


@dataclass(frozen=True)
class ResponsePane:
    headers: list[tuple[str, str]]
    body_pretty: str
    is_json: bool


def request_pane(attempt: Attempt) -> RequestPane:
    headers = []
    api_key_masked = ""
    colon_present = False
    settings_pretty = ""
    for name, value in attempt.request_headers:
        if name.lower() == "authorization":
            credentials = decode_basic(value)
            if credentials is not None:
                colon_present = credentials.endswith(":")
                key = credentials[:-1] if colon_present else credentials
                api_key_masked = mask_secret(key) or "(empty)"
            # The header is the key in base64: masked like the key itself.
            value = mask_authorization(value)
        elif name.lower() == "x-segment-settings":
            decoded = decode_settings(value)
            if decoded is not None:
                settings_pretty = indent_json(decoded)
        headers.append((name, value))
    body, _ = pretty_json(attempt.request_body)
    return RequestPane(headers, api_key_masked, colon_present, settings_pretty, body)


def response_pane(attempt: Attempt) -> ResponsePane:
    body, is_json = pretty_json(attempt.response_body)
    return ResponsePane([tuple(h) for h in attempt.response_headers], body, is_json)


def curl_command(attempt: Attempt) -> str:
    """The attempt as a cURL command, real headers included (the user asked to copy)."""
    lines = [f"curl -X {attempt.request_method} {shlex.quote(attempt.request_url)}"]
    lines += [
        f"-H {shlex.quote(f'{name}: {value}')}"
        for name, value in attempt.request_headers
    ]
    lines.append(f"--data-raw {shlex.quote(attempt.request_body)}")
    return " \\\n  ".join(lines)


@dataclass(frozen=True)
class ChosenAttempt:
    """The one attempt the pane opens: its request and response, decoded."""

    attempt: Attempt
    request: RequestPane
    response: ResponsePane
    is_latest: bool
    # What the attempt says that the delivery's reason above it does not.
    reason: str
    error_message: str


def unsaid(text: str, *said: str) -> str:
    """`text`, or "" when one of `said` already says it: a delivery's reason
    begins with its latest attempt's, and a transport error's reason is its
    message."""
    core = text.strip().rstrip(".")
    return "" if not core or any(core in other for other in said) else text


def chosen_attempt(attempts: list[Attempt], number: int | None) -> Attempt | None:
    """The attempt asked for by its number, else the latest; None before the first."""
    if not attempts:
        return None
    found = next((a for a in attempts if a.number == number), None)
    return found or attempts[-1]


def detail_context(delivery, *, number: int | None = None) -> dict:
    """Everything the delivery-detail partial shows: the timeline of its attempts
    and one of them opened (the latest unless `number` names another).

    Only the opened attempt's request and response are decoded: a delivery with
    ten attempts shows ten timeline rows, not ten copies of the event.
    """
    attempts = delivery.timeline
    attempt = chosen_attempt(attempts, number)
    chosen = None
    if attempt is not None:
        reason = unsaid(attempt.reason, delivery.reason)
        chosen = ChosenAttempt(
            attempt=attempt,
            request=request_pane(attempt),
            response=response_pane(attempt),
            is_latest=attempt is attempts[-1],
            reason=reason,
            error_message=unsaid(
                attempt.error_message, attempt.reason, delivery.reason
            ),
        )
    return {
        "delivery": delivery,
        "attempts": attempts,
        "chosen": chosen,
        # The event itself is shown only while no attempt shows what was sent.
        "payload_pretty": "" if attempts else indent_json(delivery.payload),
    }
