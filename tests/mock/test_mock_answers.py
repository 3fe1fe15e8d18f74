"""The mock's pure reading of auth and bodies, without a database."""

import json

from sandbox.mock.answers import (
    API_KEY_MISMATCH,
    BODY_NOT_JSON,
    BODY_NOT_OBJECT,
    BODY_NOT_UTF8,
    MALFORMED_BASIC_AUTH,
    MISSING_AUTHORIZATION,
    NOT_BASIC_AUTH,
    auth_error,
    default_body,
    parse_event,
)


def test_auth_error_accepts_key_with_colon(basic_auth):
    assert auth_error([["Authorization", basic_auth("k1")]], "k1") is None


def test_auth_error_reads_header_name_in_any_case(basic_auth):
    assert auth_error([["authorization", basic_auth("k1")]], "k1") is None


def test_auth_error_missing_header():
    assert auth_error([["Content-Type", "application/json"]], "k1") == (
        MISSING_AUTHORIZATION
    )


def test_auth_error_wrong_key(basic_auth):
    assert auth_error([["Authorization", basic_auth("k2")]], "k1") == API_KEY_MISMATCH


def test_auth_error_key_without_colon_is_not_what_segment_sends(basic_auth):
    header = basic_auth("k1", colon=False)
    assert auth_error([["Authorization", header]], "k1") == API_KEY_MISMATCH


def test_auth_error_bearer_scheme():
    assert auth_error([["Authorization", "Bearer k1"]], "k1") == NOT_BASIC_AUTH


def test_auth_error_not_base64():
    assert auth_error([["Authorization", "Basic !!!"]], "k1") == MALFORMED_BASIC_AUTH


def test_auth_error_basic_without_credentials_is_malformed():
    assert auth_error([["Authorization", "Basic"]], "k1") == MALFORMED_BASIC_AUTH


def test_auth_error_ignores_surrounding_whitespace(basic_auth):
    assert auth_error([["Authorization", f" {basic_auth('k1')} "]], "k1") is None


def test_parse_event_returns_object():
    assert parse_event(b'{"type": "track"}') == ({"type": "track"}, None)


def test_parse_event_invalid_json_names_line_and_column():
    event, error = parse_event(b'{\n  "type": }')
    assert event is None
    assert error == BODY_NOT_JSON.format(error="Expecting value", line=2, column=11)


def test_parse_event_rejects_a_batch():
    assert parse_event(b"[]") == (None, BODY_NOT_OBJECT)


def test_parse_event_rejects_invalid_utf8():
    assert parse_event(b'{"type": "\xff"}') == (None, BODY_NOT_UTF8)


def test_default_body_success():
    assert json.loads(default_body(200)) == {"success": True}


def test_default_body_error_has_message():
    assert json.loads(default_body(503)) == {"message": "Service Unavailable"}


def test_default_body_unknown_status_has_message():
    assert json.loads(default_body(599)) == {"message": "Mock endpoint answered 599"}


def test_default_body_empty_for_no_content():
    assert default_body(204) == ""
