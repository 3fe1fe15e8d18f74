"""Hostile inputs every door must survive: typed, pasted or sent, none ends in a 500.

Each case is the text a user could put in an event editor, a settings box or a
request body, with `refused` naming the words the sandbox answers with when it
must not be sent at all, and `problem` the words of a Spec problem that a user
may still send after confirming.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    # Words of the refusal when it can never be sent; "" when it can.
    refused: str = ""
    # Words of the Spec problem shown when it may be sent after confirming.
    problem: str = ""
    # Words of a warning shown beside an event that sends as it is.
    warning: str = ""


def _track(properties: str = '{"x": 1}', event: str = '"Signed Up"', **extra) -> str:
    fields = "".join(f', "{key}": {value}' for key, value in extra.items())
    return (
        '{"type": "track", "event": ' + event + ', "userId": "u1", '
        '"properties": ' + properties + fields + "}"
    )


def _nested(depth: int) -> str:
    return _track(properties='{"x": ' + "[" * depth + "]" * depth + "}")


NOT_A_NUMBER = "is not a JSON number"
SURROGATE = "lone UTF-16 surrogate"
TOO_DEEP = "nested deeper than 100 levels"
OFF_CALENDAR = "falls outside the calendar"

EVENTS = [
    Case("nan", _track('{"x": NaN}'), NOT_A_NUMBER),
    Case("infinity", _track('{"x": Infinity}'), NOT_A_NUMBER),
    Case("minus-infinity", _track('{"x": -Infinity}'), NOT_A_NUMBER),
    Case("overflowing-float", _track('{"x": 1e400}'), "too large to represent"),
    Case("huge-integer", _track('{"x": ' + "9" * 5000 + "}"), "more than 4,300 digits"),
    Case("surrogate-in-property", _track('{"x": "\\ud800"}'), SURROGATE),
    Case("surrogate-in-event-name", _track(event='"s\\udfff"'), SURROGATE),
    Case("surrogate-in-key", _track('{"\\ud800": 1}'), SURROGATE),
    Case("surrogate-pair-is-fine", _track('{"x": "\\ud83d\\ude00"}')),
    Case("depth-966", _nested(966), TOO_DEEP),
    Case("depth-980", _nested(980), TOO_DEEP),
    Case("depth-989", _nested(989), TOO_DEEP),
    Case("depth-990", _nested(990), TOO_DEEP),
    Case("depth-100000", "[" * 100_000 + "]" * 100_000, TOO_DEEP),
    Case("depth-98-is-fine", _nested(97)),
    Case(
        "timestamp-year-1-east",
        _track(timestamp='"0001-01-01T00:00:00+23:59"'),
        problem=OFF_CALENDAR,
    ),
    Case(
        "timestamp-year-9999-west",
        _track(timestamp='"9999-12-31T23:59:59-23:59"'),
        problem=OFF_CALENDAR,
    ),
    Case(
        "timestamp-1-sent-9999",
        _track(timestamp='"0001-01-01T00:00:00Z"', sentAt='"9999-12-31T23:59:59Z"'),
        problem="too far apart",
    ),
    Case("null", "null", "must be a JSON object"),
    Case("array", '[{"type": "track"}]', "must be a JSON object"),
    Case("string", '"track"', "must be a JSON object"),
    Case("number", "42", "must be a JSON object"),
    Case("empty", "", "event"),
    Case("not-json", "{type: track}", "Expecting property name"),
    Case("html-in-name", _track(event='"<script>alert(1)</script>"')),
    Case(
        "long-message-id",
        _track(messageId='"' + "m" * 1000 + '"'),
        problem="Segment accepts at most 100",
    ),
    Case(
        "over-32kb",
        _track('{"x": "' + "a" * 40_000 + '"}'),
        problem="Segment accepts at most 32 KB",
    ),
    Case("control-characters", _track('{"x": "\\u0000\\u001b[31m"}')),
    Case(
        "duplicate-keys",
        _track('{"x": 1, "x": 2}', userId='"again"'),
        warning='key "userId" appears twice in the event',
    ),
    Case(
        "duplicate-keys-in-an-array",
        _track('{"items": [{"sku": 1, "sku": 2, "sku": 3}]}'),
        warning='key "sku" appears 3 times in properties.items[0]',
    ),
    Case(
        "thousands-of-duplicate-keys",
        _track("{" + ", ".join(f'"k{i % 50}": {i}' for i in range(5000)) + "}"),
        warning="more repeated keys",
    ),
    Case(
        "html-in-a-duplicate-key",
        _track(
            '{"<img src=x onerror=alert(1)>": 1, "<img src=x onerror=alert(1)>": 2}'
        ),
        warning='key "<img src=x onerror=alert(1)>" appears twice',
    ),
]

SETTINGS = [
    Case("settings-nan", '{"region": NaN}', NOT_A_NUMBER),
    Case("settings-surrogate", '{"region": "\\ud800"}', SURROGATE),
    Case("settings-depth-970", '{"a": ' + "[" * 970 + "]" * 970 + "}", TOO_DEEP),
    Case("settings-depth-100000", "[" * 100_000 + "]" * 100_000, TOO_DEEP),
    Case(
        "settings-one-megabyte",
        '{"blob": "' + "b" * 1_000_000 + '"}',
        "the sandbox accepts at most 4,096",
    ),
    Case("settings-array", "[1, 2]", "must be a JSON object"),
    Case("settings-null", "null", "must be a JSON object"),
    Case("settings-api-key", '{"apiKey": "x"}', "apiKey is set by the API key field"),
    Case("settings-fine", '{"region": "eu", "nested": {"a": [1, 2]}}'),
]

URLS = [
    Case("url-broken-ipv6", "http://[::1/", "needs a host"),
    Case("url-port-99999", "http://127.0.0.1:99999/hook", "port must be a number"),
    Case(
        "url-credentials", "http://user:pass@127.0.0.1:9/hook", "user name or password"
    ),
    Case("url-ftp", "ftp://127.0.0.1/hook", "must start with http"),
    Case("url-spaces", "http://127.0.0.1/a hook", "must not contain spaces"),
]


def _suite(steps: str = '[{"type": "track"}]', **fields: str) -> str:
    extra = "".join(f', "{key}": {value}' for key, value in fields.items())
    return (
        '{"format": "subscription-sandbox/suite@1", "name": "Hostile", '
        '"steps": ' + steps + extra + "}"
    )


def _suite_of(event_text: str) -> str:
    return _suite('[{"event": ' + event_text + "}]")


# Suite files (an import, runsuite's file argument): `refused` names the words of
# the problem; "" for a file that runs. Every event above also arrives as a step.
SUITE_FILES = [
    Case("suite-empty", "", "Invalid JSON"),
    Case("suite-not-json", "{format: 1}", "Expecting property name"),
    Case("suite-array", "[]", "(the document): must be a JSON object"),
    Case("suite-null", "null", "(the document): must be a JSON object"),
    Case("suite-nan", _suite(variables='{"x": NaN}'), NOT_A_NUMBER),
    Case("suite-surrogate-name", _suite(description='"\\ud800"'), SURROGATE),
    Case("suite-depth-100000", "[" * 100_000 + "]" * 100_000, TOO_DEEP),
    Case("suite-depth-in-steps", _suite("[" * 99 + "]" * 99), "steps"),
    Case("suite-format-number", '{"format": 1e300, "name": "x"}', "format: must be"),
    Case(
        "suite-format-newer",
        '{"format": "subscription-sandbox/suite@999999999", "steps": 1}',
        "newer than this sandbox reads",
    ),
    Case(
        "suite-format-huge-version",
        '{"format": "subscription-sandbox/suite@' + "9" * 5000 + '"}',
        "format: must be",
    ),
    Case("suite-steps-string", _suite('"x"'), "steps: must be a list"),
    Case("suite-no-steps", _suite("[]"), "steps: must be a list of 1 to 1000"),
    Case("suite-step-null", _suite("[null]"), "steps[0]: must be a JSON object"),
    Case("suite-api-key", _suite(apiKey='"k"'), "never holds API keys"),
    Case(
        "suite-status-float",
        _suite('[{"type": "track", "expect": {"status": 200.5}}]'),
        "steps[0].expect.status: must be an integer 100-599",
    ),
    Case(
        "suite-status-huge",
        _suite('[{"type": "track", "expect": {"status": ' + "9" * 400 + "}}]"),
        "too large to represent",
    ),
    Case(
        "suite-body-path",
        _suite('[{"type": "track", "expect": {"body": {"path": "a..b"}}}]'),
        "steps[0].expect.body",
    ),
    Case(
        "suite-placeholder-overflow",
        _suite_of('{"type": "track", "event": "x", "timestamp": "{{now+999999w}}"}'),
        "falls outside the calendar",
    ),
    Case(
        "suite-placeholder-unknown",
        _suite_of('{"type": "track", "event": "x", "userId": "{{<img src=x>}}"}'),
        "unknown placeholder",
    ),
    Case("suite-template-html", _suite('[{"template": "<script>"}]'), "unknown"),
    Case("suite-name-blank", _suite(name='"   "'), "name: must be a name"),
    Case(
        "suite-many-steps",
        _suite("[" + ", ".join(['{"type": "track"}'] * 1001) + "]"),
        "steps: must be a list of 1 to 1000",
    ),
    Case("suite-fine", _suite('[{"type": "page"}, {"template": "Order Completed"}]')),
    *[
        Case(f"suite-step-{case.name}", _suite_of(case.text), case.refused)
        for case in EVENTS
        if case.text.startswith("{") and case.refused
    ],
]
