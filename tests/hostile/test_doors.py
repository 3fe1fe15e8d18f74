"""The hostile corpus through every door: the composer, the validator, the sample
generator, `sendevent`, the subscription and mock forms and the mock endpoint. No
500, no traceback, a specific message, and nothing stored for what is refused.

Django's test client raises any exception a view lets escape, so a 500 fails here.
"""

import html
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from sandbox.delivery.models import Delivery
from sandbox.mock.models import MockEndpoint, MockRequest
from sandbox.mock.services import mock_endpoint_create
from sandbox.subscriptions.models import Subscription
from tests.factories import make_subscription, subscription_form_data
from tests.hostile.corpus import EVENTS, SETTINGS, URLS

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
EVENT_IDS = [case.name for case in EVENTS]
SETTINGS_IDS = [case.name for case in SETTINGS]
URL_IDS = [case.name for case in URLS]


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _sendevent(*args: str) -> tuple[int, str]:
    """Run `sendevent track ARGS` in-process: its exit code and what it told stderr."""
    err = io.StringIO()
    try:
        call_command("sendevent", "track", *args, stdout=io.StringIO(), stderr=err)
    except CommandError as error:
        return error.returncode, err.getvalue() + str(error)
    return 0, err.getvalue()


@pytest.mark.parametrize("case", EVENTS, ids=EVENT_IDS)
def test_the_validator_answers_every_event_text(client, case):
    response = client.post(reverse("tester:validate"), {"payload": case.text}, **HTMX)
    assert response.status_code == 200
    assert (case.refused or case.problem) in _text(response)
    assert case.warning in _text(response)
    # What the user typed is never markup in the page.
    assert "<img src=x" not in response.content.decode()


SAMPLE_FIELDS = ["payload", "event_type", "source", "template", "subscription"]


@pytest.mark.parametrize("field", [*SAMPLE_FIELDS, "changed"])
@pytest.mark.parametrize("case", EVENTS, ids=EVENT_IDS)
def test_the_sample_door_answers_every_text_in_every_field(client, case, field):
    make_subscription()
    data = {
        "payload": "",
        "event_type": "track",
        "source": "analytics.js",
        "template": "",
        "changed": "event_type",
        field: case.text,
    }
    response = client.post(reverse("tester:sample"), data, **HTMX)
    # A field it does not know is refused in words; the event is never read.
    ignored = field in {"payload", "subscription"} or (
        not case.text and field in {"template", "changed"}
    )
    assert response.status_code == (200 if ignored else 400)
    assert "Traceback" not in response.content.decode()
    if len(case.text) > 20 and response.status_code == 200:
        assert case.text not in _text(response)


@pytest.mark.parametrize("headers", [HTMX, {}], ids=["htmx", "plain"])
@pytest.mark.parametrize("case", EVENTS, ids=EVENT_IDS)
def test_the_composer_refuses_or_sends_every_event_text(client, case, headers):
    subscription = make_subscription()
    for confirm in ("", "1"):
        data = {
            "subscription": subscription.pk,
            "event_type": "track",
            "source": "analytics.js",
            "template": "",
            "payload": case.text,
            "confirm": confirm,
        }
        response = client.post(reverse("tester:send"), data, **headers)
        assert response.status_code in {200, 302, 400}
        if case.refused:
            assert case.refused in _text(response)
            # The composed text is still in the page, not lost.
            if not headers and len(case.text) < 50_000:
                assert case.text[:40] in _text(response)
        elif case.problem and not confirm:
            assert case.problem in _text(response)
    # Refused: nothing stored. Otherwise sent, after confirming when it must be.
    assert Delivery.objects.exists() == (not case.refused)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", EVENTS, ids=EVENT_IDS)
def test_sendevent_refuses_or_sends_every_event_file(tmp_path, receiver, case):
    path = tmp_path / "event.json"
    path.write_text(case.text, encoding="utf-8")
    code, err = _sendevent(
        "--endpoint",
        receiver.url("/ok"),
        "--api-key",
        "k",
        "--file",
        str(path),
        "--force",
    )
    if case.refused:
        assert code == 2
        assert case.refused in err
        assert not Delivery.objects.exists()
    else:
        assert code in {0, 1}
    assert "Traceback" not in err


@pytest.mark.parametrize("case", SETTINGS, ids=SETTINGS_IDS)
def test_the_subscription_form_refuses_or_keeps_every_settings_text(client, case):
    data = subscription_form_data(
        endpoint_url="http://127.0.0.1:9/hook", custom_settings=case.text
    )
    response = client.post(reverse("subscriptions:create"), data)
    if case.refused:
        assert response.status_code == 200
        assert case.refused in _text(response)
        assert not Subscription.objects.exists()
    else:
        assert response.status_code == 302
        assert Subscription.objects.get().custom_settings == json.loads(case.text)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", SETTINGS, ids=SETTINGS_IDS)
def test_sendevent_refuses_or_sends_every_settings_text(receiver, case):
    code, err = _sendevent(
        "--endpoint",
        receiver.url("/ok"),
        "--api-key",
        "k",
        "--custom-settings",
        case.text,
    )
    if case.refused:
        assert code == 2
        assert case.refused in err
    else:
        assert code == 0


@pytest.mark.parametrize("case", URLS, ids=URL_IDS)
def test_every_door_refuses_every_bad_url(client, case):
    code, err = _sendevent("--endpoint", case.text, "--api-key", "k")
    assert code == 2
    assert case.refused in err
    data = subscription_form_data(endpoint_url=case.text)
    response = client.post(reverse("subscriptions:create"), data)
    assert response.status_code == 200
    assert case.refused in _text(response)
    assert not Subscription.objects.exists()


def _mock_form(**overrides) -> dict:
    return {
        "name": "Hostile",
        "slug": "hostile",
        "api_key": "k",
        "status_code": "200",
        "response_body": "",
        "delay_ms": "0",
        "fail_first_n": "0",
        "fail_status": "503",
        **overrides,
    }


@pytest.mark.parametrize("case", EVENTS, ids=EVENT_IDS)
def test_the_mock_form_refuses_or_keeps_every_body_text(client, case):
    response = client.post(reverse("mock:create"), _mock_form(response_body=case.text))
    json_refused = case.refused and case.refused != "must be a JSON object"
    if json_refused and case.text:
        assert response.status_code == 200
        assert case.refused in _text(response)
        assert not MockEndpoint.objects.exists()
    else:
        assert response.status_code == 302


@pytest.mark.parametrize("status", ["100", "101", "199", "600"])
def test_the_mock_refuses_statuses_that_are_not_final_answers(client, status):
    response = client.post(reverse("mock:create"), _mock_form(status_code=status))
    assert response.status_code == 200
    assert "Status code must be between 200 and 599" in _text(response)
    assert not MockEndpoint.objects.exists()


@pytest.mark.parametrize("case", EVENTS, ids=EVENT_IDS)
def test_the_mock_endpoint_answers_every_body_in_json(client, case):
    mock_endpoint_create(slug="hostile", name="Hostile", api_key="k")
    response = client.post(
        reverse("mock:receive", args=["hostile"]),
        case.text.encode(),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic aw==",
    )
    assert response.status_code < 500
    assert "message" in response.json() or response.json() == {"success": True}
    assert MockRequest.objects.count() == 1
