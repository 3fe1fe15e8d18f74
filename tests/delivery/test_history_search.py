"""History's text searches: a part of an event name in any case, the start of an
id; the same answers whether the indexes or a bounded scan of the newest rows
find them; and the page that shows them."""

import pytest
from django.urls import reverse

from sandbox.delivery import selectors
from sandbox.delivery.selectors import HistoryFilters, delivery_history
from tests.factories import make_delivery, make_subscription

NAMES = [
    "Order Completed",
    "order refunded",
    "Product Viewed",
    "Überweisung Gesendet",
    "Reorder Suggested",
]


def _send(subscription, *, name: str = "", **ids: str):
    event = {"type": "track", "event": name} if name else {"type": "identify"}
    event = {"userId": "someone", **event, **ids}
    return make_delivery(subscription=subscription, event=event)


def _found(filters: HistoryFilters, *, limit: int = selectors.PAGE_SIZE) -> list[int]:
    """Every id the filters find, page by page, newest first."""
    seen, before = [], None
    while True:
        page = delivery_history(filters=filters, before=before, limit=limit)
        seen += [delivery.pk for delivery in page.deliveries]
        if page.next_before is None:
            return seen
        before = page.next_before


@pytest.fixture
def named(db):
    subscription = make_subscription()
    made = {name: _send(subscription, name=name) for name in NAMES}
    made["identify"] = _send(subscription)
    return made


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("ORDER", ["Order Completed", "order refunded", "Reorder Suggested"]),
        ("order c", ["Order Completed"]),
        ("viewed", ["Product Viewed"]),
        ("über", ["Überweisung Gesendet"]),
        ("ÜBERWEISUNG", ["Überweisung Gesendet"]),
        ("Completed Order", []),
    ],
)
def test_event_name_search_finds_a_part_in_any_case(named, term, expected):
    found = _found(HistoryFilters(event_name=term))
    assert found == sorted((named[name].pk for name in expected), reverse=True)


def test_event_name_search_that_matches_nothing_reads_no_rows(
    named, django_assert_max_num_queries
):
    with django_assert_max_num_queries(1):
        page = delivery_history(filters=HistoryFilters(event_name="nothing like it"))
    assert page.deliveries == []
    assert page.next_before is None


@pytest.fixture
def identified(db):
    subscription = make_subscription()
    return {
        "message": _send(subscription, messageId="msg-Alpha-1", userId="x"),
        "user-1": _send(subscription, userId="user-1", messageId="m-2"),
        "user-10": _send(subscription, userId="user-10", messageId="m-3"),
        "anonymous": _send(subscription, anonymousId="anon-7", messageId="m-4"),
        "other": _send(subscription, userId="someone-user-1", messageId="m-5"),
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("user-1", ["user-1", "user-10"]),
        ("user-10", ["user-10"]),
        ("msg-A", ["message"]),
        ("anon-", ["anonymous"]),
        ("m-", ["user-1", "user-10", "anonymous", "other"]),
        # A prefix, not a part; ids are matched in the case typed.
        ("ser-1", []),
        ("USER-1", []),
        ("msg-alpha", []),
    ],
)
def test_id_search_finds_the_start_of_any_of_the_three_ids(identified, term, expected):
    found = _found(HistoryFilters(search=term))
    assert found == sorted((identified[key].pk for key in expected), reverse=True)


def test_id_search_bounds_hold_at_the_ends_of_unicode(db):
    subscription = make_subscription()
    top = "u\U0010ffff"
    inside = _send(subscription, userId=top)
    longer = _send(subscription, userId=top + "z")
    _send(subscription, userId="v")
    _send(subscription, userId="u")
    assert _found(HistoryFilters(search=top)) == [longer.pk, inside.pk]
    below_surrogates = _send(subscription, userId="a\ud7ff")
    _send(subscription, userId="a\ue000")
    assert _found(HistoryFilters(search="a\ud7ff")) == [below_surrogates.pk]


def test_both_searches_and_the_other_filters_combine(named):
    subscription = make_subscription(
        name="Second", endpoint_url="http://127.0.0.1:9/second"
    )
    wanted = _send(subscription, name="Order Shipped", userId="user-1")
    other_user = _send(subscription, name="Order Shipped", userId="user-2")
    _send(subscription, name="Signed Up", userId="user-1")
    filters = HistoryFilters(
        event_name="order", search="user-1", subscription_id=subscription.pk
    )
    assert _found(filters) == [wanted.pk]
    both = HistoryFilters(event_name="SHIPPED", search="user-")
    assert _found(both) == [other_user.pk, wanted.pk]


@pytest.fixture
def crowd(db):
    """Deliveries enough to overflow small search bounds."""
    subscription = make_subscription()
    made = []
    for number in range(14):
        made.append(
            _send(
                subscription,
                name=f"Step {number % 5} {'Done' if number % 2 else 'Skipped'}",
                userId=f"user-{number % 3}",
                messageId=f"crowd-{number}",
            )
        )
    return made


@pytest.mark.parametrize(
    "filters",
    [
        HistoryFilters(event_name="done"),
        HistoryFilters(event_name="STEP 1"),
        HistoryFilters(search="user-1"),
        HistoryFilters(search="crowd-1"),
        HistoryFilters(event_name="skipped", search="user-"),
    ],
    ids=["part", "another part", "user prefix", "message prefix", "both"],
)
def test_a_search_too_broad_for_the_indexes_finds_the_same_rows(
    crowd, filters, monkeypatch
):
    by_index = _found(filters, limit=2)
    expected = sorted(
        (
            delivery.pk
            for delivery in crowd
            if filters.matches_text(
                event_name=delivery.event_name,
                message_id=delivery.message_id,
                user_id=delivery.user_id,
                anonymous_id=delivery.anonymous_id,
            )
        ),
        reverse=True,
    )
    assert by_index == expected
    monkeypatch.setattr(selectors, "EVENT_NAMES_READ", 2)
    monkeypatch.setattr(selectors, "PREFIX_MATCHES_READ", 1)
    monkeypatch.setattr(selectors, "SEARCH_SCAN_ROWS", 3)
    # Read in chunks of one row, then two.
    monkeypatch.setattr(selectors, "SEARCH_SCAN_FIRST_CHUNK", 1)
    assert _found(filters, limit=2) == expected


def test_a_broad_search_reads_a_bounded_run_and_says_how_far(crowd, monkeypatch):
    monkeypatch.setattr(selectors, "PREFIX_MATCHES_READ", 1)
    monkeypatch.setattr(selectors, "SEARCH_SCAN_ROWS", 4)
    broad = HistoryFilters(search="crowd-1")  # crowd-1 and crowd-10 to crowd-13
    page = delivery_history(filters=broad)
    assert page.deliveries == crowd[13:9:-1]
    assert page.searched_down_to == page.next_before == crowd[10].pk
    # The next four rows hold no match: an empty page that says how far it read.
    page = delivery_history(filters=broad, before=page.next_before)
    assert page.deliveries == []
    assert page.searched_down_to == page.next_before == crowd[6].pk
    page = delivery_history(filters=broad, before=crowd[2].pk)
    assert page.deliveries == [crowd[1]]
    assert page.next_before is page.searched_down_to is None
    full = delivery_history(filters=broad, limit=1)
    assert full.deliveries == [crowd[13]]
    assert full.next_before == crowd[13].pk
    assert full.searched_down_to is None


@pytest.mark.django_db
def test_history_page_keeps_its_filters_and_watches_them_live(client, named):
    url = reverse("delivery:history")
    html = client.get(url, {"event": "ORDER", "q": ""}).content.decode()
    assert 'value="ORDER"' in html
    assert 'ws-connect="/ws/history/?event=ORDER&amp;q="' in html
    assert html.count('id="history-row-') == 3
    older = client.get(url, {"event": "ORDER", "before": named["identify"].pk})
    assert "ws-connect" not in older.content.decode()
    assert 'id="history-older"' in older.content.decode()


@pytest.mark.django_db
def test_history_catch_up_renders_the_list_alone(client, named):
    response = client.get(
        reverse("delivery:history"),
        {"event": "order"},
        headers={"HX-Request": "true", "HX-Target": "history-list"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="history-list"')
    assert 'ws-connect="' not in html
    assert html.count('id="history-row-') == 3
    swapped = client.get(
        reverse("delivery:history"),
        {"event": "order"},
        headers={"HX-Request": "true", "HX-Target": "history-results"},
    ).content.decode()
    assert swapped.lstrip().startswith('<div id="history-results"')
    assert 'ws-connect="/ws/history/?event=order"' in swapped
