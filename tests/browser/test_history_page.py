"""The history page in a real browser against a real server: searching a part of
an event name in any case and the start of an id, filters kept in the URL across
a reload, and new deliveries arriving at the top of a filtered page without a
reload or any polling."""

import re
import urllib.parse
import uuid

import pytest
from playwright.sync_api import expect

from sandbox.delivery.selectors import PAGE_SIZE
from tests.server import composer_send

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE_TIMEOUT_MS = 10_000
ROWS = "#history-rows .history-row"


def _demo(server) -> int:
    [(pk,)] = server.query(
        "SELECT id FROM subscriptions_subscription WHERE name = 'Demo subscription'"
    )
    return pk


def _send(server, **event) -> int:
    """A send through the composer's HTTP request; the new delivery's id."""
    event = {"type": "track", "userId": "history-user", **event}
    _, html = composer_send(server.url, _demo(server), event)
    return int(re.search(r'id="delivery-row-(\d+)"', html).group(1))


def _shown(page) -> list[int]:
    ids = page.eval_on_selector_all(ROWS, "(rows) => rows.map((row) => row.id)")
    return [int(row_id.rsplit("-", 1)[1]) for row_id in ids]


def _expect_shown(page, ids: list[int], timeout: float = 5_000) -> None:
    """Wait until the list shows exactly these rows, in this order."""
    rows = page.locator(ROWS)
    expect(rows).to_have_count(len(ids), timeout=timeout)
    for number, pk in enumerate(ids):
        expect(rows.nth(number)).to_have_id(f"history-row-{pk}", timeout=timeout)


def _query(page) -> dict[str, str]:
    """The page's URL parameters that have a value."""
    query = urllib.parse.urlsplit(page.evaluate("location.href")).query
    return dict(urllib.parse.parse_qsl(query))


def _live(page) -> None:
    page.wait_for_selector("#live-dot.on", state="attached", timeout=LIVE_TIMEOUT_MS)


def test_history_search_finds_a_part_of_a_name_in_any_case_and_id_prefixes(
    server, page
):
    tag = uuid.uuid4().hex[:8]
    started = _send(server, event=f"Checkout {tag} Started", userId=f"u{tag}-1")
    finished = _send(server, event=f"checkout {tag} finished", userId=f"u{tag}-10")
    other = _send(
        server, event=f"Signed Up {tag}", userId=f"x-u{tag}-1", anonymousId=f"a{tag}"
    )
    page.goto(server.url + "/history/")

    page.fill("#id_event", f"CHECKOUT {tag.upper()}")
    _expect_shown(page, [finished, started])
    expect(page).to_have_url(re.compile(rf"event=CHECKOUT(\+|%20){tag.upper()}"))

    page.fill("#id_event", f"{tag} fin")
    _expect_shown(page, [finished])

    page.fill("#id_event", "")
    page.fill("#id_q", f"u{tag}-1")
    # A prefix of userId: u…-1 and u…-10, not x-u…-1.
    _expect_shown(page, [finished, started])
    page.fill("#id_q", f"u{tag}-10")
    _expect_shown(page, [finished])
    page.fill("#id_q", f"a{tag}")
    _expect_shown(page, [other])
    # Ids keep their case.
    page.fill("#id_q", f"U{tag}-1")
    expect(page.locator("#history-empty")).to_contain_text("No deliveries match.")
    _expect_shown(page, [])


def test_history_filters_survive_a_reload(server, page):
    tag = uuid.uuid4().hex[:8]
    wanted = _send(server, event=f"Reload {tag} Kept", userId=f"keep-{tag}")
    _send(server, event=f"Reload {tag} Kept", userId=f"drop-{tag}")
    _send(server, event="Something else", userId=f"keep-{tag}")
    page.goto(server.url + "/history/")
    page.fill("#id_event", f"reload {tag}")
    page.fill("#id_q", f"keep-{tag}")
    page.select_option("#id_type", "track")
    _expect_shown(page, [wanted])
    expect(page).to_have_url(re.compile(rf"q=keep-{tag}"))
    wanted_query = {"event": f"reload {tag}", "q": f"keep-{tag}", "type": "track"}
    assert _query(page) == wanted_query

    page.reload()
    expect(page.locator("#id_event")).to_have_value(f"reload {tag}")
    expect(page.locator("#id_q")).to_have_value(f"keep-{tag}")
    expect(page.locator("#id_type")).to_have_value("track")
    _expect_shown(page, [wanted])
    # The reloaded page watches the same filters.
    _live(page)
    socket = page.locator("#history-results").get_attribute("ws-connect")
    assert f"q=keep-{tag}" in socket


def test_new_deliveries_appear_live_at_the_top_of_a_filtered_history(server, page):
    tag = uuid.uuid4().hex[:8]
    earlier = _send(server, event=f"Live {tag} Earlier")
    gets: list[str] = []
    page.on(
        "request",
        lambda request: (
            gets.append(request.url)
            if request.method == "GET" and request.resource_type in ("xhr", "fetch")
            else None
        ),
    )
    page.goto(server.url + f"/history/?event={tag.upper()}")
    everything = page.context.new_page()
    everything.goto(server.url + "/history/")
    _live(page)
    _live(everything)
    expect(page.locator(ROWS)).to_have_count(1)

    elsewhere = _send(server, event="Not Tagged At All")
    arrived = _send(server, event=f"live {tag} arrived")
    rows = page.locator(ROWS)
    expect(rows).to_have_count(2, timeout=LIVE_TIMEOUT_MS)
    expect(rows.first).to_have_id(f"history-row-{arrived}")
    expect(rows.first).to_contain_text(f"live {tag} arrived")
    # Its row follows the delivery as it is stored: it ends delivered.
    expect(rows.first).to_contain_text("delivered", timeout=LIVE_TIMEOUT_MS)
    assert _shown(page) == [arrived, earlier]
    assert elsewhere not in _shown(page)
    # The unfiltered page lists both, newest first.
    expect(everything.locator(ROWS).first).to_have_id(
        f"history-row-{arrived}", timeout=LIVE_TIMEOUT_MS
    )
    assert _shown(everything)[:2] == [arrived, elsewhere]

    page.wait_for_timeout(1500)
    # One catch-up as the socket opened; nothing polled.
    assert len(gets) == 1, gets
    assert "event=" in gets[0]


def test_a_live_history_keeps_one_page_and_offers_the_rest(server, page):
    tag = uuid.uuid4().hex[:8]
    page.goto(server.url + f"/history/?event=bulk+{tag}")
    _live(page)
    expect(page.locator("#history-empty")).to_be_visible()
    expect(page.locator("#history-older")).to_be_hidden()
    events = [
        {"type": "track", "event": f"Bulk {tag}", "userId": f"u{number}"}
        for number in range(PAGE_SIZE + 2)
    ]
    server.shell(
        "from sandbox.delivery import services\n"
        "from sandbox.subscriptions.models import Subscription\n"
        "demo = Subscription.objects.get(name='Demo subscription')\n"
        "services.deliveries_enqueue(target=services.Target.of(demo),"
        f" events={events!r}, door='composer')\n"
    )
    rows = page.locator(ROWS)
    expect(rows).to_have_count(PAGE_SIZE, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#history-empty")).to_have_count(0)
    older = page.locator("#history-older")
    expect(older).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    shown = _shown(page)
    assert shown == sorted(shown, reverse=True)
    stored = [
        pk
        for (pk,) in server.query(
            "SELECT id FROM delivery_delivery WHERE event_name = ? ORDER BY id DESC",
            f"Bulk {tag}",
        )
    ]
    assert shown == stored[:PAGE_SIZE]

    older.click()
    expect(rows).to_have_count(2)
    assert _shown(page) == stored[PAGE_SIZE:]
    assert _query(page)["before"] == str(stored[PAGE_SIZE - 1])
