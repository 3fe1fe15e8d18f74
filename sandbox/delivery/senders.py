"""A sender per target kind: prepare the request, send it, read the answer.

The engine is only the loop (claim, hand each row to its kind's sender, record).
A sender prepares what is written ahead on the attempt before anything leaves,
sends it, and reads what came back into a verdict. The webhook is the first kind;
another kind (a subscription function) registers its own sender and the loop does
not change.
"""

import json
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from django.conf import settings
from django.utils import timezone

from sandbox.delivery import retry, transport, webhook
from sandbox.delivery.models import Delivery, DeliveryTarget, TargetKind
from sandbox.display import mask_secret_in

NO_SENDER = "no sender for targets of kind {kind!r}"
# Stands for the Content-Length value in a target's stored header list.
_GAP = "\x00"


@dataclass(frozen=True)
class Prepared:
    """The attempt's request, written ahead: what will be sent, exactly."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    # The headers as the attempt row stores them ([[name, value], ...] in JSON),
    # when the sender has them already encoded; the queue encodes them otherwise.
    headers_json: str = ""


@dataclass
class Answer:
    """What the sender read from the exchange: the response shown on the attempt,
    Segment's verdict on it, and any further exchanges the attempt made."""

    exchange: transport.Exchange
    verdict: webhook.Verdict
    retry_after: float | None = None
    more_exchanges: list[dict] = field(default_factory=list)
    # A function's run: handler, Callback Return, Log Output, error, duration.
    invocation: dict = field(default_factory=dict)


class Sender(Protocol):
    def prepare(self, *, target: DeliveryTarget, event_text: str) -> Prepared:
        """The request for the event stored as `event_text` (JSON); raises
        when it cannot be built, and the delivery then ends alone."""
        ...

    def body_text(self, event: object) -> str: ...

    async def send(
        self,
        session: aiohttp.ClientSession,
        *,
        prepared: Prepared,
        target: DeliveryTarget,
    ) -> Answer: ...


class WebhookSender:
    """Segment's subscription webhook: one POST of the event, Basic auth with the
    API key, the settings in a header (segment-reference.md section 9)."""

    def __init__(self):
        # Target rows never change: their encoded headers are made once, and so
        # is the stored form of the header list, with a gap for Content-Length.
        self._headers: dict[str, tuple[str, str, str, str]] = {}

    def _target_headers(self, target: DeliveryTarget) -> tuple[str, str, str, str]:
        found = self._headers.get(target.content_key)
        if found is None:
            authorization = webhook.authorization_value(target.api_key)
            settings_header = webhook.settings_value(target.custom_settings or {})
            template = webhook.request_for(
                url=target.endpoint_url,
                authorization=authorization,
                settings_header=settings_header,
                body=b"",
            ).headers
            stored = json.dumps(
                [[n, _GAP if n == "Content-Length" else v] for n, v in template],
                ensure_ascii=False,
            )
            before, after = stored.split(json.dumps(_GAP), 1)
            found = (authorization, settings_header, before, after)
            if target.content_key:
                self._headers[target.content_key] = found
        return found

    def prepare(self, *, target: DeliveryTarget, event_text: str) -> Prepared:
        authorization, settings_header, before, after = self._target_headers(target)
        request = webhook.request_for(
            url=target.endpoint_url,
            authorization=authorization,
            settings_header=settings_header,
            body=webhook.body_of_text(event_text),
        )
        return Prepared(
            request.method,
            request.url,
            request.headers,
            request.body,
            headers_json=f'{before}"{len(request.body)}"{after}',
        )

    def body_text(self, event: object) -> str:
        return webhook.encode_body(event).decode()

    async def send(
        self,
        session: aiohttp.ClientSession,
        *,
        prepared: Prepared,
        target: DeliveryTarget,
    ) -> Answer:
        exchange = await transport.send(
            session,
            webhook.WebhookRequest(
                prepared.method, prepared.url, prepared.headers, prepared.body
            ),
            timeout=target.timeout_seconds,
            body_limit=settings.RESPONSE_BODY_LIMIT,
        )
        return Answer(
            exchange=exchange,
            verdict=verdict_for(exchange, secret=target.api_key),
            retry_after=retry_after(exchange),
        )


def verdict_for(exchange: transport.Exchange, *, secret: str = "") -> webhook.Verdict:
    """What the answer means; the endpoint's message quoted with the key it was
    sent masked, should it echo it (the reason shows in every list)."""
    if exchange.error_kind:
        return webhook.classify_error(
            exchange.error_message, retryable=exchange.error_kind != "invalid_url"
        )
    message = webhook.error_message(exchange.body, exchange.content_type, secret=secret)
    location = ""
    if 300 <= exchange.status < 400:
        location = next((v for k, v in exchange.headers if k.lower() == "location"), "")
    if not location:
        return webhook.classify_status(exchange.status, message=message)
    # Where the redirect pointed, then what the endpoint said.
    bare = webhook.classify_status(exchange.status)
    reason = f"{bare.reason} to {mask_secret_in(location, secret)}"
    if message:
        reason = f"{reason}: {message}"
    return webhook.Verdict(bare.outcome, reason, bare.retryable)


def retry_after(exchange: transport.Exchange) -> float | None:
    found = None
    for name, value in exchange.headers:
        if name.lower() == "retry-after":
            found = retry.parse_retry_after(value, now=timezone.now())
    return found


_senders: dict[str, Sender] = {TargetKind.WEBHOOK: WebhookSender()}


def register(kind: str, sender: Sender) -> None:
    """Add the sender for a kind of target."""
    _senders[kind] = sender


def sender_for(kind: str) -> Sender:
    try:
        return _senders[kind]
    except KeyError:
        raise LookupError(NO_SENDER.format(kind=kind)) from None


def request_body(delivery: Delivery) -> str:
    """The body an attempt of this delivery sent: its event, encoded as it went."""
    return sender_for(delivery.target.kind).body_text(delivery.payload)
