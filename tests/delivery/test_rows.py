"""Rows (feed, history, live pushes) never load an event or an exchanged body; the
watcher reads ids and versions first, then only what an open page shows."""

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext

from sandbox import spec
from sandbox.delivery import selectors
from sandbox.delivery.broadcast import FEED, Subscribers, Topic, Watcher
from tests.factories import make_delivery, make_subscription

pytestmark = pytest.mark.django_db(transaction=True)

HEAVY_COLUMNS = (
    '"payload"',
    '"custom_settings"',
    '"spec_problems"',
    '"request_body"',
    '"request_headers"',
    '"response_body"',
    '"response_headers"',
)


@pytest.fixture
def delivered(receiver, deliver_due):
    """Thirty-five delivered events, each with a large property."""
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    for _ in range(35):
        event = spec.sample_event("track")
        event["properties"]["notes"] = "x" * 20_000
        make_delivery(subscription=subscription, event=event)
    assert deliver_due() == 35


def _heavy(queries: list[dict]) -> list[str]:
    return [q["sql"] for q in queries if any(c in q["sql"] for c in HEAVY_COLUMNS)]


def test_rendering_the_feed_costs_two_queries_and_no_bodies(delivered):
    with CaptureQueriesContext(connection) as queries:
        html = render_to_string(
            "delivery/delivery_feed.html#delivery-feed",
            {"deliveries": selectors.delivery_feed(), "feed_window": 30},
        )
    assert html.count('class="delivery-row"') == 30
    assert ">200<" in html
    assert len(queries) == 2
    assert _heavy(queries.captured_queries) == []


def test_rendering_history_costs_one_query_and_no_bodies(delivered):
    with CaptureQueriesContext(connection) as queries:
        page = selectors.delivery_history(filters=selectors.HistoryFilters())
        html = render_to_string(
            "delivery/delivery_history.html#history-results",
            {"page": page, "query": ""},
        )
    assert html.count('id="history-row-') == 35
    assert len(queries) == 1
    assert _heavy(queries.captured_queries) == []


def _watcher(subscribers: Subscribers) -> Watcher:
    started_at = selectors.delivery_feed()[-1].created_at
    return Watcher(subscribers=subscribers, started_at=started_at)


def test_an_open_feed_costs_versions_then_its_window_and_no_bodies(delivered):
    subscribers = Subscribers()
    subscribers.add(Topic(FEED), "a-page")
    watcher = _watcher(subscribers)
    with CaptureQueriesContext(connection) as queries:
        pushes = watcher.collect(watcher.take(poll=True))
    [push] = pushes
    assert push.group == Topic(FEED).group
    assert push.html.count('class="delivery-row"') == 30
    # changed versions, the window's floor, the rows, their attempts
    assert len(queries) == 4
    assert _heavy(queries.captured_queries) == []
    first = queries.captured_queries[0]["sql"]
    assert "ORDER BY" not in first
    assert first.split(" FROM ")[0].count(",") == 1  # id and updated_at only
    assert watcher.collect(watcher.take(poll=True)) == []


def test_with_no_page_open_only_versions_are_read(delivered):
    watcher = _watcher(Subscribers())
    with CaptureQueriesContext(connection) as queries:
        assert watcher.collect(watcher.take(poll=True)) == []
    assert len(queries) == 1
    assert _heavy(queries.captured_queries) == []
