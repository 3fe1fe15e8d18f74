"""History and latency over a long history: every filter reads an index, time
bounds stay exact, the text searches read what a page needs, and latency comes
from a bounded window of recent deliveries."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sandbox import spec
from sandbox.delivery import selectors, services
from sandbox.delivery.models import Attempt, Delivery, Door
from sandbox.delivery.selectors import (
    HistoryFilters,
    delivery_history,
    latency_by_subscription,
)
from tests.factories import make_delivery, make_subscription

START = datetime(2025, 3, 1, tzinfo=UTC)
# A plan line that reads a whole table or index, or sorts what it read. The event
# name search's list of distinct names (event_names) is no table: it is read one
# index seek per name.
WHOLE = re.compile(r"^SCAN (?!event_names$)\S+$|TEMP B-TREE")


def _plans(call) -> list[str]:
    """The query plan of each statement `call` runs against deliveries or attempts."""
    with CaptureQueriesContext(connection) as captured:
        call()
    plans = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if "delivery_delivery" not in sql and "delivery_attempt" not in sql:
                continue
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            plans.append("\n".join(row[3] for row in cursor.fetchall()))
    return plans


def _whole_reads(plans: list[str]) -> list[str]:
    return [step for plan in plans for step in plan.splitlines() if WHOLE.search(step)]


def _steps(call) -> int:
    """How much work SQLite did for `call`: its virtual machine's steps, in
    hundreds."""
    connection.ensure_connection()
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    connection.connection.set_progress_handler(count, 100)
    try:
        call()
    finally:
        connection.connection.set_progress_handler(None, 100)
    return steps


def _spread(deliveries: list[Delivery], *, hours: int = 1) -> list[datetime]:
    """Stamp the deliveries `hours` apart in id order, from START."""
    stamps = []
    for number, delivery in enumerate(sorted(deliveries, key=lambda d: d.pk)):
        stamp = START + timedelta(hours=hours * number)
        Delivery.objects.filter(pk=delivery.pk).update(created_at=stamp)
        stamps.append(stamp)
    return stamps


@pytest.fixture
def history(db):
    """Two subscriptions' deliveries of several kinds, an hour apart."""
    busy = make_subscription(name="Busy")
    other = make_subscription(name="Other", endpoint_url="http://127.0.0.1:9/other")
    made = []
    for number in range(12):
        if number % 3:
            event = spec.sample_event("track", template="Order Completed")
        else:
            event = spec.sample_event("identify")
        event.update(userId=f"user-{number % 4}", messageId=f"message-{number}")
        subscription = busy if number % 2 else other
        made.append(make_delivery(subscription=subscription, event=event))
    _spread(made)
    Delivery.objects.filter(pk=made[5].pk).update(
        injected_duplicate=True, outcome="red", response_status=503, state="failed"
    )
    return {"busy": busy, "other": other, "made": made}


def _filters_to_check(history) -> dict[str, HistoryFilters]:
    oldest = START + timedelta(minutes=30)
    return {
        "subscription": HistoryFilters(subscription_id=history["busy"].pk),
        "type": HistoryFilters(event_type="identify"),
        "event": HistoryFilters(event_name="Order Completed"),
        "event, a part in another case": HistoryFilters(event_name="oRDER com"),
        "outcome": HistoryFilters(outcome="red"),
        "state": HistoryFilters(state="failed"),
        "duplicates": HistoryFilters(injected_duplicates=True),
        "status": HistoryFilters(status=503),
        "since": HistoryFilters(since=START + timedelta(hours=6)),
        "until (the oldest rows)": HistoryFilters(until=oldest),
        "since and until": HistoryFilters(
            since=START + timedelta(hours=2), until=START + timedelta(hours=5)
        ),
        "subscription, until": HistoryFilters(
            subscription_id=history["busy"].pk, until=oldest
        ),
        "type, since": HistoryFilters(
            event_type="track", since=START + timedelta(hours=6)
        ),
        "search": HistoryFilters(search="user-1"),
        "search, a prefix": HistoryFilters(search="mess"),
        "search, a prefix and a subscription": HistoryFilters(
            search="user-", subscription_id=history["busy"].pk
        ),
        "search, a prefix and a time bound": HistoryFilters(
            search="user-", until=START + timedelta(hours=4)
        ),
        "event and search": HistoryFilters(event_name="order", search="message-1"),
        "event, subscription, since": HistoryFilters(
            event_name="order",
            subscription_id=history["busy"].pk,
            since=START + timedelta(hours=3),
        ),
    }


def test_history_every_filter_reads_an_index_and_sorts_nothing(history):
    for name, filters in _filters_to_check(history).items():
        plans = _plans(lambda filters=filters: delivery_history(filters=filters))
        assert _whole_reads(plans) == [], (name, plans)


def test_history_id_prefixes_are_read_as_ranges_of_their_indexes(history):
    plans = "\n".join(
        _plans(lambda: delivery_history(filters=HistoryFilters(search="user-")))
    )
    for index in ("delivery_dedupe", "user_id", "anonymous_id"):
        assert re.search(rf"USING COVERING INDEX \S*{index}\S* \(\w+>\? AND", plans)
    assert "USING INTEGER PRIMARY KEY (rowid=?)" in plans


def _named(subscription, names: list[str], each: int) -> None:
    events = []
    for number in range(each):
        for name in names:
            event = spec.sample_event("track")
            event.update(event=name, messageId=f"{name}-{number}")
            events.append(event)
    services.deliveries_enqueue(
        target=services.Target.of(subscription), events=events, door=Door.COMPOSER
    )


@pytest.mark.django_db
def test_history_event_names_matching_a_part_read_only_what_a_page_needs():
    """Each matching name is an equality on the event_name index, its entries in id
    order: SQLite's sort keeps a page's worth and stops reading each name there,
    however many rows the names have."""
    subscription = make_subscription()
    names = ["Checkout Started", "Checkout Completed", "Checkout Abandoned"]
    _named(subscription, [*names, "Signed Up"], 60)
    filters = HistoryFilters(event_name="CHECKOUT")

    def page():
        found = delivery_history(filters=filters)
        assert len(found.deliveries) == selectors.PAGE_SIZE
        assert {d.event_name for d in found.deliveries} == set(names)

    plans = _plans(page)
    sort = [step for step in _whole_reads(plans) if "TEMP B-TREE" in step]
    assert sort == ["USE TEMP B-TREE FOR ORDER BY"], plans
    assert any("(event_name=?)" in plan for plan in plans), plans
    few = _steps(page)
    _named(subscription, names, 600)
    many = _steps(page)
    assert many < few * 1.5, (few, many)


def test_history_the_oldest_rows_are_read_from_the_primary_key_range(history):
    plans = _plans(
        lambda: delivery_history(
            filters=HistoryFilters(until=START + timedelta(minutes=30))
        )
    )
    assert any("USING INTEGER PRIMARY KEY (rowid<?)" in plan for plan in plans)


def test_history_filters_through_the_page_read_indexes(client, history):
    oldest = (START + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    first = f"history-row-{history['made'][0].pk}"
    url = reverse("delivery:history")
    for query in (
        {"until": oldest},
        {"subscription": history["other"].pk, "until": oldest},
        {"since": "2025-03-01T05:00", "until": "2025-03-01T08:00", "type": "track"},
        {"duplicates": "on"},
    ):
        plans = _plans(lambda query=query: client.get(url, query))
        assert _whole_reads(plans) == [], (query, plans)
        response = client.get(url, query)
        assert response.status_code == 200
        assert (first in response.text) == ("until" in query and len(query) < 3)


def test_history_accepts_the_first_and_last_minutes_a_date_can_hold(client, history):
    url = reverse("delivery:history")
    everything = client.get(
        url, {"since": "0001-01-01T00:00", "until": "9999-12-31T23:59"}
    )
    assert everything.status_code == 200
    assert everything.text.count('id="history-row-') == len(history["made"])
    nothing = client.get(
        url, {"since": "9999-12-31T23:59", "until": "0001-01-01T00:00"}
    )
    assert nothing.status_code == 200
    assert "No deliveries match." in nothing.text


def _walk(filters: HistoryFilters) -> list[int]:
    seen, before = [], None
    while True:
        page = delivery_history(filters=filters, before=before, limit=2)
        seen += [delivery.pk for delivery in page.deliveries]
        if page.next_before is None:
            return seen
        before = page.next_before


def test_history_time_bounds_find_exactly_the_rows_created_in_them(history):
    made = history["made"]
    ten = START + timedelta(hours=10)
    # The newest row was stamped 30 s before the one made ahead of it, as a writer
    # that stamped its row and then waited for the database leaves it.
    Delivery.objects.filter(pk=made[11].pk).update(
        created_at=ten - timedelta(seconds=30)
    )
    stamps = dict(Delivery.objects.values_list("pk", "created_at"))
    bounds = [
        (None, START),
        (None, START + timedelta(hours=1)),
        (START + timedelta(hours=3), START + timedelta(hours=3)),
        (START + timedelta(hours=3), START + timedelta(hours=7, minutes=1)),
        (ten, None),
        (ten - timedelta(seconds=20), None),
        (ten - timedelta(seconds=40), None),
        (None, ten),
        (None, ten - timedelta(seconds=15)),
        (None, ten - timedelta(seconds=40)),
        (ten - timedelta(seconds=40), ten - timedelta(seconds=15)),
        (START + timedelta(days=1), None),
        (None, START - timedelta(days=1)),
    ]
    for since, until in bounds:
        expected = sorted(
            (
                pk
                for pk, stamp in stamps.items()
                if (since is None or stamp >= since)
                and (until is None or stamp < until)
            ),
            reverse=True,
        )
        found = _walk(HistoryFilters(since=since, until=until))
        assert found == expected, (since, until)


def test_history_time_bounds_combine_with_a_filter(history):
    busy = history["busy"].pk
    until = START + timedelta(hours=6)
    expected = sorted(
        Delivery.objects.filter(subscription_id=busy, created_at__lt=until).values_list(
            "pk", flat=True
        ),
        reverse=True,
    )
    assert expected
    assert _walk(HistoryFilters(subscription_id=busy, until=until)) == expected


@pytest.mark.django_db(transaction=True)
def test_latency_reads_only_the_subscriptions_last_deliveries(receiver, deliver_due):
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    made = [make_delivery(subscription=subscription) for _ in range(6)]
    deliver_due()
    attempts = Attempt.objects.filter(delivery__subscription=subscription)
    attempts.filter(delivery__in=made[:3]).update(latency_ms=900)
    attempts.filter(delivery__in=made[3:]).update(latency_ms=10)

    latency = latency_by_subscription(subscription_ids=[subscription.pk], window=3)
    found = latency[subscription.pk]
    assert (found.p50, found.p95, found.attempts, found.deliveries) == (10, 10, 3, 3)
    everything = latency_by_subscription(subscription_ids=[subscription.pk])
    assert everything[subscription.pk].p95 == 900
    assert everything[subscription.pk].deliveries == 6


@pytest.mark.django_db
def test_latency_reads_a_bounded_range_of_an_index():
    subscription = make_subscription()
    make_delivery(subscription=subscription)
    plans = _plans(lambda: latency_by_subscription(subscription_ids=[subscription.pk]))
    assert plans
    assert _whole_reads(plans) == [], plans
