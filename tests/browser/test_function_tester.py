"""A function subscription in a real browser against a real server: edit its code
and save it, send a track event from the composer, and watch the pane show the
run (Log Output, the fetch it made, Callback Return) as it happens."""

import json
import re
import urllib.parse
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE_TIMEOUT_MS = 20_000
CODE_EDITOR = "#code-form .cm-content"
# Long enough that the pane is loaded before the run ends: what follows is live.
DELAY_MS = 1500


def _function_subscription(server) -> tuple[int, str]:
    """A function subscription (with Segment's boilerplate as v1) and a mock
    endpoint of the server for it to fetch; (subscription id, name)."""
    name = f"fn-{uuid.uuid4().hex[:8]}"
    code = f"""
from sandbox.mock.services import mock_endpoint_create
from sandbox.subscriptions.services import subscription_create_with_code
mock_endpoint_create(slug={name!r}, name={name!r}, api_key="k-{name}")
subscription = subscription_create_with_code(
    name={name!r}, kind="function", endpoint_url="", api_key="k-{name}")
print(subscription.pk)
"""
    return int(server.shell(code).split()[-1]), name


def _source(endpoint: str) -> str:
    return (
        "async function onTrack(event, settings) {\n"
        '  console.log("hello from the function", event.event)\n'
        f"  await new Promise((resolve) => setTimeout(resolve, {DELAY_MS}))\n"
        f"  const res = await fetch({json.dumps(endpoint)}, {{\n"
        '    method: "POST",\n'
        "    headers: {\n"
        '      Authorization: "Basic " + btoa(settings.apiKey + ":"),\n'
        '      "Content-Type": "application/json",\n'
        "    },\n"
        "    body: JSON.stringify(event),\n"
        "  })\n"
        '  if (!res.ok) console.warn("the endpoint said", res.status)\n'
        "  return await res.json()\n"
        "}\n"
    )


def _record_gets(page) -> list[str]:
    gets: list[str] = []

    def record(request):
        if request.method == "GET" and request.resource_type in {"xhr", "fetch"}:
            gets.append(urllib.parse.urlsplit(request.url).path)

    page.on("request", record)
    return gets


def test_edit_save_send_and_watch_the_function_run_live(server, page):
    pk, name = _function_subscription(server)
    endpoint = f"{server.url}/mock/{name}/"

    # The code page: replace the boilerplate and save it as v2.
    page.goto(f"{server.url}/subscriptions/{pk}/code/")
    page.click(CODE_EDITOR)
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(_source(endpoint))
    page.click("#save-code")
    expect(page.locator("#current-version")).to_have_text("v2")

    # The Event Tester: a track event to the function, sent with the page's button.
    page.goto(server.url + "/")
    expect(page.locator("#live-dot.on")).to_be_attached(timeout=10_000)
    gets = _record_gets(page)
    page.select_option("#id_subscription", label=name)
    event = {"type": "track", "event": "Function Test", "userId": "fn-user"}
    page.fill("#id_payload", json.dumps(event))
    page.click("#send-button")
    link = page.locator("#composer-result a").first
    expect(link).to_have_attribute("href", re.compile(r"/deliveries/\d+/"))
    delivery = int(re.search(r"\d+", link.get_attribute("href")).group())

    pane = page.locator("#delivery-detail-pane > #delivery-detail")
    expect(pane).to_have_attribute("data-delivery", str(delivery))
    run = pane.locator("#invocation")
    # First the attempt in flight (the function waits before it fetches), then
    # its end, pushed over the pane's socket.
    expect(run.locator(".invocation-call")).to_contain_text("running…")
    expect(run.locator("#fetches-none")).to_have_text("None yet.")
    expect(run).to_have_attribute("data-status", "returned", timeout=LIVE_TIMEOUT_MS)
    expect(run.locator(".invocation-call")).to_contain_text("ƒ onTrack · v2")
    log = run.locator("#log-output .log-line")
    expect(log).to_have_count(1)
    expect(log.first).to_have_attribute("data-level", "log")
    expect(log.first).to_contain_text("hello from the function Function Test")
    fetch = run.locator("#fetch-1")
    expect(fetch.locator(".fetch-request")).to_have_text(f"POST {endpoint}")
    expect(fetch.locator(".fetch-status")).to_have_text("200")
    expect(run.locator("#callback-return")).to_contain_text('"success": true')
    expect(run.locator("#invocation-event")).to_contain_text('"Function Test"')

    # The request and the answer open on demand; the key is masked.
    fetch.locator("summary").click()
    detail = fetch.locator(".fetch-detail")
    expect(detail).to_contain_text("Authorization")
    expect(detail).to_contain_text("Basic ••••••••")
    expect(detail).not_to_contain_text(f"k-{name}")
    expect(detail).to_contain_text('"success": true')
    save_screenshot(page, "function-tester.png")

    # The feed's row names the run instead of an HTTP status.
    row = page.locator(f"#delivery-row-{delivery}")
    expect(row).to_have_attribute("data-state", "delivered")
    expect(row.locator(".badge-function")).to_have_text("ƒ onTrack · v2")

    # The pane loaded once; everything after came over its socket.
    assert gets.count(f"/deliveries/{delivery}/") == 1
    assert set(gets) <= {f"/deliveries/{delivery}/", "/deliveries/feed/"}

    # Copy as cURL for the fetch: the command, real key included, fetched on demand.
    curl = page.evaluate(
        "(url) => fetch(url).then((response) => response.text())",
        fetch.locator("[data-copy-url]").get_attribute("data-copy-url"),
    )
    assert curl.startswith(f"curl -X POST {endpoint}")
    assert "Authorization: Basic " in curl


def test_a_failing_fetch_shows_its_error_and_the_thrown_error(server, page):
    pk, name = _function_subscription(server)
    source = (
        "async function onTrack(event) {\n"
        '  console.error("about to fail")\n'
        '  await fetch("http://127.0.0.1:9/nowhere")\n'
        "}\n"
    )
    server.shell(
        "from sandbox.functions.services import function_version_save\n"
        "from sandbox.subscriptions.models import Subscription\n"
        f"function_version_save(subscription=Subscription.objects.get(pk={pk}),"
        f" source={source!r})\n"
    )
    page.goto(server.url + "/")
    expect(page.locator("#live-dot.on")).to_be_attached(timeout=10_000)
    page.select_option("#id_subscription", label=name)
    page.fill(
        "#id_payload", json.dumps({"type": "track", "event": "Fails", "userId": "u"})
    )
    page.click("#send-button")
    run = page.locator("#delivery-detail-pane #invocation")
    expect(run).to_have_attribute("data-status", "threw", timeout=LIVE_TIMEOUT_MS)
    expect(run.locator("#function-error")).to_contain_text("FetchError")
    expect(run.locator("#function-error")).to_contain_text("ECONNREFUSED")
    line = run.locator("#log-output .log-line")
    expect(line).to_have_attribute("data-level", "error")
    expect(line).to_have_class(re.compile(r"\blog-error\b"))
    fetch = run.locator("#fetch-1")
    expect(fetch.locator(".fetch-status")).to_have_text("no answer")
    expect(fetch.locator(".fetch-error")).to_contain_text(
        "request to http://127.0.0.1:9/nowhere failed, reason: connect ECONNREFUSED"
    )
    # A FetchError is Segment's Bad Request: not retried.
    head = page.locator("#delivery-detail-pane .attempt-head")
    expect(head.locator(".state")).to_have_text("discarded")
    expect(head.locator(".badge-function")).to_have_text("ƒ onTrack · v2")
