"""Fixtures for the mock endpoint tests: endpoints made through services, deliveries."""

import base64
import json

import pytest
from django.urls import reverse

from sandbox.mock.services import mock_endpoint_create

API_KEY = "partner-key-1234"


@pytest.fixture
def api_key() -> str:
    return API_KEY


@pytest.fixture
def basic_auth():
    def basic_auth(key: str, *, colon: bool = True) -> str:
        credentials = f"{key}:" if colon else key
        return "Basic " + base64.b64encode(credentials.encode()).decode("ascii")

    return basic_auth


@pytest.fixture
def make_mock_endpoint():
    def make_mock_endpoint(
        *,
        slug: str = "acme",
        name: str = "Acme webhook",
        api_key: str = API_KEY,
        **behaviour,
    ):
        return mock_endpoint_create(slug=slug, name=name, api_key=api_key, **behaviour)

    return make_mock_endpoint


@pytest.fixture
def make_event():
    def make_event(*, event_type: str = "track", message_id: str = "msg-1", **fields):
        event = {"type": event_type, "messageId": message_id, "event": "Signed Up"}
        return event | fields

    return make_event


@pytest.fixture
def deliver(client, basic_auth, make_event):
    """POST to a mock endpoint the way Segment does, through the real URL and view.

    Leaving out `authorization` sends the endpoint's own key; None sends no header.
    """

    def deliver(endpoint, event=None, *, body=None, authorization=..., headers=None):
        if body is None:
            body = json.dumps(event if event is not None else make_event())
        if authorization is ...:
            authorization = basic_auth(endpoint.api_key)
        sent_headers = {"User-Agent": "Segment.io/1.0", **(headers or {})}
        if authorization is not None:
            sent_headers["Authorization"] = authorization
        return client.post(
            reverse("mock:receive", kwargs={"slug": endpoint.slug}),
            data=body,
            content_type="application/json",
            headers=sent_headers,
        )

    return deliver


@pytest.fixture
def endpoint_form_data():
    def endpoint_form_data(**overrides):
        data = {
            "name": "Acme webhook",
            "slug": "acme",
            "api_key": API_KEY,
            "status_code": "200",
            "response_body": "",
            "delay_ms": "0",
            "fail_first_n": "0",
            "fail_status": "503",
            "unsupported_types": [],
        }
        return data | overrides

    return endpoint_form_data
