"""The suite file format: parse errors with paths, newer formats, round-trips."""

import json

import pytest

from sandbox.suites import fileformat
from sandbox.suites.builtin import segment_test_suite
from sandbox.suites.fileformat import (
    Expectation,
    Step,
    Suite,
    SuiteFileError,
    export_suite,
    parse_suite,
)


def _document(**overrides) -> dict:
    return {
        "format": fileformat.FORMAT,
        "name": "Checkout",
        "steps": [{"type": "identify"}],
    } | overrides


def _problems(document: object) -> list[str]:
    with pytest.raises(SuiteFileError) as raised:
        parse_suite(json.dumps(document))
    return raised.value.problems


def test_parse_reads_every_kind_of_step():
    suite = parse_suite(
        json.dumps(
            _document(
                description="Our checkout",
                variables={"plan": "pro", "seats": 3},
                steps=[
                    {"id": "first", "type": "identify", "source": "node"},
                    {"name": "buy", "template": "Order Completed"},
                    {
                        "event": {
                            "type": "track",
                            "event": "Upgraded",
                            "userId": "{{userId}}",
                            "properties": {"plan": "{{plan}}"},
                        },
                        "expect": {
                            "outcome": ["green", "yellow"],
                            "status": [200, 201],
                            "body": {"path": "success", "equals": True},
                        },
                    },
                ],
            )
        )
    )
    assert suite.name == "Checkout"
    assert suite.variables == {"plan": "pro", "seats": 3}
    assert suite.steps[0] == Step(type="identify", source="node", id="first")
    assert suite.steps[1].label() == "buy"
    assert suite.steps[2].label() == "Upgraded"
    assert suite.steps[2].expect.statuses == (200, 201)
    assert suite.steps[2].expect.body.equals is True


def test_export_then_import_gives_the_same_suite():
    suite = Suite(
        name="Round trip",
        description="d",
        variables={"plan": "pro"},
        steps=(
            Step(type="page", name="home"),
            Step(template="Order Completed", expect=Expectation(statuses=(400,))),
            Step(
                event={"type": "track", "event": "X", "messageId": "{{uuid}}"},
                id="x",
                expect=Expectation(
                    outcomes=("green",),
                    statuses=(200, 202),
                    body=fileformat.BodyExpectation(path="a.b[0]", equals=[1, "2"]),
                ),
            ),
            Step(
                event={"type": "track", "event": "X", "messageId": "{{messageId:x}}"},
                expect=Expectation(deduplicated=True),
            ),
        ),
    )
    text = export_suite(suite)
    assert parse_suite(text) == suite
    assert export_suite(parse_suite(text)) == text


def test_the_built_in_suite_round_trips():
    suite = segment_test_suite()
    assert parse_suite(export_suite(suite)) == suite


def test_each_problem_is_listed_with_its_json_path():
    problems = _problems(
        _document(
            steps=[
                {"type": "identify"},
                {"type": "track"},
                {"type": "page"},
                {"type": "track", "expect": {"status": 99, "outcome": "blue"}},
                {"type": "trak"},
                {"event": "not an object"},
            ]
        )
    )
    assert problems == [
        'steps[3].expect.outcome: must be "green", "yellow" or "red", or a list of '
        "them",
        "steps[3].expect.status: must be an integer 100-599, or a list of them",
        "steps[4].type: must be one of identify, track, page, screen, group, alias, "
        "delete",
        "steps[5].event: must be a JSON object (a Segment event)",
    ]


def test_missing_and_unknown_fields_are_named():
    problems = _problems({"format": fileformat.FORMAT, "stpes": []})
    assert "name: required" in problems
    assert "steps: required" in problems
    assert any(
        p.startswith("stpes: unknown field; known fields: format,") for p in problems
    )


def test_a_suite_file_never_holds_api_keys():
    problems = _problems(_document(apiKey="secret-key-1"))
    assert problems == [
        "apiKey: a suite file never holds API keys; give the key when the suite runs "
        "(runsuite --api-key, or a subscription with --to)."
    ]


def test_a_step_needs_exactly_one_event_source():
    problems = _problems(
        _document(steps=[{"type": "track", "template": "Order Completed"}, {}])
    )
    assert problems == [
        "steps[0]: needs exactly one of event (a JSON object), template (a semantic "
        "event name) or type (an event type)",
        "steps[1]: needs exactly one of event (a JSON object), template (a semantic "
        "event name) or type (an event type)",
    ]


def test_unknown_templates_sources_and_placeholders_are_named():
    problems = _problems(
        _document(
            steps=[
                {"template": "Order Complete"},
                {"type": "page", "source": "cobol"},
                {
                    "event": {
                        "type": "track",
                        "event": "X",
                        "properties": {"a": "{{pln}}"},
                    }
                },
                {
                    "event": {
                        "type": "track",
                        "event": "X",
                        "messageId": "{{messageId:step9}}",
                    }
                },
            ]
        )
    )
    assert problems[0].startswith(
        "steps[0].template: unknown semantic event 'Order Complete'"
    )
    assert problems[1].startswith(
        "steps[1].source: unknown source 'cobol'; known: analytics.js"
    )
    assert problems[2].startswith(
        "steps[2].event.properties.a: unknown placeholder {{pln}}"
    )
    assert problems[3] == (
        "steps[3].event.messageId: {{messageId:step9}} must name an earlier step "
        "(by its number, step1, or its id)"
    )


def test_a_newer_format_says_so():
    problems = _problems(_document(format="subscription-sandbox/suite@2", steps="x"))
    assert problems == [
        "format: this file is subscription-sandbox/suite@2, newer than this sandbox "
        "reads (subscription-sandbox/suite@1); upgrade the sandbox to run it."
    ]


def test_another_format_is_refused():
    assert _problems(_document(format="postman")) == [
        'format: must be "subscription-sandbox/suite@1", not "postman"'
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "Invalid JSON at line 1, column 1"),
        ("{", "Invalid JSON"),
        ("[]", "(the document): must be a JSON object"),
        (
            '{"format": "subscription-sandbox/suite@1", "name": "x", "x": NaN}',
            "is not a JSON number",
        ),
    ],
)
def test_text_that_is_not_a_suite_says_why(text, words):
    with pytest.raises(SuiteFileError) as raised:
        parse_suite(text)
    assert words in str(raised.value)


def test_the_schema_file_is_valid_json_schema():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(fileformat.schema())
