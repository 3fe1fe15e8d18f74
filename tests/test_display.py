"""The display helpers every page shares, without a database."""

from sandbox.display import indent_json, pretty_json


def test_indent_json_indents_and_keeps_unicode_readable():
    assert indent_json({"price": "9 €"}) == '{\n  "price": "9 €"\n}'


def test_indent_json_replaces_lone_surrogates():
    assert indent_json(["\ud800"]) == '[\n  "\ufffd"\n]'


def test_pretty_json_indents_json_text():
    assert pretty_json('{"a":1}') == ('{\n  "a": 1\n}', True)


def test_pretty_json_returns_other_text_as_it_came():
    assert pretty_json("Bad Gateway") == ("Bad Gateway", False)
