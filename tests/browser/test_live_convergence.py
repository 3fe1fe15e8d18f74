"""An open Event Tester ends showing exactly what is stored, after a burst of sends."""

import threading
import time

import pytest

from sandbox.delivery.selectors import FEED_SIZE
from tests.server import composer_send

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BURST = 100

DOM_ROWS = """() => Array.from(
  document.querySelectorAll('#delivery-feed > .delivery-row'),
  (row) => [row.id, row.dataset.state, row.dataset.attempts])"""


def _send(url: str, subscription: int, number: int, start: threading.Barrier) -> int:
    """One browser-less client: a CSRF cookie from the page, then one send."""
    event = {"type": "track", "event": "Burst", "userId": f"burst-{number}"}
    status, _ = composer_send(
        url, subscription, event, before_send=start.wait, timeout=120
    )
    return status


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
