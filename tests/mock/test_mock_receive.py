"""The mock endpoint over HTTP: /mock/<slug>/ answering deliveries like a partner."""

import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from sandbox.mock.answers import (
    API_KEY_MISMATCH,
    BODY_TOO_LARGE,
    FAILING_ATTEMPT,
    METHOD_NOT_ALLOWED,
    MISSING_AUTHORIZATION,
    UNKNOWN_ENDPOINT,
    UNSUPPORTED_TYPE,
)
from sandbox.mock.models import MockRequest
from sandbox.mock.services import OVERSIZED_BODY_NOTE


@pytest.mark.django_db
def test_receive_accepts_segment_auth(make_mock_endpoint, deliver):
    response = deliver(make_mock_endpoint())
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"success": True}


@pytest.mark.django_db
def test_receive_wrong_key(make_mock_endpoint, deliver, basic_auth):
    response = deliver(make_mock_endpoint(), authorization=basic_auth("wrong"))
    assert response.status_code == 401
    assert response.json() == {"message": API_KEY_MISMATCH}


@pytest.mark.django_db
def test_receive_missing_authorization(make_mock_endpoint, deliver):
    response = deliver(make_mock_endpoint(), authorization=None)
    assert response.status_code == 401
    assert response.json() == {"message": MISSING_AUTHORIZATION}


@pytest.mark.django_db
def test_receive_configured_status_and_body(make_mock_endpoint, deliver):
    endpoint = make_mock_endpoint(status_code=403, response_body='{"message": "no"}')
    response = deliver(endpoint)
    assert response.status_code == 403
    assert response.json() == {"message": "no"}


@pytest.mark.django_db
def test_receive_fails_first_n_then_succeeds(make_mock_endpoint, deliver, make_event):
    endpoint = make_mock_endpoint(fail_first_n=2)
    event = make_event(message_id="m-1")
    statuses = [deliver(endpoint, event).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    retry = deliver(endpoint, make_event(message_id="m-2"))
    assert retry.status_code == 503
    assert retry.json() == {"message": FAILING_ATTEMPT.format(attempt=1, total=2)}


@pytest.mark.django_db
def test_receive_unsupported_type(make_mock_endpoint, deliver, make_event):
    endpoint = make_mock_endpoint(unsupported_types=["group"])
    response = deliver(endpoint, make_event(event_type="group"))
    assert response.status_code == 501
    assert response.json() == {"message": UNSUPPORTED_TYPE.format(event_type="group")}


@pytest.mark.django_db
def test_receive_invalid_json(make_mock_endpoint, deliver):
    response = deliver(make_mock_endpoint(), body="{not json")
    assert response.status_code == 400
    assert "line 1, column 2" in response.json()["message"]


@pytest.mark.django_db
def test_receive_records_headers_in_order(make_mock_endpoint, deliver, basic_auth):
    endpoint = make_mock_endpoint()
    deliver(endpoint, headers={"X-Segment-Settings": "e30="})
    recorded = MockRequest.objects.get()
    names = [name for name, _ in recorded.headers]
    assert names.index("User-Agent") < names.index("X-Segment-Settings")
    assert ["Authorization", basic_auth(endpoint.api_key)] in recorded.headers
    assert recorded.method == "POST"
    assert recorded.auth_ok


@pytest.mark.django_db
def test_receive_records_every_request(make_mock_endpoint, deliver):
    endpoint = make_mock_endpoint()
    deliver(endpoint)
    deliver(endpoint, authorization=None)
    deliver(endpoint, body="nope")
    assert sorted(MockRequest.objects.values_list("response_status", flat=True)) == [
        200,
        400,
        401,
    ]


@pytest.mark.django_db
def test_receive_get_is_not_allowed(client, make_mock_endpoint):
    endpoint = make_mock_endpoint()
    response = client.get(reverse("mock:receive", kwargs={"slug": endpoint.slug}))
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == {"message": METHOD_NOT_ALLOWED.format(method="GET")}
    assert not MockRequest.objects.exists()


@pytest.mark.django_db
def test_receive_unknown_slug(client):
    response = client.post(
        reverse("mock:receive", kwargs={"slug": "nobody"}),
        data="{}",
        content_type="application/json",
    )
    assert response.status_code == 404
    assert response.json() == {"message": UNKNOWN_ENDPOINT.format(slug="nobody")}


@pytest.mark.django_db
def test_receive_without_trailing_slash(client, make_mock_endpoint, basic_auth):
    endpoint = make_mock_endpoint()
    response = client.post(
        f"/mock/{endpoint.slug}",
        data="{}",
        content_type="application/json",
        headers={"Authorization": basic_auth(endpoint.api_key)},
    )
    assert response.status_code == 200


@pytest.mark.django_db
def test_receive_needs_no_csrf_token(make_mock_endpoint, basic_auth):
    endpoint = make_mock_endpoint()
    response = Client(enforce_csrf_checks=True).post(
        reverse("mock:receive", kwargs={"slug": endpoint.slug}),
        data="{}",
        content_type="application/json",
        headers={"Authorization": basic_auth(endpoint.api_key)},
    )
    assert response.status_code == 200


@pytest.mark.django_db
def test_receive_waits_for_the_delay(make_mock_endpoint, deliver):
    endpoint = make_mock_endpoint(delay_ms=150)
    started = time.monotonic()
    response = deliver(endpoint)
    assert time.monotonic() - started >= 0.15
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_receive_under_asgi(async_client, make_mock_endpoint, basic_auth):
    endpoint = await sync_to_async(make_mock_endpoint)()
    response = await async_client.post(
        reverse("mock:receive", kwargs={"slug": endpoint.slug}),
        data=json.dumps({"type": "identify", "messageId": "a-1"}),
        content_type="application/json",
        headers={"Authorization": basic_auth(endpoint.api_key)},
    )
    assert response.status_code == 200
    recorded = await MockRequest.objects.aget()
    assert (recorded.event_type, recorded.message_id) == ("identify", "a-1")


def _oversized_event() -> str:
    return json.dumps({"type": "track", "event": "x" * (3 * 1024 * 1024)})


def _assert_oversized_answer(response, size: int) -> None:
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "message": BODY_TOO_LARGE.format(size=size, limit="2.5 MB")
    }


@pytest.mark.django_db
def test_receive_oversized_body_is_answered_and_recorded(make_mock_endpoint, deliver):
    endpoint = make_mock_endpoint()
    body = _oversized_event()
    response = deliver(endpoint, body=body)
    _assert_oversized_answer(response, len(body))
    recorded = MockRequest.objects.get()
    assert recorded.response_status == 413
    assert json.loads(recorded.response_body) == response.json()
    assert recorded.body == OVERSIZED_BODY_NOTE.format(size=len(body))
    assert recorded.auth_ok is True
    assert ["User-Agent", "Segment.io/1.0"] in recorded.headers


@pytest.mark.django_db
def test_receive_oversized_body_needs_no_csrf_token(make_mock_endpoint, basic_auth):
    endpoint = make_mock_endpoint()
    body = _oversized_event()
    response = Client(enforce_csrf_checks=True).post(
        reverse("mock:receive", kwargs={"slug": endpoint.slug}),
        data=body,
        content_type="application/json",
        headers={"Authorization": basic_auth("wrong-key")},
    )
    _assert_oversized_answer(response, len(body))
    assert MockRequest.objects.get().auth_ok is False


@pytest.mark.django_db(transaction=True)
async def test_receive_oversized_body_under_asgi(
    async_client, make_mock_endpoint, basic_auth
):
    endpoint = await sync_to_async(make_mock_endpoint)()
    body = _oversized_event()
    response = await async_client.post(
        reverse("mock:receive", kwargs={"slug": endpoint.slug}),
        data=body,
        content_type="application/json",
        headers={"Authorization": basic_auth(endpoint.api_key)},
    )
    _assert_oversized_answer(response, len(body))
    recorded = await MockRequest.objects.aget()
    assert recorded.response_status == 413
