"""Reading outcomes against expectations (pure)."""

import json

from sandbox.suites.fileformat import BodyExpectation, Expectation
from sandbox.suites.results import Actual, step_result

REASON = "the endpoint says the event is malformed (400): Missing email address"


def _result(expect, **actual):
    fields = {"state": "delivered", "outcome": "green", "status": 200} | actual
    return step_result(
        number=4,
        label="Order Completed",
        event_type="track",
        message_id="m",
        delivery_id=1,
        expect=expect,
        actual=Actual(**fields),
    )


def test_no_expectation_means_delivered():
    assert _result(None).passed
    assert _result(None, outcome="yellow", status=501).passed
    failed = _result(None, state="failed", outcome="red", status=400, reason=REASON)
    assert failed.failure == f"expected green or yellow, got red: {REASON}"


def test_status_codes_and_outcomes():
    expect = Expectation(statuses=(400, 422))
    assert _result(expect, outcome="red", status=400).passed
    assert _result(expect, status=200, reason="processed (200)").failure == (
        "expected status 400 or 422, got 200: processed (200)"
    )
    assert _result(expect, status=None, reason="refused").failure == (
        "expected status 400 or 422, but no response came: refused"
    )
    assert _result(Expectation(outcomes=("red",)), outcome="red", status=500).passed


def test_a_json_path_on_the_response_body():
    body = json.dumps({"success": True, "errors": [{"code": "E1"}]})
    ok = Expectation(body=BodyExpectation(path="errors[0].code", equals="E1"))
    assert _result(ok, response_body=body).passed
    one = Expectation(body=BodyExpectation(path="$.success", equals=1))
    assert (
        _result(one, response_body=body).failure == "expected $.success = 1, got true"
    )
    missing = Expectation(body=BodyExpectation(path="data.id", equals=1))
    assert _result(missing, response_body=body).failure == (
        "expected data.id = 1, but the response body has no data.id"
    )
    assert "not JSON" in _result(missing, response_body="<html>").failure


def test_deduplicated_steps():
    dropped = {"state": "deduplicated", "outcome": "", "status": None, "reason": "r"}
    assert _result(Expectation(deduplicated=True), **dropped).passed
    assert _result(None, **dropped).failure == "deduplicated, not sent: r"
    assert (
        "expected Segment to drop it" in _result(Expectation(deduplicated=True)).failure
    )


def test_a_step_open_when_the_run_ended_says_why():
    refused = "Connection refused by 127.0.0.1:9: nothing is listening there"
    retrying = _result(
        None, state="retrying", outcome="red", status=None, reason=refused
    )
    assert retrying.failure == f"still retrying when the run ended: {refused}"
    waiting = _result(None, state="pending", outcome="", status=None)
    assert waiting.failure == "not sent when the run ended"
