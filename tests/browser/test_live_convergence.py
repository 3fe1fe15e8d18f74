"""An open Event Tester ends showing exactly what is stored, after a burst of sends."""

import http.cookiejar
import json
import threading
import time
import urllib.parse
import urllib.request

import pytest

from sandbox.delivery.selectors import FEED_SIZE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BURST = 100

DOM_ROWS = """() => Array.from(
  document.querySelectorAll('#delivery-feed > .delivery-row'),
  (row) => [row.id, row.dataset.state, row.dataset.attempts])"""


def _send(url: str, subscription: int, number: int, start: threading.Barrier) -> int:
    """One browser-less client: a CSRF cookie from the page, then one send."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(url + "/", timeout=60).read()
    token = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    event = {"type": "track", "event": "Burst", "userId": f"burst-{number}"}
    form = urllib.parse.urlencode(
        {
            "subscription": subscription,
            "event_type": "track",
            "source": "analytics.js",
            "template": "",
            "payload": json.dumps(event),
        }
    ).encode()
    request = urllib.request.Request(
        url + "/send/", data=form, headers={"X-CSRFToken": token, "HX-Request": "true"}
    )
    start.wait()
    with opener.open(request, timeout=120) as response:
        return response.status


def _stored_feed(server) -> list[list[str]]:
    rows = server.query(
        "SELECT id, state, attempt_count FROM delivery_delivery"
        " ORDER BY id DESC LIMIT ?",
        FEED_SIZE,
    )
    return [[f"delivery-row-{pk}", state, str(count)] for pk, state, count in rows]


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_a_burst_of_sends_ends_with_the_stored_rows_on_the_page(server, page):
    [(subscription,)] = server.query(
        "SELECT id FROM subscriptions_subscription WHERE name = 'Demo subscription'"
    )
    page.goto(server.url + "/")
    page.wait_for_selector("#live-dot.on", state="attached", timeout=10_000)
    start = threading.Barrier(BURST)
    statuses: list[int] = []
    threads = [
        threading.Thread(
            target=lambda n=n: statuses.append(
                _send(server.url, subscription, n, start)
            )
        )
        for n in range(BURST)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert statuses == [200] * BURST

    assert _wait(
        lambda: (
            server.query(
                "SELECT count(*) FROM delivery_delivery"
                " WHERE state IN ('pending', 'retrying')"
            )
            == [(0,)]
        ),
        timeout=120,
    )
    expected = _stored_feed(server)
    assert len(expected) == FEED_SIZE
    _wait(lambda: page.evaluate(DOM_ROWS) == expected, timeout=10)
    assert page.evaluate(DOM_ROWS) == expected
