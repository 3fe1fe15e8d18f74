"""A function attempt in the delivery pane, the feed and history, as the server
renders them: Callback Return, Log Output, the error, the event and each recorded
fetch (copyable as cURL), everything the function or an endpoint said escaped."""

import html as html_module
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from sandbox.delivery import panes, selectors
from sandbox.delivery.models import Attempt, Delivery, Outcome, State
from sandbox.functions.services import function_version_save
from sandbox.subscriptions.services import subscription_create
from tests.factories import make_delivery

pytestmark = pytest.mark.django_db

SOURCE = "async function onTrack(event, settings) {\n  return event.event\n}\n"
HOSTILE = "<script>alert('x')</script>"
RETURNED = {
    "handler": "onTrack",
    "version": 1,
    "status": "returned",
    "return": '{"ok":true,"id":42}',
    "logs": [
        {"level": "log", "message": "first line"},
        {"level": "warn", "message": "second line"},
        {"level": "error", "message": "third line"},
        {"level": "info", "message": "fourth line"},
    ],
    "logs_cut": False,
    "error": None,
    "duration_ms": 12.3,
}
POSTED = {
    "request": {
        "method": "POST",
        "url": "https://api.partner.test/v1/events",
        "headers": [
            ["Content-Type", "application/json"],
            ["Authorization", "Bearer sk_fn_secret_1234"],
            ["Accept", "*/*"],
        ],
        "body": '{"name":"Order Completed"}',
    },
    "latency_ms": 17,
    "response": {
        "status": 201,
        "headers": [["Content-Type", "application/json"]],
        "body": '{"id":42}',
        "truncated": False,
    },
}
REFUSED = {
    "request": {
        "method": "GET",
        "url": "http://127.0.0.1:9/lookup",
        "headers": [["Accept", "*/*"]],
        "body": "",
    },
    "latency_ms": 2,
    "error": "request to http://127.0.0.1:9/lookup failed, reason: "
    "connect ECONNREFUSED 127.0.0.1:9",
}


def _text(markup: str) -> str:
    """What a person reads: tags dropped, entities decoded, spaces collapsed."""
    text = html_module.unescape(re.sub(r"<[^>]+>", " ", markup))
    return re.sub(r"\s+", " ", text).strip()


def _function(name: str = "Enricher"):
    subscription = subscription_create(
        name=name, endpoint_url="", api_key="sk_fn_secret_1234", kind="function"
    )
    function_version_save(subscription=subscription, source=SOURCE)
    return subscription


def _ran(
    delivery: Delivery,
    *,
    number: int = 1,
    invocation: dict | None = None,
    exchanges: list | None = None,
    outcome: str = Outcome.GREEN,
    reason: str = "Returned",
    state: str = State.DELIVERED,
    version: int = 1,
) -> Attempt:
    """An attempt of the function as the engine records it; its delivery moved on."""
    invocation = RETURNED if invocation is None else invocation
    attempt = Attempt.objects.create(
        delivery=delivery,
        number=number,
        target=delivery.target,
        started_at=timezone.now() + timedelta(milliseconds=number),
        request_method="INVOKE",
        request_url=f"function:{delivery.target.name}@v{version}#onTrack",
        request_headers=[],
        response_body=invocation.get("return") or "",
        latency_ms=round(invocation.get("duration_ms") or 0),
        outcome=outcome,
        reason=reason,
        invocation=invocation,
        exchanges=exchanges if exchanges is not None else [],
    )
    Delivery.objects.filter(pk=delivery.pk).update(
        state=state,
        outcome=outcome,
        reason=reason,
        attempt_count=number,
        latency_ms=attempt.latency_ms,
    )
    return attempt


def _pane(client, delivery: Delivery, **params) -> str:
    url = reverse("delivery:detail", args=[delivery.pk])
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def _section(page: str, element_id: str) -> str:
    """The markup of the element with this id, up to its closing tag."""
    start = page.index(f'id="{element_id}"')
    tag = page.rfind("<", 0, start)
    name = re.match(r"<(\w+)", page[tag:]).group(1)
    return page[tag : page.index(f"</{name}>", start)]


def test_the_pane_shows_the_run_instead_of_an_http_exchange(client):
    delivery = make_delivery(subscription=_function())
    _ran(delivery, exchanges=[POSTED])
    page = _pane(client, delivery)

    assert "ƒ onTrack · v1" in _text(_section(page, "invocation"))
    assert "returned" in _text(page)
    assert "ran 12.3 ms" in _text(page)
    assert "Callback Return" in page
    returned = html_module.unescape(_section(page, "callback-return"))
    assert returned.endswith('>{\n  "ok": true,\n  "id": 42\n}')
    assert "Log Output" in page
    # Nothing of a webhook's request: no headers of Segment's, no Basic auth.
    assert "Authorization, decoded" not in page
    assert "X-Segment-Settings" not in page
    assert f'{reverse("delivery:curl", args=[delivery.pk, 1])}"' not in page
    # The event the function was called with.
    event = _text(_section(page, "invocation-event"))
    assert delivery.message_id in event
    assert '"type": "track"' in event


def test_log_output_keeps_each_line_in_order_with_its_level(client):
    delivery = make_delivery(subscription=_function())
    _ran(delivery)
    log = _section(_pane(client, delivery), "log-output")
    lines = re.findall(r'data-level="(\w+)".*?class="log-message">([^<]*)<', log)
    assert lines == [
        ("log", "first line"),
        ("warn", "second line"),
        ("error", "third line"),
        ("info", "fourth line"),
    ]
    assert 'class="log-line log-warn"' in log
    assert 'class="badge badge-yellow">warn<' in log
    assert 'class="log-line log-error"' in log
    assert 'class="badge badge-red">error<' in log
    assert "log-output-cut" not in log


def test_a_cut_log_says_so(client):
    delivery = make_delivery(subscription=_function())
    _ran(delivery, invocation={**RETURNED, "logs_cut": True})
    assert "keeps its first 64 KB" in _text(_pane(client, delivery))


def test_a_thrown_error_is_the_callback_return_with_its_stack(client):
    delivery = make_delivery(subscription=_function())
    stack = (
        "RetryError: Failed with 500\n"
        "    at onTrack (function.js:4:11)\n"
        "    at async run (worker.js:80:5)"
    )
    threw = {
        **RETURNED,
        "status": "threw",
        "return": None,
        "logs": [],
        "error": {
            "name": "RetryError",
            "message": "Failed with 500",
            "stack": stack,
            "kind": "RetryError",
        },
    }
    _ran(
        delivery,
        invocation=threw,
        outcome=Outcome.RED,
        reason="Retry: RetryError: Failed with 500",
        state=State.FAILED,
    )
    page = _pane(client, delivery)
    assert "RetryError: Failed with 500" in _text(_section(page, "function-error"))
    shown = html_module.unescape(_section(page, "function-error-stack"))
    assert shown.endswith(f">{stack}")
    assert "callback-return" not in page
    assert "threw" in _text(_section(page, "invocation"))
    assert "(no output)" in _text(_section(page, "log-output"))


def test_nothing_returned_reads_undefined_and_no_fetch(client):
    delivery = make_delivery(subscription=_function())
    _ran(delivery, invocation={**RETURNED, "return": None, "logs": []})
    page = _pane(client, delivery)
    assert _text(_section(page, "callback-return")) == "undefined"
    assert "(no output)" in _text(_section(page, "log-output"))
    assert "The function made no fetch calls." in _text(page)


def test_text_that_is_not_json_is_returned_as_it_came(client):
    delivery = make_delivery(subscription=_function())
    _ran(delivery, invocation={**RETURNED, "return": '"plain text back"'})
    assert _text(_section(_pane(client, delivery), "callback-return")) == (
        '"plain text back"'
    )
    other = make_delivery(subscription=_function("Other"))
    _ran(other, invocation={**RETURNED, "return": "not json {"})
    callback = _section(_pane(client, other), "callback-return")
    assert _text(callback) == "not json {"
    assert "data-json" not in callback


def test_a_missing_handler_says_the_event_is_unsupported(client):
    delivery = make_delivery(subscription=_function())
    missing = {**RETURNED, "status": "missing_handler", "return": None, "logs": []}
    _ran(
        delivery,
        invocation=missing,
        outcome=Outcome.YELLOW,
        reason="Unsupported Event Type: no onTrack is defined",
        state=State.UNSUPPORTED,
    )
    page = _pane(client, delivery)
    assert "implicit EventNotSupported" in _text(_section(page, "function-error"))
    assert "no handler" in _text(_section(page, "invocation"))


def test_each_fetch_shows_its_request_and_answer(client):
    delivery = make_delivery(subscription=_function())
    _ran(delivery, exchanges=[POSTED, REFUSED])
    page = _pane(client, delivery)
    assert "Fetch calls (2)" in _text(page)

    posted = _section(page, "fetch-1")
    assert "POST https://api.partner.test/v1/events" in _text(posted)
    assert 'class="badge badge-green fetch-status">201<' in posted
    assert "17 ms" in _text(posted)
    assert "&quot;name&quot;: &quot;Order Completed&quot;" in posted
    assert "&quot;id&quot;: 42" in posted
    assert "<td>Content-Type</td><td>application/json</td>" in posted
    # Masked as a webhook's Authorization is; Copy as cURL has it whole.
    assert "sk_fn_secret_1234" not in page
    assert "<td>Authorization</td><td>Bearer ••••••••</td>" in posted

    refused = _section(page, "fetch-2")
    assert "GET http://127.0.0.1:9/lookup" in _text(refused)
    assert "no answer" in _text(refused)
    assert (
        "FetchError: request to http://127.0.0.1:9/lookup failed, reason: "
        "connect ECONNREFUSED 127.0.0.1:9"
    ) in _text(refused)
    assert "2 ms" in _text(refused)


def test_each_fetch_copies_as_curl_with_its_real_headers(client):
    delivery = make_delivery(subscription=_function())
    _ran(delivery, exchanges=[POSTED, REFUSED])
    curl = reverse("delivery:curl", args=[delivery.pk, 1])
    page = _pane(client, delivery)
    assert f'data-copy-url="{curl}?fetch=1"' in page
    assert f'data-copy-url="{curl}?fetch=2"' in page

    response = client.get(curl, {"fetch": "1"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response.content.decode() == (
        "curl -X POST https://api.partner.test/v1/events \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        "  -H 'Authorization: Bearer sk_fn_secret_1234' \\\n"
        "  -H 'Accept: */*' \\\n"
        '  --data-raw \'{"name":"Order Completed"}\''
    )
    # A GET goes without a body.
    assert client.get(curl, {"fetch": "2"}).content.decode() == (
        "curl -X GET http://127.0.0.1:9/lookup \\\n  -H 'Accept: */*'"
    )
    for nonsense in ("0", "3", "-1", "x", "9" * 40):
        assert client.get(curl, {"fetch": nonsense}).status_code == 404, nonsense
    # The run itself is no HTTP request to copy.
    assert client.get(curl).status_code == 404


def test_what_the_function_or_an_endpoint_said_is_escaped(client):
    delivery = make_delivery(subscription=_function())
    hostile_fetch = {
        "request": {
            "method": "POST",
            "url": f"https://partner.test/?q={HOSTILE}",
            "headers": [[HOSTILE, HOSTILE]],
            "body": HOSTILE,
        },
        "latency_ms": 3,
        "response": {
            "status": 500,
            "headers": [["X-Said", HOSTILE]],
            "body": HOSTILE,
            "truncated": True,
        },
    }
    invocation = {
        **RETURNED,
        "status": "threw",
        "return": None,
        "logs": [{"level": "log", "message": HOSTILE}],
        "error": {
            "name": HOSTILE,
            "message": HOSTILE,
            "stack": HOSTILE,
            "kind": "Error",
        },
    }
    _ran(
        delivery,
        invocation=invocation,
        exchanges=[hostile_fetch, {**REFUSED, "error": HOSTILE}],
        outcome=Outcome.RED,
        reason=f"Bad Request: {HOSTILE}",
        state=State.FAILED,
    )
    page = _pane(client, delivery)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    # The function's return, when it is the hostile text.
    other = make_delivery(subscription=_function("Returner"))
    _ran(other, invocation={**RETURNED, "return": f'"{HOSTILE}"'})
    page = _pane(client, other)
    assert HOSTILE not in page
    assert "&lt;script&gt;" in _section(page, "callback-return")


def test_an_attempt_still_running_says_so(client):
    delivery = make_delivery(subscription=_function())
    _ran(delivery, invocation={}, outcome="", reason="", state=State.PENDING)
    page = _pane(client, delivery)
    assert "ƒ onTrack · v1 · running…" in _text(_section(page, "invocation"))
    assert "The function is running…" in _text(page)
    assert "(nothing yet)" in _text(page)


def test_an_earlier_attempt_opens_with_its_own_run(client):
    delivery = make_delivery(subscription=_function())
    failed = {
        **RETURNED,
        "status": "threw",
        "return": None,
        "logs": [{"level": "error", "message": "attempt one"}],
        "error": {"name": "RetryError", "message": "busy", "stack": "", "kind": ""},
    }
    _ran(
        delivery,
        invocation=failed,
        outcome=Outcome.RED,
        reason="Retry: RetryError: busy",
        state=State.RETRYING,
    )
    _ran(delivery, number=2, version=2, invocation={**RETURNED, "version": 2})
    latest = _pane(client, delivery)
    assert "ƒ onTrack · v2" in _text(_section(latest, "invocation"))
    assert "attempt one" not in latest
    first = _pane(client, delivery, attempt="1")
    assert "ƒ onTrack · v1" in _text(_section(first, "invocation"))
    assert "attempt one" in _text(_section(first, "log-output"))
    # The timeline names each attempt's category.
    timeline = _section(latest, "attempt-timeline")
    assert 'class="badge badge-red">retry<' in timeline
    assert 'class="badge badge-green">returned<' in timeline


def test_the_feed_row_says_it_ran_a_function(client):
    delivery = make_delivery(subscription=_function())
    _ran(delivery, exchanges=[POSTED])
    feed = client.get(reverse("delivery:feed")).content.decode()
    row = _section(feed, f"delivery-row-{delivery.pk}")
    assert "ƒ onTrack · v1" in _text(row)
    assert 'class="badge badge-green badge-function"' in row
    assert "delivered ·" in _text(row)
    assert ">error<" not in row
    history = client.get(reverse("delivery:history")).content.decode()
    assert "ƒ onTrack · v1" in _text(_section(history, f"history-row-{delivery.pk}"))


def test_a_retrying_function_row_names_its_state_and_each_attempt(client):
    delivery = make_delivery(subscription=_function())
    threw = {**RETURNED, "status": "threw", "return": None}
    for number in (1, 2):
        _ran(
            delivery,
            number=number,
            invocation=threw,
            outcome=Outcome.RED,
            reason="Retry: RetryError: Failed with 500",
            state=State.RETRYING,
        )
    Delivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=1)
    )
    feed = client.get(reverse("delivery:feed")).content.decode()
    row = _section(feed, f"delivery-row-{delivery.pk}")
    assert 'class="badge badge-red badge-function"' in row
    assert "retrying ·" in _text(row)
    assert row.count(">retry</li>") == 2


def test_function_rows_cost_no_more_queries_than_webhook_rows():
    for name in ("One", "Two", "Three"):
        _ran(make_delivery(subscription=_function(name)), exchanges=[POSTED])
    with CaptureQueriesContext(connection) as queries:
        html = render_to_string(
            "delivery/delivery_feed.html#delivery-feed",
            {"deliveries": selectors.delivery_feed(), "feed_window": 30},
        )
    assert html.count("ƒ onTrack · v1") == 3
    assert len(queries) == 2
    assert not any('"invocation"' in q["sql"] for q in queries.captured_queries)


def test_the_call_links_to_the_code_of_the_version_that_ran(client):
    subscription = _function()
    delivery = make_delivery(subscription=subscription)
    _ran(delivery)
    link = _section(_pane(client, delivery), "invocation-code-link")
    code = reverse("subscriptions:code-version", args=[subscription.pk, 1])
    assert f'href="{code}"' in link
    assert client.get(code).status_code == 200


def test_a_function_target_without_a_subscription_has_no_code_link():
    delivery = make_delivery(subscription=_function())
    attempt = _ran(delivery)
    delivery.refresh_from_db()
    pane = panes.invocation_pane(attempt, subscription_id=None)
    assert pane.code_url == ""
    assert pane.call == "onTrack · v1"


@pytest.mark.django_db(transaction=True)
def test_a_real_run_of_the_engine_shows_in_the_pane(client, receiver, deliver_due):
    """The sender's record, as the engine stores it, reads as the pane expects."""
    subscription = subscription_create(
        name="Live", endpoint_url="", api_key="k-live", kind="function"
    )
    function_version_save(
        subscription=subscription,
        source=(
            "async function onTrack(event, settings) {\n"
            '  console.log("hello from the function", event.event)\n'
            '  console.warn("<b>careful</b>")\n'
            f"  const res = await fetch({receiver.url('/ok')!r}, {{\n"
            '    method: "POST",\n'
            '    headers: {"Content-Type": "application/json"},\n'
            "    body: JSON.stringify({name: event.event}),\n"
            "  })\n"
            f"  await fetch({receiver.url('/status/503')!r})\n"
            "  return {status: res.status, body: await res.json()}\n"
            "}\n"
        ),
    )
    event = {"type": "track", "event": "Order Completed", "userId": "user-1"}
    delivery = make_delivery(subscription=subscription, event=event)
    assert deliver_due() == 1
    page = _pane(client, delivery)

    assert "ƒ onTrack · v1" in _text(_section(page, "invocation"))
    lines = re.findall(
        r'data-level="(\w+)".*?class="log-message">([^<]*)<',
        _section(page, "log-output"),
    )
    assert lines == [
        ("log", "hello from the function Order Completed"),
        ("warn", "&lt;b&gt;careful&lt;/b&gt;"),
    ]
    returned = html_module.unescape(_section(page, "callback-return"))
    assert '"status": 200' in returned
    assert '"success": true' in returned
    posted = _text(_section(page, "fetch-1"))
    assert f"POST {receiver.url('/ok')}" in posted
    assert "200" in posted
    unavailable = _section(page, "fetch-2")
    assert f"GET {receiver.url('/status/503')}" in _text(unavailable)
    assert 'class="badge badge-red fetch-status">503<' in unavailable
    # The feed row names the run.
    feed = client.get(reverse("delivery:feed")).content.decode()
    row = _section(feed, f"delivery-row-{delivery.pk}")
    assert "ƒ onTrack · v1" in _text(row)
    assert "delivered" in _text(row)
    curl = reverse("delivery:curl", args=[delivery.pk, 1])
    command = client.get(curl, {"fetch": "1"}).content.decode()
    assert command.startswith(f"curl -X POST {receiver.url('/ok')}")
    assert '--data-raw \'{"name":"Order Completed"}\'' in command
