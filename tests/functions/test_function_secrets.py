"""A function's API key, given in its settings, is masked wherever the pane
shows what the function logged, returned, sent and got back; and an event of a
type with no handler is unsupported, not a sandbox failure."""

import base64
import json

import pytest
from django.urls import reverse

from sandbox.delivery.models import Delivery, State
from sandbox.functions.services import function_version_save
from tests.factories import make_delivery, make_subscription

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "SECRETKEY-abc123-function"

LEAKY = """
async function onTrack(event, settings) {
  console.log('key', settings.apiKey);
  const response = await fetch(settings.url + '?k=' + settings.apiKey, {
    method: 'POST',
    headers: { 'X-Api-Key': settings.apiKey },
    body: settings.apiKey,
  });
  const answer = await response.text();
  throw new Error('refused ' + settings.apiKey + ' ' + answer.slice(0, 40));
}
"""


def _function(source: str, **options):
    subscription = make_subscription(
        name="Leaky", kind="function", endpoint_url="", api_key=KEY, **options
    )
    function_version_save(subscription=subscription, source=source)
    return subscription


def test_the_key_a_function_was_given_is_masked_in_its_pane(
    receiver, deliver_due, client
):
    subscription = _function(LEAKY, custom_settings={"url": receiver.url("/ok")})
    delivery = make_delivery(subscription=subscription)
    deliver_due([delivery.pk])
    delivery.refresh_from_db()
    # It really did log, send and throw the key.
    attempt = delivery.attempts.get()
    assert KEY in attempt.invocation["logs"][0]["message"]
    assert KEY in attempt.exchanges[0]["request"]["url"]
    assert receiver.received[0].body == KEY.encode()
    page = client.get(reverse("delivery:detail", args=[delivery.pk])).content.decode()
    encoded = base64.b64encode(KEY.encode()).decode()
    for text, where in ((page, "the pane"), (delivery.reason, "the reason")):
        assert KEY not in text, where
        assert encoded not in text, where
        assert KEY[:12] not in text, where
    assert "••••••••" in page


@pytest.mark.parametrize("kind", [None, "bogus", "Track"])
def test_an_event_of_a_type_with_no_handler_is_unsupported(deliver_due, kind):
    subscription = _function("async function onTrack(event) { return 1 }")
    delivery = make_delivery(
        subscription=subscription,
        event={"type": kind, "userId": "u", "event": "E"},
        allow_problems=True,
    )
    deliver_due([delivery.pk])
    delivery = Delivery.objects.get(pk=delivery.pk)
    assert delivery.state == State.UNSUPPORTED, delivery.reason
    assert delivery.outcome == "yellow"
    assert "EventNotSupported" in delivery.reason


OWN_PAGE = """
async function onTrack(event, settings) {
  const tried = [];
  for (const url of settings.urls) {
    try {
      const response = await fetch(url);
      tried.push(response.status);
    } catch (error) {
      tried.push(error.message);
    }
  }
  return tried;
}
"""


def test_a_function_reaches_mock_endpoints_but_not_the_sandboxs_pages(
    live_server, settings, deliver_due
):
    settings.BASE_URL = live_server.url
    port = live_server.url.rsplit(":", 1)[1]
    urls = [
        f"{live_server.url}/subscriptions/1/key/",
        f"http://localhost:{port}/subscriptions/",
        f"{live_server.url}/mock/nothing-here/",
    ]
    subscription = _function(OWN_PAGE, custom_settings={"urls": urls})
    delivery = make_delivery(subscription=subscription)
    deliver_due([delivery.pk])
    attempt = Delivery.objects.get(pk=delivery.pk).attempts.get()
    tried = json.loads(attempt.invocation["return"])
    refused = (
        "failed, reason: the sandbox's own pages are not reachable from a function"
    )
    assert refused in tried[0]
    assert refused in tried[1]
    # A mock endpoint is reached (it answers a GET 405: it takes POST).
    assert tried[2] == 405
    assert [e.get("error", "") for e in attempt.exchanges][:2] == [
        f"request to {urls[0]} failed, reason: the sandbox's own pages are not "
        "reachable from a function (its mock endpoints, /mock/<name>/, are)",
        f"request to {urls[1]} failed, reason: the sandbox's own pages are not "
        "reachable from a function (its mock endpoints, /mock/<name>/, are)",
    ]
