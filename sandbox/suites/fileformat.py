"""The suite file format (JSON, versioned, schema in suite.schema.json): parse
file text into a Suite, listing every problem with its JSON path, and write a
Suite back as file text (pure: no Django)."""

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator

from sandbox import spec
from sandbox.suites import placeholders

FORMAT = "subscription-sandbox/suite@1"
FORMAT_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("suite.schema.json")
FILE_SUFFIX = ".suite.json"
DEFAULT_SOURCE = "analytics.js"
OUTCOMES = ("green", "yellow", "red")
# What a step expects when it says nothing: delivered, as Segment's reviewers ask.
DEFAULT_OUTCOMES = ("green", "yellow")

NEWER_FORMAT = (
    "format: this file is {found}, newer than this sandbox reads ({known}); "
    "upgrade the sandbox to run it."
)
UNKNOWN_FORMAT = 'format: must be "{known}", not {found}'
API_KEY_FIELD = (
    "{path}: a suite file never holds API keys; give the key when the suite runs "
    "(runsuite --api-key, or a subscription with --to)."
)
UNKNOWN_FIELD = "{path}: unknown field; known fields: {known}"
MISSING_FIELD = "{path}: required"
ONE_EVENT_SOURCE = (
    "{path}: needs exactly one of event (a JSON object), template (a semantic event "
    "name) or type (an event type)"
)
UNKNOWN_TEMPLATE = (
    "{path}: unknown semantic event {name!r}; use one of the Spec's, such as \"Order "
    'Completed"'
)
UNKNOWN_SOURCE = "{path}: unknown source {name!r}; known: {known}"
SOURCE_NEEDS_SAMPLE = "{path}: a source applies only to a template or type step"
SAMPLE_PROBLEM = "{path}: {problem}"
DUPLICATE_STEP_ID = "{path}: the id {id!r} is already used by steps[{first}]"
RESERVED_VARIABLE = "{path}: {name!r} is a built-in placeholder; choose another name"
EXPECT_NOTHING = "{path}: expects nothing; give outcome, status, body or deduplicated"
EVENT_PROBLEM = "{path}: {problem}"
NOT_JSON = "{message}"

_KEY_FIELDS = re.compile(r"^(api[_-]?key|apikey|write[_-]?key|secret|token)$", re.I)
# Inside an event or a variable's name, names that end in "API key" or "write
# key" (apiKey, x_api_key, segmentWriteKey...): `token` and `secret` have Spec
# meanings there (context.device.token is a push token).
_EVENT_KEY_FIELDS = re.compile(r"(api|write)[_-]?key$", re.I)


class SuiteFileError(ValueError):
    """The file text is not a suite this sandbox can read; every problem listed."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class BodyExpectation:
    path: str
    equals: object


@dataclass(frozen=True)
class Expectation:
    outcomes: tuple[str, ...] = ()
    statuses: tuple[int, ...] = ()
    body: BodyExpectation | None = None
    deduplicated: bool | None = None


@dataclass(frozen=True)
class Step:
    event: dict | None = None
    template: str | None = None
    type: str | None = None
    source: str | None = None
    id: str = ""
    name: str = ""
    expect: Expectation | None = None

    def label(self) -> str:
        """What a person calls this step: its name, the template, the event."""
        if self.name:
            return self.name
        if self.template:
            return self.template
        if self.event is not None:
            name = self.event.get("event")
            kind = self.event.get("type")
            if isinstance(name, str) and name:
                return name
            if isinstance(kind, str) and kind:
                return kind
            return "event"
        return self.type or "event"


@dataclass(frozen=True)
class Suite:
    name: str
    steps: tuple[Step, ...]
    description: str = ""
    variables: dict = field(default_factory=dict)


@cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def json_path(parts) -> str:
    """steps[3].expect.status from the parts of a path into the document."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(the document)"


def _schema_problems(document: object) -> list[str]:
    problems = []
    errors = sorted(_validator().iter_errors(document), key=_document_order)
    for error in errors:
        path = list(error.absolute_path)
        where = error.schema if isinstance(error.schema, dict) else {}
        if error.validator == "additionalProperties" and isinstance(
            error.instance, dict
        ):
            known = list(where.get("properties", {}))
            for key in error.instance:
                if key in known:
                    continue
                at = json_path([*path, key])
                template = API_KEY_FIELD if _KEY_FIELDS.match(key) else UNKNOWN_FIELD
                problems.append(template.format(path=at, known=", ".join(known)))
        elif error.validator == "required" and isinstance(error.instance, dict):
            for key in error.validator_value:
                if key not in error.instance:
                    problems.append(MISSING_FIELD.format(path=json_path([*path, key])))
        elif "propertyNames" in error.relative_schema_path:
            # The rule failed on a name: jsonschema reports the name's own rule
            # ("pattern") at the object holding it.
            name = error.instance
            at = json_path([*path, name]) if isinstance(name, str) else json_path(path)
            problems.append(
                f"{at}: the name {name!r} must be an identifier (letters, digits "
                "and _, not starting with a digit)"
            )
        else:
            # The words of the field's own rule; the parent's when a branch failed.
            message = where.get("x-message")
            if message is None:
                parent = _parent_message(error)
                message = parent or error.message
            problems.append(f"{json_path(path)}: {message}")
    return sorted(set(problems), key=problems.index)


def _document_order(error) -> list[tuple]:
    # Items by index, fields by name: the same file lists its problems alike.
    return [
        (0, part, "") if isinstance(part, int) else (1, 0, str(part))
        for part in error.absolute_path
    ]


def _parent_message(error) -> str | None:
    """The message of the nearest field rule above an error inside an item."""
    node = schema()
    found = None
    for part in error.relative_schema_path:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            break
        if isinstance(node, dict) and "$ref" in node:
            node = _resolve(node["$ref"])
        if isinstance(node, dict) and "x-message" in node:
            found = node["x-message"]
    return found


def _resolve(ref: str) -> object:
    node: object = schema()
    for part in ref.removeprefix("#/").split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _format_problem(document: object) -> str | None:
    if not isinstance(document, dict) or "format" not in document:
        return None
    found = document["format"]
    if found == FORMAT:
        return None
    match = (
        re.fullmatch(r"subscription-sandbox/suite@(\d{1,9})", found)
        if isinstance(found, str)
        else None
    )
    if match and int(match.group(1)) > FORMAT_VERSION:
        return NEWER_FORMAT.format(found=found, known=FORMAT)
    shown = json.dumps(found, ensure_ascii=False)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return UNKNOWN_FORMAT.format(known=FORMAT, found=shown)


def parse_suite(text: str) -> Suite:
    """The suite in a file's text; raises SuiteFileError listing every problem."""
    document, error = spec.parse_json(text)
    if error is not None:
        raise SuiteFileError([NOT_JSON.format(message=error.message)])
    return suite_from_document(document)


def suite_from_document(document: object) -> Suite:
    format_problem = _format_problem(document)
    if format_problem is not None and format_problem.startswith("format: this"):
        # A newer file may hold anything: that is the one thing worth saying.
        raise SuiteFileError([format_problem])
    problems = [] if format_problem is None else [format_problem]
    problems += [
        problem
        for problem in _schema_problems(document)
        if not problem.startswith("format:")
    ]
    if isinstance(document, dict):
        problems += [p for p in _meaning_problems(document) if p not in problems]
    if problems:
        raise SuiteFileError(problems)
    return Suite(
        name=document["name"].strip(),
        description=document.get("description", ""),
        variables=dict(document.get("variables", {})),
        steps=tuple(_step(raw) for raw in document["steps"]),
    )


def _meaning_problems(document: dict) -> list[str]:
    """What the schema cannot say: one event per step, known templates and
    sources, placeholders that name something, ids used once."""
    problems = []
    variables = document.get("variables")
    variables = variables if isinstance(variables, dict) else {}
    for name in variables:
        if isinstance(name, str) and _EVENT_KEY_FIELDS.search(name):
            problems.append(API_KEY_FIELD.format(path=f"variables.{name}"))
        if name in placeholders.RESERVED:
            problems.append(
                RESERVED_VARIABLE.format(path=f"variables.{name}", name=name)
            )
    steps = document.get("steps")
    ids: dict[str, int] = {}
    for index, raw in enumerate(steps if isinstance(steps, list) else []):
        if isinstance(raw, dict):
            problems += _step_problems(raw, f"steps[{index}]", index, variables, ids)
    return problems


def _step_problems(
    raw: dict, path: str, index: int, variables: dict, ids: dict[str, int]
) -> list[str]:
    """One step's problems the schema cannot see; fields of the wrong type are
    the schema's to report, so they are passed over here."""
    problems = []
    given = [key for key in ("event", "template", "type") if key in raw]
    if len(given) != 1:
        problems.append(ONE_EVENT_SOURCE.format(path=path))
    template, source = raw.get("template"), raw.get("source")
    if isinstance(template, str) and template and template not in spec.TEMPLATES:
        problems.append(UNKNOWN_TEMPLATE.format(path=f"{path}.template", name=template))
    if "source" in raw:
        if "event" in raw:
            problems.append(SOURCE_NEEDS_SAMPLE.format(path=f"{path}.source"))
        elif isinstance(source, str) and source not in spec.SOURCES:
            problems.append(
                UNKNOWN_SOURCE.format(
                    path=f"{path}.source", name=source, known=", ".join(spec.SOURCES)
                )
            )
    sample_type = "track" if "template" in raw else raw.get("type")
    if (
        given in (["template"], ["type"])
        and not problems
        and sample_type in spec.EVENT_TYPES
        and (template is None or template in spec.TEMPLATES)
        and isinstance(source if source is not None else DEFAULT_SOURCE, str)
    ):
        problem = spec.sample_problem(
            sample_type,
            source=source if source is not None else DEFAULT_SOURCE,
            template=template,
        )
        if problem is not None:
            problems.append(SAMPLE_PROBLEM.format(path=path, problem=problem))
    event = raw.get("event")
    if isinstance(event, dict):
        problem = spec.value_problem(event)
        if problem is not None:
            problems.append(EVENT_PROBLEM.format(path=f"{path}.event", problem=problem))
        problems += [
            API_KEY_FIELD.format(path=at) for at in _key_fields(event, f"{path}.event")
        ]
        problems += placeholders.problems(
            event,
            path=f"{path}.event",
            variables=variables,
            earlier_ids=ids,
            step_number=index + 1,
        )
    step_id = raw.get("id")
    if isinstance(step_id, str):
        if step_id in ids:
            problems.append(
                DUPLICATE_STEP_ID.format(
                    path=f"{path}.id", id=step_id, first=ids[step_id]
                )
            )
        else:
            ids[step_id] = index
    expect = raw.get("expect")
    if isinstance(expect, dict) and not expect:
        problems.append(EXPECT_NOTHING.format(path=f"{path}.expect"))
    return problems


def _key_fields(value: object, path: str) -> list[str]:
    """The paths of fields in an event named like an API or write key."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            at = f"{path}.{key}"
            if isinstance(key, str) and _EVENT_KEY_FIELDS.search(key):
                found.append(at)
            found += _key_fields(item, at)
    elif isinstance(value, list):
        for number, item in enumerate(value):
            found += _key_fields(item, f"{path}[{number}]")
    return found


def _as_tuple(value: object) -> tuple:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else (value,)


def _step(raw: dict) -> Step:
    expect = raw.get("expect")
    expectation = None
    if expect is not None:
        body = expect.get("body")
        expectation = Expectation(
            outcomes=_as_tuple(expect.get("outcome")),
            statuses=_as_tuple(expect.get("status")),
            body=BodyExpectation(path=body["path"], equals=body["equals"])
            if body is not None
            else None,
            deduplicated=expect.get("deduplicated"),
        )
    return Step(
        event=raw.get("event"),
        template=raw.get("template"),
        type=raw.get("type"),
        source=raw.get("source"),
        id=raw.get("id", ""),
        name=raw.get("name", ""),
        expect=expectation,
    )


def _one_or_list(values: tuple) -> object:
    return values[0] if len(values) == 1 else list(values)


def suite_document(suite: Suite) -> dict:
    """The suite as the file's JSON document (no target, no API key)."""
    steps = []
    for step in suite.steps:
        raw: dict = {}
        if step.id:
            raw["id"] = step.id
        if step.name:
            raw["name"] = step.name
        if step.event is not None:
            raw["event"] = step.event
        if step.template is not None:
            raw["template"] = step.template
        if step.type is not None:
            raw["type"] = step.type
        if step.source is not None:
            raw["source"] = step.source
        if step.expect is not None:
            expect: dict = {}
            if step.expect.outcomes:
                expect["outcome"] = _one_or_list(step.expect.outcomes)
            if step.expect.statuses:
                expect["status"] = _one_or_list(step.expect.statuses)
            if step.expect.body is not None:
                expect["body"] = {
                    "path": step.expect.body.path,
                    "equals": step.expect.body.equals,
                }
            if step.expect.deduplicated is not None:
                expect["deduplicated"] = step.expect.deduplicated
            raw["expect"] = expect
        steps.append(raw)
    document: dict = {"format": FORMAT, "name": suite.name}
    if suite.description:
        document["description"] = suite.description
    if suite.variables:
        document["variables"] = suite.variables
    document["steps"] = steps
    return document


def export_suite(suite: Suite) -> str:
    """The file text: indented JSON, keys in the order a person reads them."""
    return json.dumps(suite_document(suite), indent=2, ensure_ascii=False) + "\n"
