"""Segment's webhook request, byte for byte, and its reading of status codes."""

import base64
import json

from sandbox.delivery import webhook


def test_authorization_value_matches_segment_reference_example():
    assert webhook.authorization_value("segment") == "Basic c2VnbWVudDo="


def test_authorization_value_keeps_colon_for_empty_key():
    assert base64.b64decode(webhook.authorization_value("")[6:]) == b":"


def test_build_request_has_exactly_segments_headers_in_order():
    request = webhook.build_request(
        url="https://partner.example/hook",
        api_key="segment",
        custom_settings={},
        event={"type": "track", "event": "Ping"},
    )
    assert request.method == "POST"
    assert request.headers == [
        ("Accept", "*/*"),
        ("Authorization", "Basic c2VnbWVudDo="),
        ("Cache-Control", "no-cache"),
        ("Connection", "Keep-Alive"),
        ("Content-Length", str(len(request.body))),
        ("Content-Type", "application/json"),
        ("User-Agent", "Segment.io/1.0"),
        ("X-Segment-Settings", "e30="),
    ]


def test_build_request_body_is_the_event_json():
    event = {"type": "identify", "userId": "u1", "traits": {"name": "Zoë"}}
    request = webhook.build_request(
        url="http://x", api_key="k", custom_settings={}, event=event
    )
    assert json.loads(request.body) == event
    assert "Zoë".encode() in request.body


def test_settings_header_is_base64_json_without_api_key():
    value = webhook.settings_value({"apiKey": "secret", "region": "eu", "n": 3})
    assert json.loads(base64.b64decode(value)) == {"region": "eu", "n": 3}


def test_decode_helpers_round_trip():
    assert webhook.decode_basic("Basic c2VnbWVudDo=") == "segment:"
    assert webhook.decode_basic("Bearer abc") is None
    assert webhook.decode_basic("Basic !!!") is None
    assert webhook.decode_settings(webhook.settings_value({"a": 1})) == {"a": 1}


def test_classify_status_colours_as_the_dev_center_test_suite():
    assert webhook.classify_status(200).outcome == "green"
    assert webhook.classify_status(202).outcome == "green"
    assert webhook.classify_status(501).outcome == "yellow"
    assert webhook.classify_status(302).outcome == "red"
    assert webhook.classify_status(400).outcome == "red"


def test_classify_status_reason_uses_segments_reading_and_message():
    verdict = webhook.classify_status(401, message="API token expired")
    assert verdict.reason == (
        "the endpoint says the API key is invalid or expired (401): API token expired"
    )
    assert webhook.classify_status(200).reason == "processed (200)"
    assert webhook.classify_status(202).reason == "accepted, not processed yet (202)"
    assert webhook.classify_status(501).reason == "unsupported event type (501)"


def test_retryable_statuses_follow_segment_reference():
    for status in (408, 410, 429, 460, 500, 502, 503, 504, 599):
        assert webhook.classify_status(status).retryable, status
    for status in (200, 301, 400, 401, 403, 404, 422, 501, 505, 511):
        assert not webhook.classify_status(status).retryable, status


def test_error_message_reads_json_message_only():
    assert webhook.error_message('{"message": "nope"}', "application/json") == "nope"
    assert webhook.error_message("<b>x</b>", "text/html") == ""
    assert webhook.error_message('{"error": "x"}', "application/json") == ""
    # The member's name spelled with escapes is still its name.
    escaped = '{"\\u006dessage": "nope"}'
    assert webhook.error_message(escaped, "application/json") == "nope"
    assert webhook.error_message('{"m": "\\u00e9"}', "application/json") == ""
    assert webhook.error_message("{broken", "application/json") == ""


def test_absurdly_nested_answers_do_not_crash_the_reading():
    bomb = "[" * 100_000 + "]" * 100_000
    assert webhook.error_message(bomb, "application/json") == ""
    from sandbox.display import pretty_json

    assert pretty_json(bomb) == (bomb, False)
