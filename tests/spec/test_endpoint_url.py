"""The one check of an endpoint URL, without a database."""

import pytest

from sandbox.spec.endpoint_url import (
    ENDPOINT_URL_CREDENTIALS_ERROR,
    ENDPOINT_URL_HOST_ERROR,
    ENDPOINT_URL_PORT_ERROR,
    ENDPOINT_URL_SCHEME_ERROR,
    ENDPOINT_URL_WHITESPACE_ERROR,
    endpoint_url_problem,
)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:3000/segment",
        "HTTPS://partner.example.com/in",
        "http://receiver:3000",
        "http://[::1]:8080/hook",
    ],
)
def test_endpoint_url_problem_accepts_any_http_url_with_a_host(url):
    assert endpoint_url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/in", ENDPOINT_URL_SCHEME_ERROR),
        ("localhost:3000/segment", ENDPOINT_URL_SCHEME_ERROR),
        ("", ENDPOINT_URL_SCHEME_ERROR),
        ("http://localhost/my hook", ENDPOINT_URL_WHITESPACE_ERROR),
        ("http://", ENDPOINT_URL_HOST_ERROR),
        ("http://[::1/segment", ENDPOINT_URL_HOST_ERROR),
        ("http://user:pass@localhost/", ENDPOINT_URL_CREDENTIALS_ERROR),
        ("http://localhost:0/", ENDPOINT_URL_PORT_ERROR),
        ("http://localhost:99999/", ENDPOINT_URL_PORT_ERROR),
    ],
)
def test_endpoint_url_problem_names_the_one_thing_wrong(url, problem):
    assert endpoint_url_problem(url) == problem
