"""Tests for parsing typed or pasted event JSON."""

from sandbox.spec import JsonError, json_size, json_text, parse_event_json, parse_json
from sandbox.spec.json_text import EMPTY_DOCUMENT


def test_parse_event_json_returns_the_value():
    assert parse_event_json('{"type": "track"}') == ({"type": "track"}, None)


def test_parse_event_json_returns_non_objects_too():
    # Whether it is an object is validate_event's business, with its own message.
    assert parse_event_json("[1, 2]") == ([1, 2], None)


def test_parse_event_json_points_at_the_line_and_column():
    text = '{\n  "type": "track",\n  "event": "Signed Up"\n  "userId": "42"\n}'
    value, error = parse_event_json(text)
    assert value is None
    assert error == JsonError(
        "Invalid JSON at line 4, column 3: Expecting ',' delimiter", 4, 3
    )


def test_parse_event_json_reports_a_trailing_comma():
    value, error = parse_event_json('{"type": "track",\n}')
    assert value is None
    assert (error.line, error.column) == (2, 1)
    assert error.message.startswith("Invalid JSON at line 2, column 1: ")


def test_parse_event_json_says_so_when_empty():
    for text in ("", "   \n\t"):
        assert parse_event_json(text) == (None, JsonError(EMPTY_DOCUMENT, 1, 1))
    assert EMPTY_DOCUMENT == (
        'The event is empty. Write or paste a JSON object, such as {"type": "track"}.'
    )


def test_parse_event_json_survives_a_number_too_long_for_python():
    value, error = parse_event_json('{"n": ' + "9" * 5000 + "}")
    assert value is None
    assert error.message.startswith("Invalid JSON: ")


def test_parse_json_reports_absurd_nesting_without_crashing():
    value, error = parse_json("[" * 100_000 + "]" * 100_000)
    assert value is None
    assert error.message.startswith("Invalid JSON: ")
    assert (error.line, error.column) == (1, 1)
    assert error.reason


def test_parse_json_refuses_what_json_has_no_number_for():
    for token in ("NaN", "Infinity", "-Infinity"):
        value, error = parse_json('{"x": ' + token + "}")
        assert value is None
        assert error.reason == json_text.NOT_A_NUMBER.format(token=token)
    value, error = parse_json('{"x": 1e400}')
    assert error.reason == json_text.NUMBER_TOO_LARGE.format(text="1e400")


def test_parse_json_refuses_lone_surrogates_and_says_where():
    _, error = parse_json('{"properties": {"x": "a\\ud800"}}')
    assert error.reason == json_text.LONE_SURROGATE.format(
        where="the text at properties.x", escape="\\ud800"
    )
    _, error = parse_json('{"list": [{"\\udfff": 1}]}')
    # The key is named escaped, never echoed raw.
    assert error.reason.startswith("the key list[0].\\udfff contains")
    assert parse_json('{"x": "\\ud83d\\ude00"}') == ({"x": "\U0001f600"}, None)


def test_parse_json_takes_100_levels_and_refuses_101():
    assert parse_json("[" * 100 + "]" * 100)[1] is None
    for depth in (101, 966, 989, 990, 100_000):
        _, error = parse_json("[" * depth + "]" * depth)
        assert error.reason == json_text.TOO_DEEP.format(limit=100)


def test_value_problem_checks_values_built_in_code():
    assert json_text.value_problem({"x": float("nan")}) is not None
    assert json_text.value_problem({"x": ["fine", 1.5, None]}) is None


def test_json_size_counts_compact_utf8_bytes():
    assert json_size({"a": [1, 2]}) == len(b'{"a":[1,2]}')
    # Three bytes a euro sign, not one character or a six-character escape.
    assert json_size("€") == 5


NON_NUMBERS = [
    ("NaN", json_text.NOT_A_NUMBER.format(token="NaN")),
    ("-NaN", None),
    ("Infinity", json_text.NOT_A_NUMBER.format(token="Infinity")),
    ("-Infinity", json_text.NOT_A_NUMBER.format(token="-Infinity")),
    ("1e400", json_text.NUMBER_TOO_LARGE.format(text="1e400")),
    ("-1e400", json_text.NUMBER_TOO_LARGE.format(text="-1e400")),
    ("1.5E+309", json_text.NUMBER_TOO_LARGE.format(text="1.5E+309")),
    ("1" + "0" * 400, json_text.NUMBER_TOO_LARGE.format(text="1" + "0" * 26 + "...")),
    ("-" + "9" * 309, json_text.NUMBER_TOO_LARGE.format(text="-" + "9" * 26 + "...")),
]


def test_parse_json_refuses_non_numbers_wherever_they_are():
    for token, reason in NON_NUMBERS:
        for text in (
            '{"properties": {"price": ' + token + "}}",
            '{"properties": {"products": [{"price": 1}, {"price": ' + token + "}]}}",
            '{"context": {"screen": {"density": ' + token + "}}}",
            "[" + token + "]",
        ):
            value, error = parse_json(text)
            assert value is None, text
            assert error.message.startswith("Invalid JSON"), text
            if reason is not None:
                assert error.reason == reason, text
                assert error.message == f"Invalid JSON: {reason}"


def test_parse_json_says_why_in_words():
    assert json_text.NOT_A_NUMBER.format(token="NaN") == (
        "NaN is not a JSON number (JSON has no NaN or Infinity); "
        "use null or a finite number"
    )
    assert json_text.NUMBER_TOO_LARGE.format(text="1e400") == (
        "the number 1e400 is too large to represent (at most about 1.8e308)"
    )


def test_parse_json_keeps_the_largest_numbers_a_double_holds():
    largest = str(int(1.7976931348623157e308))
    assert len(largest) == 309
    assert parse_json("[" + largest + "]") == ([int(largest)], None)
    assert parse_json("[-" + largest + "]") == ([-int(largest)], None)
    assert parse_json("[1.7976931348623157e308]") == ([1.7976931348623157e308], None)
    assert parse_json('{"n": 12345678901234567890}') == (
        {"n": 12345678901234567890},
        None,
    )


def test_value_problem_finds_non_numbers_built_in_code():
    for value in (float("nan"), float("inf"), float("-inf")):
        reason = json_text.value_problem({"properties": {"list": [1, value]}})
        assert reason == json_text.NOT_A_NUMBER.format(token=repr(value))
