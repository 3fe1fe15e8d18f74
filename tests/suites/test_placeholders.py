"""Placeholders filled fresh on every run; messageIds never repeat by accident."""

import json
import uuid
from datetime import UTC, datetime

from sandbox.suites import fileformat
from sandbox.suites.events import suite_events

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _suite(*steps, variables=None) -> fileformat.Suite:
    document = {"format": fileformat.FORMAT, "name": "p", "steps": list(steps)}
    if variables is not None:
        document["variables"] = variables
    return fileformat.parse_suite(json.dumps(document))


def _track(**fields) -> dict:
    return {"event": {"type": "track", "event": "Signed Up", **fields}}


def test_times_users_and_variables_are_filled():
    suite = _suite(
        _track(
            userId="{{userId}}",
            anonymousId="{{anonymousId}}",
            timestamp="{{now-1d}}",
            properties={
                "at": "{{now}}",
                "later": "{{now+2h}}",
                "seats": "{{seats}}",
                "note": "plan {{plan}} for {{seats}} seats",
                "ids": ["{{uuid}}", "{{uuid}}"],
            },
        ),
        _track(userId="{{userId}}"),
        variables={"plan": "pro", "seats": 3},
    )
    events, values = suite_events(suite, now=NOW)
    first, second = events
    assert first["timestamp"] == "2026-02-28T12:00:00.123Z"
    properties = first["properties"]
    assert properties["at"] == "2026-03-01T12:00:00.123Z"
    assert properties["later"] == "2026-03-01T14:00:00.123Z"
    assert properties["seats"] == 3
    assert properties["note"] == "plan pro for 3 seats"
    assert len(set(properties["ids"])) == 2
    for made in properties["ids"]:
        uuid.UUID(made)
    # One user per run, the same in every step.
    assert first["userId"] == second["userId"] == values.user_id
    uuid.UUID(first["anonymousId"])


def test_each_run_has_its_own_user_and_fresh_message_ids():
    suite = _suite(
        _track(messageId="literal-id", userId="{{userId}}"),
        _track(messageId="{{uuid}}"),
        _track(),
        {"template": "Order Completed"},
        {"type": "identify"},
    )
    first, first_values = suite_events(suite, now=NOW)
    second, second_values = suite_events(suite, now=NOW)
    ids = [event["messageId"] for event in first + second]
    assert len(ids) == len(set(ids)) == 10
    assert "literal-id" not in ids
    assert first_values.user_id != second_values.user_id
    # Samples are the run's user too (an anonymous sample stays anonymous).
    assert first[4]["userId"] == first_values.user_id
    assert first[3].get("userId") in (None, first_values.user_id)
    assert first[3]["anonymousId"] == first[4]["anonymousId"]


def test_a_step_repeats_a_message_id_only_on_purpose():
    suite = _suite(
        {"id": "signup", **_track()},
        _track(),
        _track(messageId="{{messageId:signup}}"),
        _track(
            messageId="{{messageId:step2}}", properties={"of": "{{messageId:step1}}"}
        ),
    )
    events, values = suite_events(suite, now=NOW)
    ids = [event["messageId"] for event in events]
    assert ids[2] == ids[0]
    assert ids[3] == ids[1]
    assert events[3]["properties"]["of"] == ids[0]
    assert len(set(ids)) == 2
    assert values.message_ids == ids


def test_a_suite_definition_is_not_changed_by_a_run():
    suite = _suite(_track(properties={"at": "{{now}}"}))
    suite_events(suite, now=NOW)
    assert suite.steps[0].event["properties"]["at"] == "{{now}}"
