"""The built-in "Segment test suite" against the sandbox's own mock endpoint (the
demo seed_demo creates), served for real: ready for review, or why not; and what
changed since the last good run."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sandbox.mock.models import MockEndpoint
from sandbox.mock.services import mock_endpoint_update
from sandbox.spec import EVENT_TYPES
from sandbox.suites.builtin import SEGMENT_TEST_SUITE
from sandbox.suites.models import SuiteRun
from sandbox.tester.management.commands.seed_demo import DEMO_NAME

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(live_server, settings):
    settings.BASE_URL = live_server.url
    call_command("seed_demo", stdout=StringIO())
    return MockEndpoint.objects.get(slug="demo")


def _runsuite(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(
            "runsuite", SEGMENT_TEST_SUITE, "--to", DEMO_NAME, *args, stdout=out,
            stderr=err,
        )  # fmt: skip
    except CommandError as error:
        return error.returncode, out.getvalue(), f"{err.getvalue()}{error}"
    return 0, out.getvalue(), err.getvalue()


def test_the_demo_mock_endpoint_is_ready_for_review(demo):
    code, _, err = _runsuite()
    assert code == 0, err
    suite_run = SuiteRun.objects.get()
    assert suite_run.passed
    assert suite_run.verdict == "Ready for review"
    assert {r["outcome"] for r in suite_run.results} == {"green"}
    assert {r["status"] for r in suite_run.results} == {200}
    # Every event type reached the mock endpoint, in the suite's order.
    received = list(demo.requests.order_by("pk").values_list("event_type", flat=True))
    assert received[: len(EVENT_TYPES)] == list(EVENT_TYPES)
    assert len(received) == len(suite_run.results)


def test_unsupported_types_are_yellow_and_still_ready(demo):
    mock_endpoint_update(endpoint=demo, unsupported_types=["alias", "delete"])
    code, _, err = _runsuite()
    assert code == 0, err
    suite_run = SuiteRun.objects.get()
    outcomes = {r["label"]: r["outcome"] for r in suite_run.results}
    assert outcomes["alias"] == outcomes["delete"] == "yellow"
    assert suite_run.verdict == "Ready for review"


def test_a_wrong_api_key_is_not_ready_and_says_why(demo):
    mock_endpoint_update(endpoint=demo, api_key="another-key-entirely")
    code, out, err = _runsuite()
    assert code == 1
    suite_run = SuiteRun.objects.get()
    assert not suite_run.passed
    assert suite_run.verdict.startswith(
        "Not ready for review: step 1 (identify) expected green or yellow, got red: "
        "not retried: the endpoint says the API key is invalid or expired (401): "
        "API key does not match"
    )
    assert suite_run.verdict in out
    assert err.endswith("18 of 18 steps failed (the summary above says why).")
    assert {r["message"] for r in suite_run.results} == {"API key does not match"}


def test_a_new_run_says_what_changed_since_the_last_good_run(demo):
    code, _, _ = _runsuite()
    assert code == 0
    good = SuiteRun.objects.get()
    mock_endpoint_update(
        endpoint=demo,
        status_code=400,
        response_body=json.dumps({"message": "Missing email address"}),
    )
    code, out, _ = _runsuite()
    assert code == 1
    bad = SuiteRun.objects.exclude(pk=good.pk).get()
    assert bad.compared_with == good
    order_completed = next(r for r in bad.results if r["label"] == "Order Completed")
    number = order_completed["number"]
    assert order_completed["changes"] == [
        f"step {number} (Order Completed) was 200 in the last good run, now 400: "
        "Missing email address",
        f"step {number} (Order Completed): the endpoint's message was '' in the "
        "last good run, now 'Missing email address'",
    ]
    assert f"changed: step {number} (Order Completed) was 200" in out
    # A failed run is never the last good one: the next compares with `good` too.
    code, _, _ = _runsuite()
    assert SuiteRun.objects.order_by("-pk").first().compared_with == good


def test_a_good_run_against_another_endpoint_is_not_the_comparison(demo, receiver):
    code, _, _ = _runsuite()
    assert code == 0
    against_demo = SuiteRun.objects.get()
    out, err = StringIO(), StringIO()
    call_command(
        "runsuite", SEGMENT_TEST_SUITE, "--endpoint", receiver.url("/ok"),
        "--api-key", "k", stdout=out, stderr=err,
    )  # fmt: skip
    elsewhere = SuiteRun.objects.exclude(pk=against_demo.pk).get()
    assert elsewhere.passed
    # Nothing earlier went to this endpoint: nothing to compare with.
    assert elsewhere.compared_with is None
    code, _, _ = _runsuite()
    assert SuiteRun.objects.order_by("-pk").first().compared_with == against_demo
