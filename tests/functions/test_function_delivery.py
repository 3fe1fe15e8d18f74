"""Function subscriptions through the real pipeline: the engine runs the partner's
JavaScript in the Node pool, its fetches reach a real local endpoint, and each
outcome follows Segment's functions runtime (segment-reference.md 7.3 and 9)."""

import asyncio
import base64
import json

import pytest
from aiohttp import web

from sandbox.delivery import services
from sandbox.delivery.engine import Engine
from sandbox.delivery.models import Attempt, Delivery, State
from sandbox.functions.services import function_version_save
from tests.factories import make_delivery, make_subscription
from tests.receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)

POST_TRACK = """
async function onTrack(event, settings) {
  console.log('sending', event.event);
  console.warn('region', settings.region);
  const response = await fetch(settings.url, {
    method: 'POST',
    headers: {
      Authorization: `Basic ${btoa(settings.apiKey + ':')}`,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify(event)
  });
  if (response.status >= 500 || response.status === 429) {
    throw new RetryError(`Failed with ${response.status}`);
  }
  return { status: response.status, body: await response.text() };
}
"""


def _function(source: str, *, name: str = "Partner function", **options):
    subscription = make_subscription(
        name=name, kind="function", endpoint_url="", **options
    )
    version, _ = function_version_save(subscription=subscription, source=source)
    return subscription, version


def _send(subscription, event=None):
    return make_delivery(subscription=subscription, event=event)


def _attempts(delivery):
    return list(Attempt.objects.filter(delivery=delivery).order_by("number"))


def test_a_track_event_runs_on_track_and_its_fetch_is_recorded(receiver, deliver_due):
    subscription, version = _function(
        POST_TRACK,
        api_key="secret-key",
        custom_settings={"url": receiver.url("/ok"), "region": "eu"},
    )
    delivery = _send(subscription)
    deliver_due([delivery.pk])
    delivery.refresh_from_db()
    assert delivery.state == State.DELIVERED, delivery.reason
    assert delivery.outcome == "green"
    [attempt] = _attempts(delivery)
    assert attempt.request_method == "INVOKE"
    assert attempt.target.function_version == version
    run = attempt.invocation
    assert run["handler"] == "onTrack"
    assert run["version"] == 1
    assert run["status"] == "returned"
    assert json.loads(run["return"])["status"] == 200
    assert [(line["level"], line["message"]) for line in run["logs"]] == [
        ("log", f"sending {delivery.payload['event']}"),
        ("warn", "region eu"),
    ]
    # The endpoint saw what the function sent, through the engine's client.
    [received] = receiver.received
    assert received.header("Authorization") == "Basic " + base64.b64encode(
        b"secret-key:"
    ).decode("ascii")
    assert received.json["messageId"] == delivery.message_id
    [fetch] = attempt.exchanges
    assert fetch["request"]["method"] == "POST"
    assert fetch["request"]["url"] == receiver.url("/ok")
    assert fetch["response"]["status"] == 200


@pytest.mark.parametrize(
    ("body", "outcome", "state", "reason_start"),
    [
        ("return 'ok';", "green", State.DELIVERED, "Returned"),
        (
            "throw new EventNotSupported('track is not supported');",
            "yellow",
            State.UNSUPPORTED,
            "Unsupported Event Type: EventNotSupported: track is not supported",
        ),
        (
            "throw new InvalidEventPayload('email is required');",
            "red",
            State.DISCARDED,
            "Message Rejected: InvalidEventPayload: email is required",
        ),
        (
            "throw new ValidationError('bad');",
            "red",
            State.DISCARDED,
            "Message Rejected: ValidationError: bad",
        ),
        (
            "throw new Error('boom');",
            "red",
            State.DISCARDED,
            "Bad Request: Error: boom",
        ),
    ],
)
def test_each_outcome_as_segment_classes_it(
    body, outcome, state, reason_start, deliver_due
):
    subscription, _ = _function(
        f"async function onTrack(event, settings) {{ {body} }}",
        retry_policy="none",
    )
    delivery = _send(subscription)
    deliver_due([delivery.pk])
    delivery.refresh_from_db()
    [attempt] = _attempts(delivery)
    assert attempt.outcome == outcome
    assert attempt.reason.startswith(reason_start), attempt.reason
    assert delivery.state == state


def test_a_missing_handler_is_an_implicit_event_not_supported(deliver_due):
    subscription, _ = _function("async function onIdentify(event) { return 1 }")
    delivery = _send(subscription)
    deliver_due([delivery.pk])
    delivery.refresh_from_db()
    assert delivery.outcome == "yellow"
    assert "no onTrack is defined" in delivery.reason
    assert delivery.state == State.UNSUPPORTED


def test_retry_error_is_retried_and_the_error_is_kept(deliver_due):
    subscription, _ = _function(
        "async function onTrack() { throw new RetryError('try later') }"
    )
    delivery = _send(subscription)
    deliver_due([delivery.pk])
    delivery.refresh_from_db()
    assert delivery.state == State.RETRYING
    [attempt] = _attempts(delivery)
    assert attempt.outcome == "red"
    assert attempt.reason == "Retry: RetryError: try later"
    error = attempt.invocation["error"]
    assert error["kind"] == "RetryError"
    assert "function.js:1" in error["stack"] or ":1:" in error["stack"]


def test_a_refused_fetch_is_a_fetch_error_in_node_fetch_words(deliver_due):
    subscription, _ = _function(
        "async function onTrack() { await fetch('http://127.0.0.1:9/x'); }",
        retry_policy="none",
    )
    delivery = _send(subscription)
    deliver_due([delivery.pk])
    delivery.refresh_from_db()
    [attempt] = _attempts(delivery)
    assert attempt.outcome == "red"
    assert attempt.reason == (
        "Bad Request: FetchError: request to http://127.0.0.1:9/x failed, "
        "reason: connect ECONNREFUSED 127.0.0.1:9"
    )
    [fetch] = attempt.exchanges
    assert "ECONNREFUSED" in fetch["error"]
    assert delivery.state == State.DISCARDED


def test_a_non_2xx_answer_does_not_throw(receiver, deliver_due):
    subscription, _ = _function(
        "async function onTrack(e, s) {"
        " const r = await fetch(s.url); return r.status }",
        custom_settings={"url": receiver.url("/status/404")},
    )
    delivery = _send(subscription)
    deliver_due([delivery.pk])
    delivery.refresh_from_db()
    assert delivery.outcome == "green"
    assert _attempts(delivery)[0].invocation["return"] == "404"


def test_the_time_limit_ends_an_endless_loop_and_is_retried(deliver_due):
    subscription, _ = _function(
        "async function onTrack() { while (true) {} }", timeout_seconds=0.5
    )
    delivery = _send(subscription)
    deliver_due([delivery.pk])
    delivery.refresh_from_db()
    [attempt] = _attempts(delivery)
    assert attempt.reason == "Timeout: the function ran longer than 0.5 s"
    assert delivery.state == State.RETRYING


def test_a_retry_runs_the_newest_version(deliver_due):
    subscription, first = _function(
        "async function onTrack() { throw new RetryError('v1') }"
    )
    delivery = _send(subscription)
    deliver_due([delivery.pk])
    second, created = function_version_save(
        subscription=subscription, source="async function onTrack() { return 2 }"
    )
    assert created and second.number == 2
    services.delivery_retry_now(delivery=Delivery.objects.get(pk=delivery.pk))
    deliver_due([delivery.pk])
    delivery.refresh_from_db()
    attempts = _attempts(delivery)
    assert [a.invocation["version"] for a in attempts] == [1, 2]
    assert [a.target.function_version for a in attempts] == [first, second]
    assert delivery.state == State.DELIVERED


BATCH = """
async function onBatch(events, settings) {
  console.log('batch of', events.length);
  return events.map(e =>
    e.properties.fail ? { status: 500, errormessage: 'try again' } : { status: 200 });
}
async function onTrack(event) { return 'single' }
"""


def test_on_batch_gets_many_events_and_only_failed_ones_retry():
    subscription, _ = _function(BATCH, batch_size=4, batch_window_seconds=5)
    pks = []
    for index in range(4):
        event = {
            "type": "track",
            "event": "Batched",
            "userId": "u1",
            "messageId": f"batch-{index}",
            "properties": {"fail": index == 2},
        }
        pks.append(_send(subscription, event).pk)

    async def run():
        engine = Engine(concurrency=10)
        try:
            await engine.run_due(only_ids=pks)
        finally:
            await engine.close()

    asyncio.run(run())
    deliveries = {d.pk: d for d in Delivery.objects.filter(pk__in=pks)}
    states = [deliveries[pk].state for pk in pks]
    assert states == [State.DELIVERED, State.DELIVERED, State.RETRYING, State.DELIVERED]
    for pk in pks:
        [attempt] = Attempt.objects.filter(delivery_id=pk)
        assert attempt.invocation["handler"] == "onBatch"
        assert attempt.invocation["batch"]["size"] == 4
        assert attempt.invocation["logs"][0]["message"] == "batch of 4"


def test_a_lone_event_goes_to_its_single_handler(deliver_due):
    subscription, _ = _function(BATCH, batch_size=20, batch_window_seconds=10)
    delivery = _send(subscription)
    deliver_due([delivery.pk])
    delivery.refresh_from_db()
    [attempt] = _attempts(delivery)
    assert attempt.invocation["handler"] == "onTrack"
    assert attempt.invocation["return"] == '"single"'


def test_a_run_that_returns_or_fetches_too_much_is_recorded_in_part(
    receiver, deliver_due
):
    subscription, _ = _function(
        "async function onTrack(e, s) {"
        " for (let i = 0; i < 60; i++) { await fetch(s.url) }"
        " console.log('x'.repeat(70000));"
        " return 'y'.repeat(400000) }",
        custom_settings={"url": receiver.url("/ok")},
    )
    delivery = _send(subscription)
    deliver_due([delivery.pk])
    delivery.refresh_from_db()
    assert delivery.outcome == "green"
    [attempt] = _attempts(delivery)
    # Every fetch went out; the attempt keeps the first fifty.
    assert len(receiver.received) == 60
    assert len(attempt.exchanges) == 50
    assert attempt.invocation["fetches_unrecorded"] == 10
    assert attempt.invocation["return_cut"] is True
    assert len(attempt.invocation["return"]) <= 256 * 1024
    assert attempt.invocation["logs_cut"] is True
    # The line that overflowed keeps its start.
    [line] = attempt.invocation["logs"]
    assert line["message"].startswith("xxx")


class HoppingReceiver(Receiver):
    """The shared receiver, and /hop/<status>/<path>: <status> with a relative
    Location to /<path>."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not request.path.startswith("/hop/"):
            return await super()._handle(request)
        await self._record(request)
        code, _, tail = request.path.removeprefix("/hop/").partition("/")
        return web.Response(status=int(code), headers={"Location": f"/{tail}"})


@pytest.fixture
def hopping_receiver():
    server = HoppingReceiver().start()
    yield server
    server.stop()


def test_a_redirected_fetch_reads_the_final_url_and_records_each_hop(
    hopping_receiver, deliver_due
):
    subscription, _ = _function(
        "async function onTrack(e, s) {"
        " const r = await fetch(s.url);"
        " return { url: r.url, redirected: r.redirected, status: r.status } }",
        custom_settings={"url": hopping_receiver.url("/hop/301/hop/302/ok")},
    )
    delivery = _send(subscription)
    deliver_due([delivery.pk])
    delivery.refresh_from_db()
    assert delivery.outcome == "green", delivery.reason
    [attempt] = _attempts(delivery)
    assert json.loads(attempt.invocation["return"]) == {
        "url": hopping_receiver.url("/ok"),
        "redirected": True,
        "status": 200,
    }
    assert [r.path for r in hopping_receiver.received] == [
        "/hop/301/hop/302/ok",
        "/hop/302/ok",
        "/ok",
    ]
    assert [
        (fetch["request"]["url"], fetch["response"]["status"])
        for fetch in attempt.exchanges
    ] == [
        (hopping_receiver.url("/hop/301/hop/302/ok"), 301),
        (hopping_receiver.url("/hop/302/ok"), 302),
        (hopping_receiver.url("/ok"), 200),
    ]
