"""A subscription's page in a real browser against a real server: its settings
with the key masked, its latency, its deliveries arriving live, and disabling,
enabling and deleting it behind a confirmation; and its form's field widths."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.server import composer_send

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE_TIMEOUT_MS = 10_000
API_KEY = "sub-page-secret-9876"
ROWS = "#history-rows .history-row"


def _subscription(server) -> tuple[int, str]:
    """A subscription to a mock endpoint of the server: its id and name."""
    name = f"page-{uuid.uuid4().hex[:8]}"
    output = server.shell(
        "from sandbox.mock.services import mock_endpoint_create\n"
        "from sandbox.subscriptions.services import subscription_create\n"
        f"mock_endpoint_create(slug={name!r}, name={name!r}, api_key={API_KEY!r})\n"
        f"made = subscription_create(name={name!r}, endpoint_url="
        f"{server.url + '/mock/' + name + '/'!r}, api_key={API_KEY!r},"
        " retry_policy='none', time_scale=240, dedupe_window_hours=0.5)\n"
        "print(made.pk)\n"
    )
    return int(output.split()[-1]), name


def _send(server, pk: int) -> int:
    event = {"type": "track", "event": "Subscription Page", "userId": "page-user"}
    _, html = composer_send(server.url, pk, event)
    return int(re.search(r'id="delivery-row-(\d+)"', html).group(1))


def _settled(server, delivery: int) -> bool:
    [(state,)] = server.query(
        "SELECT state FROM delivery_delivery WHERE id = ?", delivery
    )
    return state not in ("pending", "retrying")


def _enabled(server, pk: int) -> list[tuple]:
    return server.query(
        "SELECT enabled FROM subscriptions_subscription WHERE id = ?", pk
    )


def test_a_subscriptions_page_shows_it_and_its_deliveries_live(server, page):
    pk, name = _subscription(server)
    first = _send(server, pk)
    for _ in range(100):
        if _settled(server, first):
            break
        page.wait_for_timeout(100)

    page.goto(server.url + "/subscriptions/")
    page.get_by_role("link", name=name, exact=True).click()
    expect(page).to_have_url(f"{server.url}/subscriptions/{pk}/")
    expect(page.locator("h1")).to_contain_text(name)
    settings = page.locator("#subscription-settings")
    expect(settings).to_contain_text(f"/mock/{name}/")
    expect(settings).to_contain_text("••••••••9876")
    expect(settings).to_contain_text("None (one attempt)")
    expect(settings).to_contain_text("240\N{MULTIPLICATION SIGN}")
    expect(settings).to_contain_text("30 min")
    assert API_KEY not in page.content()
    latency = page.locator("#subscription-latency")
    expect(latency).to_contain_text(re.compile(r"p50 \d+ ms"))
    expect(latency).to_contain_text(re.compile(r"p95 \d+ ms"))
    expect(latency).to_contain_text("Over 1 attempt for its last 1 delivery")

    rows = page.locator(ROWS)
    expect(rows).to_have_count(1)
    page.wait_for_selector("#live-dot.on", state="attached", timeout=LIVE_TIMEOUT_MS)
    second = _send(server, pk)
    expect(rows).to_have_count(2, timeout=LIVE_TIMEOUT_MS)
    expect(rows.first).to_have_id(f"history-row-{second}")
    expect(rows.nth(1)).to_have_id(f"history-row-{first}")
    expect(rows.first).to_contain_text("delivered", timeout=LIVE_TIMEOUT_MS)

    # Revealing the key is a choice.
    page.get_by_role("link", name=f"Reveal the API key of {name}").click()
    expect(settings).to_contain_text(API_KEY)


def test_a_subscription_is_disabled_enabled_and_deleted_after_confirming(server, page):
    pk, name = _subscription(server)
    page.goto(server.url + f"/subscriptions/{pk}/")
    heading = page.locator("h1")
    expect(heading).to_contain_text("Enabled")

    dialogs: list[str] = []

    def answer(accept: bool):
        def handle(dialog):
            dialogs.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        page.once("dialog", handle)

    answer(False)
    page.get_by_role("button", name="Disable").click()
    page.wait_for_timeout(300)
    assert dialogs[-1].startswith(f"Disable subscription “{name}”?")
    expect(heading).to_contain_text("Enabled")
    assert _enabled(server, pk) == [(1,)]

    answer(True)
    page.get_by_role("button", name="Disable").click()
    expect(heading).to_contain_text("Disabled")
    expect(page.locator(".flash")).to_contain_text(f"Disabled subscription “{name}”")
    assert _enabled(server, pk) == [(0,)]

    page.get_by_role("button", name="Enable").click()
    expect(heading).to_contain_text("Enabled")
    assert _enabled(server, pk) == [(1,)]

    answer(False)
    page.get_by_role("button", name="Delete").click()
    page.wait_for_timeout(300)
    assert dialogs[-1] == (
        f"Delete subscription “{name}”? Its delivery history is kept."
    )
    expect(page).to_have_url(f"{server.url}/subscriptions/{pk}/")

    answer(True)
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{server.url}/subscriptions/")
    expect(page.locator(".flash")).to_contain_text(f"Deleted subscription “{name}”")
    expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    assert _enabled(server, pk) == []


def test_the_subscription_form_sizes_each_field_to_what_it_holds(server, page):
    pk, _ = _subscription(server)
    page.goto(server.url + f"/subscriptions/{pk}/edit/")

    def width(selector: str) -> float:
        return page.locator(selector).bounding_box()["width"]

    url = width("#id_endpoint_url")
    for number in ("#id_timeout_seconds", "#id_time_scale", "#id_dedupe_window_hours"):
        assert width(number) < 200, number
    assert width("#id_name") < url
    assert width("#id_api_key") < url
    # The key's Show button sits right beside its field.
    key = page.locator("#id_api_key").bounding_box()
    show = page.get_by_role("button", name="Show").bounding_box()
    assert 0 <= show["x"] - (key["x"] + key["width"]) < 20
    assert width("#id_retry_policy") < url
    assert page.locator("#id_api_key").get_attribute("value") is None
