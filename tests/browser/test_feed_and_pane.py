"""The Event Tester's feed and delivery pane, and a delivery's own page, in a real
browser against a real server: choosing rows and attempts, resending, the
keyboard, wide content, and the live connection's banner."""

import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.server import Server, composer_send

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE_TIMEOUT_MS = 10_000
# Segment's ten attempts, 10,000 times faster: about two seconds in all.
FAST = 10_000


def _subscription(server, *, fail_first_n: int = 0, time_scale: float = 1) -> str:
    """A subscription to a mock endpoint of the server; returns its name."""
    name = f"hook-{uuid.uuid4().hex[:8]}"
    server.shell(
        "from sandbox.mock.services import mock_endpoint_create\n"
        "from sandbox.subscriptions.services import subscription_create\n"
        f"mock_endpoint_create(slug={name!r}, name={name!r}, api_key='k-{name}',"
        f" fail_first_n={fail_first_n}, fail_status=500)\n"
        f"subscription_create(name={name!r}, endpoint_url="
        f"{server.url + '/mock/' + name + '/'!r}, api_key='k-{name}',"
        f" time_scale={time_scale})\n"
    )
    return name


def _refused_subscription(server) -> str:
    """A subscription whose endpoint refuses every connection, retried fast."""
    name = f"refused-{uuid.uuid4().hex[:8]}"
    server.shell(
        "from sandbox.subscriptions.services import subscription_create\n"
        f"subscription_create(name={name!r}, endpoint_url='http://127.0.0.1:9/hook',"
        f" api_key='k', time_scale={FAST})\n"
    )
    return name


def _subscription_pk(server, name: str) -> int:
    sql = "SELECT id FROM subscriptions_subscription WHERE name = ?"
    return server.query(sql, name)[0][0]


def _send(server, name: str, **event) -> int:
    """A send through the composer (its HTTP request); the new delivery's id."""
    event = {"type": "track", "event": "Feed Row", "userId": "user-1", **event}
    event = {key: value for key, value in event.items() if value is not None}
    _, html = composer_send(server.url, _subscription_pk(server, name), event)
    return int(re.search(r'id="delivery-row-(\d+)"', html).group(1))


def _send_from_page(page, name: str) -> int:
    """A generated sample sent with the page's own Send button; the delivery's id."""
    page.select_option("#id_subscription", label=name)
    previous = page.locator("#composer-result a").first
    before = previous.get_attribute("href") if previous.count() else None
    payload = page.input_value("#id_payload")
    page.click("#generate-sample")
    expect(page.locator("#id_payload")).not_to_have_value(payload)
    page.click("#send-button")
    link = page.locator("#composer-result a").first
    expect(link).not_to_have_attribute("href", before or "")
    expect(link).to_have_attribute("href", re.compile(r"/deliveries/\d+/"))
    return int(re.search(r"\d+", link.get_attribute("href")).group())


def _htmx_errors(page) -> list[str]:
    """htmx logs what it cannot do (a missing target, say) as console errors."""
    errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and message.text.startswith("htmx:")
            and errors.append(message.text)
        ),
    )
    return errors


def _open_tester(page, server) -> None:
    page.goto(server.url + "/")
    expect(page.locator("#live-dot.on")).to_be_attached(timeout=LIVE_TIMEOUT_MS)


def _expect_pane_shows(page, pk: int, text: str = "") -> None:
    pane = page.locator("#delivery-detail-pane > #delivery-detail")
    expect(pane).to_have_attribute("ws-connect", f"/ws/deliveries/{pk}/")
    expect(pane).to_have_attribute("data-delivery", str(pk))
    if text:
        expect(pane.locator(".attempt-head")).to_contain_text(text)


def _attempts_of(page, pk: int, count: int) -> None:
    expect(page.locator(f"#delivery-row-{pk}")).to_have_attribute(
        "data-attempts", str(count), timeout=20_000
    )


def _fits_the_window(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_every_row_click_shows_its_delivery_and_sending_still_fills_the_pane(
    server, page
):
    name = _subscription(server)
    errors = _htmx_errors(page)
    _open_tester(page, server)
    sent = [_send(server, name, event=f"Row {n}") for n in range(3)]
    for pk in sent:
        expect(page.locator(f"#delivery-row-{pk}")).to_be_attached(
            timeout=LIVE_TIMEOUT_MS
        )

    for n in (1, 0, 2, 1):
        page.click(f"#delivery-row-{sent[n]} .row-link")
        _expect_pane_shows(page, sent[n], f"Row {n}")

    newest = _send_from_page(page, name)
    _expect_pane_shows(page, newest)
    expect(page.locator("#delivery-detail")).to_contain_text("processed (200)")
    page.click(f"#delivery-row-{sent[0]} .row-link")
    _expect_pane_shows(page, sent[0])
    page.click(f"#delivery-row-{newest} .row-link")
    _expect_pane_shows(page, newest)
    assert page.locator("#delivery-detail-pane").count() == 1
    assert errors == []


def test_ten_attempts_never_widen_the_page(server, page):
    page.set_viewport_size({"width": 1440, "height": 900})
    failing = _subscription(server, fail_first_n=100, time_scale=FAST)
    refused = _refused_subscription(server)
    _open_tester(page, server)
    five_hundreds = _send(server, failing, event="Always 500")
    refusals = _send(server, refused, event="Always refused")
    _attempts_of(page, five_hundreds, 10)
    _attempts_of(page, refusals, 10)
    expect(page.locator(f"#delivery-row-{refusals} .mini-timeline li")).to_have_count(
        10
    )
    assert _fits_the_window(page)

    for pk in (refusals, five_hundreds):
        page.click(f"#delivery-row-{pk} .row-link")
        _expect_pane_shows(page, pk)
        assert _fits_the_window(page)
    # The composer keeps its column.
    assert page.locator("#composer").bounding_box()["width"] > 380


def test_a_delivery_opens_one_attempt_and_the_timeline_chooses_another(server, page):
    name = _subscription(server, fail_first_n=100, time_scale=FAST)
    pk = _send(server, name, event="Ten Attempts")
    page.goto(f"{server.url}/deliveries/{pk}/")
    expect(page.locator("#attempt-timeline tbody tr[data-attempt]")).to_have_count(
        10, timeout=20_000
    )
    view = page.locator("#attempt-view")
    expect(view).to_have_attribute("data-attempt", "10")
    expect(page.locator("section.attempt")).to_have_count(1)
    expect(view).to_contain_text("Failing attempt 10 of 100")
    assert page.evaluate("document.documentElement.scrollHeight") < 3000

    page.click('#attempt-timeline a[data-attempt-link="3"]')
    expect(view).to_have_attribute("data-attempt", "3")
    expect(view).to_contain_text("Failing attempt 3 of 100")
    expect(page.locator('#attempt-timeline tr[aria-current="true"]')).to_have_attribute(
        "data-attempt", "3"
    )
    # Keyboard: the timeline's links are in the tab order and open with Enter.
    page.focus('#attempt-timeline a[data-attempt-link="5"]')
    page.keyboard.press("Enter")
    expect(view).to_have_attribute("data-attempt", "5")
    expect(page.locator("#attempt-5")).to_contain_text("HTTP 500")
    expect(page.locator('#attempt-timeline tr[aria-current="true"]')).to_have_attribute(
        "data-attempt", "5"
    )
    # Without scripts the same links are pages of their own.
    page.goto(f"{server.url}/deliveries/{pk}/?attempt=2")
    expect(view).to_have_attribute("data-attempt", "2")


LATEST_OPEN = """(least) => {
  const rows = document.querySelectorAll("#attempt-timeline tbody tr[data-attempt]");
  const view = document.getElementById("attempt-view");
  return rows.length >= least && view?.dataset.attempt === String(rows.length);
}"""


def test_a_new_attempt_opens_unless_the_user_chose_one(server, page):
    # Segment's backoff 200 times faster: attempts about 0.14 s, 0.28 s, 0.56 s,
    # 1.1 s, 2.2 s and 4.5 s apart.
    name = _subscription(server, fail_first_n=100, time_scale=200)
    pk = _send(server, name, event="Still Failing")
    page.goto(f"{server.url}/deliveries/{pk}/")
    view = page.locator("#attempt-view")
    rows = page.locator("#attempt-timeline tbody tr[data-attempt]")
    # Pushed attempts open as they arrive: the latest is the one open. Read in
    # one look at the page, since the next attempt may be pushed between two.
    page.wait_for_function(LATEST_OPEN, arg=3, timeout=20_000)

    page.click('#attempt-timeline a[data-attempt-link="1"]')
    expect(view).to_have_attribute("data-attempt", "1")
    shown = rows.count()
    expect(rows).to_have_count(shown + 1, timeout=20_000)
    expect(view).to_have_attribute("data-attempt", "1")
    expect(view).to_contain_text("Failing attempt 1 of 100")
    expect(page.locator('#attempt-timeline tr[aria-current="true"]')).to_have_attribute(
        "data-attempt", "1"
    )

    # Choosing the latest follows the latest again.
    latest = rows.count()
    page.click(f'#attempt-timeline a[data-attempt-link="{latest}"]')
    expect(view).to_have_attribute("data-attempt", str(latest))
    expect(rows).to_have_count(latest + 1, timeout=20_000)
    expect(view).to_have_attribute("data-attempt", str(latest + 1))


def test_resend_on_a_delivery_page_goes_to_the_new_deliverys_page(server, page):
    name = _subscription(server)
    original = _send(server, name, event="Resent Event")
    page.goto(f"{server.url}/deliveries/{original}/")
    expect(page.locator("#attempt-view")).to_contain_text("HTTP 200")
    # The page does not link to itself.
    expect(page.locator("#delivery-detail [data-open-page]").first).to_be_hidden()

    page.click("#resend")
    expect(page).not_to_have_url(re.compile(rf"/deliveries/{original}/$"))
    expect(page).to_have_url(re.compile(r"/deliveries/\d+/$"))
    deduplicated = int(re.search(r"/deliveries/(\d+)/$", page.url).group(1))
    assert deduplicated > original
    expect(page.locator("h1")).to_contain_text(f"#{deduplicated}")
    expect(page.locator(".flash")).to_contain_text(
        f"Resent as #{deduplicated}, and deduplicated"
    )
    expect(page.locator("#delivery-detail .attempt-head")).to_contain_text(
        "deduplicated"
    )

    page.click("#resend-as-new")
    expect(page).not_to_have_url(re.compile(rf"/deliveries/{deduplicated}/$"))
    fresh = int(re.search(r"/deliveries/(\d+)/$", page.url).group(1))
    expect(page.locator("h1")).to_contain_text(f"#{fresh}")
    expect(page.locator(".flash")).to_have_text(
        f"Resent as #{fresh}, a new event (fresh messageId and timestamps)."
    )
    expect(page.locator("#attempt-view")).to_contain_text("HTTP 200")
    page.reload()
    expect(page.locator("h1")).to_contain_text(f"#{fresh}")


def test_resend_in_the_event_testers_pane_shows_the_new_delivery_there(server, page):
    name = _subscription(server)
    errors = _htmx_errors(page)
    _open_tester(page, server)
    original = _send(server, name, event="Resent Here")
    page.click(f"#delivery-row-{original} .row-link")
    _expect_pane_shows(page, original)

    page.click("#delivery-detail #resend-bypassing-dedupe")
    notice = page.locator("#resend-notice")
    expect(notice).to_contain_text("bypassing dedupe")
    resent = int(re.search(r"#(\d+)", notice.text_content()).group(1))
    assert resent > original
    _expect_pane_shows(page, resent)
    expect(page.locator("#delivery-detail")).to_contain_text(
        "processed (200)", timeout=LIVE_TIMEOUT_MS
    )
    row = page.locator(f"#delivery-row-{resent}")
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    assert page.url == server.url + "/"
    # Its row opens it like any other.
    page.click(f"#delivery-row-{original} .row-link")
    _expect_pane_shows(page, original)
    expect(notice).to_have_count(0)
    assert errors == []


def test_a_push_that_lands_while_resend_is_on_its_way_waits_for_it(server, page):
    # The first attempt fails (500); its retry, about 1.4 s later, is pushed to
    # the open pane while the Resend request is held on its way.
    name = _subscription(server, fail_first_n=1, time_scale=20)
    errors = _htmx_errors(page)
    _open_tester(page, server)
    original = _send(server, name, event="Pushed Meanwhile")
    page.click(f"#delivery-row-{original} .row-link")
    _expect_pane_shows(page, original)
    retried = (
        "SELECT count(*) FROM delivery_attempt"
        " WHERE delivery_id = ? AND response_status = 200"
    )

    def hold(route) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not server.query(retried, original)[0][0]:
            time.sleep(0.1)
        time.sleep(0.5)  # the retry's push reaches the page meanwhile
        route.continue_()

    page.route("**/resend/", hold)
    page.click("#delivery-detail #resend-bypassing-dedupe")
    notice = page.locator("#resend-notice")
    expect(notice).to_contain_text("bypassing dedupe", timeout=20_000)
    assert server.query(retried, original)[0][0] == 1
    resent = int(re.search(r"#(\d+)", notice.text_content()).group(1))
    _expect_pane_shows(page, resent)
    # The held push was for the pane the answer replaced: it is not shown.
    assert errors == []
    page.click(f"#delivery-row-{original} .row-link")
    _expect_pane_shows(page, original)
    expect(page.locator("#delivery-detail")).to_contain_text("delivered")


def test_rows_tell_deliveries_apart_and_the_keyboard_moves_the_selection(server, page):
    name = _subscription(server)
    _open_tester(page, server)
    user = _send(server, name, userId="user-4217", messageId="msg-short-1")
    anonymous = _send(
        server,
        name,
        userId=None,
        anonymousId="anon-77",
        messageId="ajs-next-1712345678901-0f6c1e7a-2b44-4c1e-9a55-5d2f9c0de8b1",
    )
    third = _send(server, name, userId="user-3")
    row = page.locator(f"#delivery-row-{user}")
    expect(row).to_be_attached(timeout=LIVE_TIMEOUT_MS)
    expect(row.locator(".ids")).to_contain_text("msg-short-1")
    expect(row.locator(".ids")).to_contain_text("user-4217")
    ids = page.locator(f"#delivery-row-{anonymous} .ids")
    expect(ids).to_contain_text("…2f9c0de8b1")
    expect(ids).to_contain_text("anon-77")
    # The row above is there before the keyboard moves onto it.
    expect(page.locator(f"#delivery-row-{third}")).to_be_attached(
        timeout=LIVE_TIMEOUT_MS
    )

    page.click(f"#delivery-row-{anonymous} .row-link")
    _expect_pane_shows(page, anonymous)
    selected = page.locator("#delivery-feed .delivery-row.selected")
    expect(selected).to_have_count(1)
    expect(selected).to_have_attribute("id", f"delivery-row-{anonymous}")

    page.focus("#delivery-feed")
    page.keyboard.press("ArrowUp")
    expect(selected).to_have_attribute("id", f"delivery-row-{third}")
    # Moving the selection does not open it; Enter does.
    _expect_pane_shows(page, anonymous)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(selected).to_have_attribute("id", f"delivery-row-{user}")
    page.keyboard.press("Enter")
    _expect_pane_shows(page, user)
    expect(selected).to_have_attribute("id", f"delivery-row-{user}")


def test_a_row_updated_live_keeps_the_selection_and_the_focus(server, page):
    name = _subscription(server, fail_first_n=100, time_scale=200)
    _open_tester(page, server)
    pk = _send(server, name, event="Retried")
    row = page.locator(f"#delivery-row-{pk}")
    expect(row).to_have_attribute("data-state", "retrying", timeout=LIVE_TIMEOUT_MS)
    page.focus(f"#delivery-row-{pk} .row-link")
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    attempts = row.get_attribute("data-attempts")
    # The push replaces the row element.
    expect(row).not_to_have_attribute("data-attempts", attempts, timeout=20_000)
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    assert page.evaluate(
        f"document.activeElement.closest('#delivery-row-{pk}') !== null"
    )
    page.keyboard.press("ArrowDown")
    next_row = page.locator(f"#delivery-row-{pk} + .delivery-row")
    expect(next_row).to_have_class(re.compile(r"\bselected\b"))


def test_the_banner_tells_a_dropped_connection_and_the_reconnection(tmp_path, page):
    own = Server(tmp_path)
    own.start()
    try:
        page.goto(own.url + "/")
        expect(page.locator("#live-dot.on")).to_be_attached(timeout=LIVE_TIMEOUT_MS)
        banner = page.locator("#connection-banner")
        expect(banner).to_be_hidden()

        own.stop()
        expect(banner).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        expect(banner).to_contain_text("the connection to the sandbox was lost")
        expect(banner).to_contain_text(re.compile(r"Reconnecting( in \d+ s)?…"))

        own.start()
        expect(banner).to_contain_text("Reconnected", timeout=40_000)
        expect(banner).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
        expect(page.locator("#live-dot.on")).to_be_attached()
    finally:
        own.stop()
