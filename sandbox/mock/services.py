"""Writes for mock endpoints, and the answer a mock gives to a delivery."""

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict, Unpack

from django.conf import settings
from django.db import transaction

from sandbox.delivery import broadcast
from sandbox.middleware import megabytes
from sandbox.mock.answers import (
    BODY_TOO_LARGE,
    FAILING_ATTEMPT,
    UNSUPPORTED_TYPE,
    MockAnswer,
    auth_error,
    event_field,
    message_answer,
    parse_event,
)
from sandbox.mock.models import MockEndpoint, MockRequest
from sandbox.mock.selectors import mock_endpoint_get

OVERSIZED_BODY_NOTE = "(body of {size} bytes not kept)"


class MockBehaviour(TypedDict, total=False):
    status_code: int
    delay_ms: int
    fail_first_n: int
    fail_status: int
    unsupported_types: list[str]
    response_body: str


class MockEndpointChanges(MockBehaviour, total=False):
    name: str
    api_key: str


def mock_endpoint_create(
    *, slug: str, name: str, api_key: str, **behaviour: Unpack[MockBehaviour]
) -> MockEndpoint:
    endpoint = MockEndpoint(slug=slug, name=name, api_key=api_key, **behaviour)
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def mock_endpoint_update(
    *, endpoint: MockEndpoint, **fields: Unpack[MockEndpointChanges]
) -> MockEndpoint:
    for name, value in fields.items():
        setattr(endpoint, name, value)
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def mock_endpoint_delete(*, endpoint: MockEndpoint) -> None:
    endpoint.delete()


def mock_endpoint_ensure(*, slug: str, name: str, api_key: str) -> MockEndpoint:
    """The endpoint with this slug, created when missing; an existing one is kept
    exactly as the user configured it."""
    endpoint, _ = MockEndpoint.objects.get_or_create(
        slug=slug, defaults={"name": name, "api_key": api_key}
    )
    return endpoint


def mock_requests_clear(*, endpoint: MockEndpoint) -> int:
    deleted, _ = endpoint.requests.all().delete()
    return deleted


@dataclass(frozen=True)
class Received:
    """A delivery the mock recorded: its answer, and how long to wait first."""

    answer: MockAnswer
    delay_ms: int


def mock_request_receive(
    *,
    slug: str,
    method: str,
    headers: Iterable[tuple[str, str]],
    body: bytes | None,
    size: int = 0,
) -> Received | None:
    """One delivery to the mock endpoint `slug`, recorded and answered by its
    behaviour; None when no endpoint has that slug. `body` is None when it was
    over the limit (`size` bytes) and not read: that is recorded and refused.

    The whole of a request's database work, in one call: the mock's doors (the
    ASGI front, sandbox.mock.receiver, and the view) make one switch to a
    database thread per request. The delay is not applied here: the caller
    waits without holding a thread.
    """
    endpoint = mock_endpoint_get(slug=slug)
    if endpoint is None:
        return None
    if body is None:
        limit = megabytes(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        answer = mock_request_record_oversized(
            endpoint=endpoint,
            method=method,
            headers=headers,
            size=size,
            message=BODY_TOO_LARGE.format(size=size, limit=limit),
        )
    else:
        answer = mock_request_handle(
            endpoint=endpoint, method=method, headers=headers, body=body
        )
    return Received(answer, endpoint.delay_ms)


def mock_request_handle(
    *,
    endpoint: MockEndpoint,
    method: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
) -> MockAnswer:
    """Record one received request and answer it by the endpoint's behaviour.

    The delay is not applied here: the async view sleeps, so no thread waits.
    """
    header_pairs = [[name, value] for name, value in headers]
    unauthorised = auth_error(header_pairs, endpoint.api_key)
    event, malformed = parse_event(body)
    message_id = event_field(event, "messageId", 255)
    event_type = event_field(event, "type", 32)

    with transaction.atomic():
        # Locking the endpoint row serialises concurrent retries of one messageId
        # (SQLite's IMMEDIATE transactions already do), and reads the behaviour as
        # it is now rather than as the caller loaded it.
        endpoint = MockEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if unauthorised:
            answer = message_answer(401, unauthorised)
        elif malformed:
            answer = message_answer(400, malformed)
        elif event_type in endpoint.unsupported_types:
            answer = message_answer(501, UNSUPPORTED_TYPE.format(event_type=event_type))
        else:
            answer = _configured_answer(endpoint=endpoint, message_id=message_id)
        recorded = MockRequest.objects.create(
            endpoint=endpoint,
            method=method,
            headers=header_pairs,
            body=body.decode("utf-8", errors="replace"),
            message_id=message_id,
            event_type=event_type,
            response_status=answer.status,
            response_body=answer.body,
            auth_ok=not unauthorised,
        )
        _announce(recorded)
    return answer


def mock_request_record_oversized(
    *,
    endpoint: MockEndpoint,
    method: str,
    headers: Iterable[tuple[str, str]],
    size: int,
    message: str,
) -> MockAnswer:
    """Record a request whose body was too large to read, and answer it with 413.

    The body itself is not kept; the row says how large it was.
    """
    header_pairs = [[name, value] for name, value in headers]
    answer = message_answer(413, message)
    recorded = MockRequest.objects.create(
        endpoint=endpoint,
        method=method,
        headers=header_pairs,
        body=OVERSIZED_BODY_NOTE.format(size=size),
        response_status=answer.status,
        response_body=answer.body,
        auth_ok=not auth_error(header_pairs, endpoint.api_key),
    )
    _announce(recorded)
    return answer


def _announce(recorded: MockRequest) -> None:
    """The endpoint's open pages show the request once it is committed."""
    transaction.on_commit(
        functools.partial(
            broadcast.mock_request_recorded,
            endpoint_id=recorded.endpoint_id,
            request_id=recorded.pk,
        )
    )


def _configured_answer(*, endpoint: MockEndpoint, message_id: str) -> MockAnswer:
    # Without a messageId a retry cannot be told from a new event: nothing to count.
    if endpoint.fail_first_n and message_id:
        earlier = endpoint.requests.filter(message_id=message_id, auth_ok=True).count()
        if earlier < endpoint.fail_first_n:
            return message_answer(
                endpoint.fail_status,
                FAILING_ATTEMPT.format(
                    attempt=earlier + 1, total=endpoint.fail_first_n
                ),
            )
    return MockAnswer(
        status=endpoint.status_code,
        body=endpoint.answer_body,
    )
