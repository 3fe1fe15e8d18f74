"""The ASGI handler under a real server: one switch for plain views, async views
that wait without holding a thread, and the same middleware on both paths."""

import base64
import threading
import time
import urllib.error
import urllib.request

import pytest
from channels.testing import HttpCommunicator

from tests.server import Server

# They share one real server process, started by the first of them.
pytestmark = pytest.mark.slow

API_KEY = "handler-key"
BASIC = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("handler"))
    running.prepare()
    running.query(
        "UPDATE mock_mockendpoint SET delay_ms = 3000, api_key = ? WHERE slug = 'demo'",
        API_KEY,
    )
    running.start()
    yield running
    running.stop()


def _open(request: urllib.request.Request | str, timeout: float = 10):
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        return error


def test_pages_answer_while_a_slow_mock_endpoint_waits(server):
    """The mock endpoint's 3 s wait runs in the event loop: page views, which run
    one at a time in the sync thread, are not held behind it."""
    answered = {}

    def call_mock(number: int) -> None:
        request = urllib.request.Request(
            f"{server.url}/mock/demo/",
            data=b'{"type":"track","event":"Slow","userId":"u"}',
            headers={"Content-Type": "application/json", "Authorization": BASIC},
        )
        started = time.monotonic()
        with _open(request) as response:
            answered[number] = (response.status, time.monotonic() - started)

    callers = [threading.Thread(target=call_mock, args=(n,)) for n in range(3)]
    for caller in callers:
        caller.start()
    time.sleep(0.5)  # the three requests are now waiting inside the mock view

    started = time.monotonic()
    with _open(server.url + "/") as page:
        assert page.status == 200
        assert b"Event Tester" in page.read()
    assert time.monotonic() - started < 1.5

    for caller in callers:
        caller.join(15)
    assert sorted(status for status, _ in answered.values()) == [200, 200, 200]
    # Waited concurrently: three 3 s waits took about 3 s, not 9.
    assert all(2.9 <= seconds < 6 for _, seconds in answered.values())


def test_both_paths_run_the_middleware(server):
    with _open(server.url + "/") as page:
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert "csrftoken=" in page.headers["Set-Cookie"]

    # The mock endpoint is answered ahead of Django (sandbox.mock.receiver), with
    # the same two headers.
    with _open(server.url + "/mock/demo/") as mock:
        assert mock.status == 405
        assert mock.headers["X-Frame-Options"] == "DENY"
        assert mock.headers["X-Content-Type-Options"] == "nosniff"

    forged = urllib.request.Request(server.url + "/send/", data=b"payload=%7B%7D")
    with _open(forged) as refused:
        assert refused.status == 403
        assert b"reload the page and try again" in refused.read().lower()


def test_an_unknown_path_is_the_sandbox_404(server):
    with _open(server.url + "/no/such/page/") as missing:
        assert missing.status == 404
        assert b"Traceback" not in missing.read()


@pytest.mark.django_db(transaction=True)
async def test_django_s_async_path_runs_the_middleware_too():
    """An async view (the mock endpoint's, called through Django itself rather
    than the server's front) gets the same middleware as a plain one."""
    from sandbox.asgi import django_asgi_app

    communicator = HttpCommunicator(
        django_asgi_app, "GET", "/mock/demo/", headers=[(b"host", b"127.0.0.1")]
    )
    answer = await communicator.get_response()
    await communicator.wait()  # the handler closes the request's body file
    headers = {name.decode(): value.decode() for name, value in answer["headers"]}
    assert answer["status"] == 405
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
