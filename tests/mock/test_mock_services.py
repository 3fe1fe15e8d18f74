"""Mock endpoint services: configuration writes and how a mock answers a delivery."""

import json

import pytest
from django.core.exceptions import ValidationError

from sandbox.delivery import webhook
from sandbox.mock.answers import (
    API_KEY_MISMATCH,
    BODY_NOT_JSON,
    FAILING_ATTEMPT,
    MISSING_AUTHORIZATION,
    UNSUPPORTED_TYPE,
)
from sandbox.mock.models import (
    DELAY_RANGE,
    RESERVED_SLUG,
    STATUS_CODE_RANGE,
    MockEndpoint,
    MockRequest,
)
from sandbox.mock.services import (
    mock_endpoint_delete,
    mock_endpoint_ensure,
    mock_endpoint_update,
    mock_request_handle,
    mock_requests_clear,
)


@pytest.fixture
def handle(basic_auth, make_event):
    def handle(endpoint, event=None, *, body=None, authorization=...):
        if body is None:
            body = json.dumps(event if event is not None else make_event()).encode()
        if authorization is ...:
            authorization = basic_auth(endpoint.api_key)
        headers = [("Content-Type", "application/json")]
        if authorization is not None:
            headers.append(("Authorization", authorization))
        return mock_request_handle(
            endpoint=endpoint, method="POST", headers=headers, body=body
        )

    return handle


@pytest.mark.django_db
def test_mock_request_handle_default_success(make_mock_endpoint, handle):
    answer = handle(make_mock_endpoint())
    assert answer.status == 200
    assert json.loads(answer.body) == {"success": True}
    assert answer.content_type == "application/json"


@pytest.mark.django_db
def test_mock_request_handle_wrong_key(make_mock_endpoint, handle, basic_auth):
    answer = handle(make_mock_endpoint(), authorization=basic_auth("other-key"))
    assert answer.status == 401
    assert json.loads(answer.body) == {"message": API_KEY_MISMATCH}


@pytest.mark.django_db
def test_mock_request_handle_missing_authorization(make_mock_endpoint, handle):
    answer = handle(make_mock_endpoint(), authorization=None)
    assert answer.status == 401
    assert json.loads(answer.body) == {"message": MISSING_AUTHORIZATION}


@pytest.mark.django_db
def test_mock_request_handle_auth_checked_before_body(make_mock_endpoint, handle):
    answer = handle(make_mock_endpoint(), body=b"not json", authorization=None)
    assert answer.status == 401


@pytest.mark.django_db
def test_mock_request_handle_configured_status_and_body(make_mock_endpoint, handle):
    endpoint = make_mock_endpoint(status_code=202, response_body='{"queued": 1}')
    answer = handle(endpoint)
    assert answer.status == 202
    assert answer.body == '{"queued": 1}'


@pytest.mark.django_db
def test_mock_request_handle_default_body_for_error_status(make_mock_endpoint, handle):
    answer = handle(make_mock_endpoint(status_code=500))
    assert answer.status == 500
    assert json.loads(answer.body) == {"message": "Internal Server Error"}


@pytest.mark.django_db
def test_mock_request_handle_fails_first_n_then_succeeds(
    make_mock_endpoint, handle, make_event
):
    endpoint = make_mock_endpoint(fail_first_n=2, fail_status=500)
    event = make_event(message_id="retry-me")
    answers = [handle(endpoint, event) for _ in range(3)]
    assert [answer.status for answer in answers] == [500, 500, 200]
    assert json.loads(answers[0].body) == {
        "message": FAILING_ATTEMPT.format(attempt=1, total=2)
    }
    assert json.loads(answers[1].body) == {
        "message": FAILING_ATTEMPT.format(attempt=2, total=2)
    }


@pytest.mark.django_db
def test_mock_request_handle_other_message_id_starts_over(
    make_mock_endpoint, handle, make_event
):
    endpoint = make_mock_endpoint(fail_first_n=1)
    assert handle(endpoint, make_event(message_id="a")).status == 503
    assert handle(endpoint, make_event(message_id="a")).status == 200
    assert handle(endpoint, make_event(message_id="b")).status == 503


@pytest.mark.django_db
def test_mock_request_handle_unauthorised_attempts_do_not_count(
    make_mock_endpoint, handle, make_event
):
    endpoint = make_mock_endpoint(fail_first_n=1)
    handle(endpoint, make_event(message_id="a"), authorization=None)
    assert handle(endpoint, make_event(message_id="a")).status == 503


@pytest.mark.django_db
def test_mock_request_handle_unsupported_type(make_mock_endpoint, handle, make_event):
    endpoint = make_mock_endpoint(unsupported_types=["page", "screen"])
    answer = handle(endpoint, make_event(event_type="page"))
    assert answer.status == 501
    assert json.loads(answer.body) == {
        "message": UNSUPPORTED_TYPE.format(event_type="page")
    }
    assert handle(endpoint, make_event(event_type="track")).status == 200


@pytest.mark.django_db
def test_mock_request_handle_invalid_json(make_mock_endpoint, handle):
    answer = handle(make_mock_endpoint(), body=b'{"type": "track",}')
    assert answer.status == 400
    assert json.loads(answer.body) == {
        "message": BODY_NOT_JSON.format(
            error="Expecting property name enclosed in double quotes",
            line=1,
            column=18,
        )
    }


@pytest.mark.django_db
def test_mock_request_handle_records_every_request(
    make_mock_endpoint, handle, make_event
):
    endpoint = make_mock_endpoint()
    handle(endpoint, make_event(message_id="ok"))
    handle(endpoint, make_event(message_id="no-auth"), authorization=None)
    handle(endpoint, body=b"{oops")
    recorded = list(MockRequest.objects.order_by("id"))
    assert [(r.message_id, r.auth_ok, r.response_status) for r in recorded] == [
        ("ok", True, 200),
        ("no-auth", False, 401),
        ("", True, 400),
    ]
    assert recorded[1].response_body == json.dumps({"message": MISSING_AUTHORIZATION})
    assert recorded[2].body == "{oops"
    assert recorded[0].event_type == "track"
    assert recorded[0].headers[0] == ["Content-Type", "application/json"]


@pytest.mark.django_db
def test_mock_request_handle_records_undecodable_body_with_replacement(
    make_mock_endpoint, handle
):
    handle(make_mock_endpoint(), body=b'{"a": "\xff"}')
    assert MockRequest.objects.get().body == '{"a": "\ufffd"}'


@pytest.mark.django_db
def test_mock_endpoint_create_validates(make_mock_endpoint):
    with pytest.raises(ValidationError) as caught:
        make_mock_endpoint(status_code=600, delay_ms=-1)
    assert caught.value.message_dict["status_code"] == [STATUS_CODE_RANGE]
    assert caught.value.message_dict["delay_ms"] == [DELAY_RANGE]


@pytest.mark.django_db
def test_mock_endpoint_create_rejects_reserved_slug(make_mock_endpoint):
    with pytest.raises(ValidationError) as caught:
        make_mock_endpoint(slug="new")
    assert caught.value.message_dict["slug"] == [RESERVED_SLUG.format(slug="new")]


@pytest.mark.django_db
def test_mock_endpoint_update_changes_behaviour(make_mock_endpoint):
    endpoint = make_mock_endpoint()
    mock_endpoint_update(endpoint=endpoint, status_code=500, delay_ms=10)
    endpoint.refresh_from_db()
    assert (endpoint.status_code, endpoint.delay_ms) == (500, 10)


@pytest.mark.django_db
def test_mock_endpoint_ensure_creates_once(api_key):
    first = mock_endpoint_ensure(slug="demo", name="Demo", api_key=api_key)
    second = mock_endpoint_ensure(slug="demo", name="Demo", api_key=api_key)
    assert first.pk == second.pk
    assert MockEndpoint.objects.count() == 1


@pytest.mark.django_db
def test_mock_endpoint_ensure_keeps_user_edits(api_key):
    endpoint = mock_endpoint_ensure(slug="demo", name="Demo", api_key=api_key)
    mock_endpoint_update(
        endpoint=endpoint, name="Mine", api_key="my-own-key", status_code=503
    )
    again = mock_endpoint_ensure(slug="demo", name="Demo", api_key=api_key)
    assert (again.name, again.api_key, again.status_code) == (
        "Mine",
        "my-own-key",
        503,
    )


@pytest.mark.django_db
def test_mock_requests_clear_removes_only_that_endpoint(make_mock_endpoint, handle):
    kept = make_mock_endpoint(slug="kept")
    cleared = make_mock_endpoint(slug="cleared")
    handle(kept)
    handle(cleared)
    handle(cleared)
    assert mock_requests_clear(endpoint=cleared) == 2
    assert list(MockRequest.objects.values_list("endpoint__slug", flat=True)) == [
        "kept"
    ]


@pytest.mark.django_db
def test_mock_endpoint_delete_removes_recorded_requests(make_mock_endpoint, handle):
    endpoint = make_mock_endpoint()
    handle(endpoint)
    mock_endpoint_delete(endpoint=endpoint)
    assert not MockEndpoint.objects.exists()
    assert not MockRequest.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("status", [200, 204, 299, 302, 400, 429, 500, 501, 503])
def test_mock_request_outcome_is_the_engines_reading(
    make_mock_endpoint, handle, status
):
    handle(make_mock_endpoint(status_code=status))
    request = MockRequest.objects.get()
    assert request.response_status == status
    assert request.outcome == webhook.classify_status(status).outcome
    assert request.succeeded is (request.outcome == webhook.GREEN)
