"""A delivery's pane and page, and the feed's rows, as the server renders them:
one attempt opened at a time, resends that say where they went, rows that tell
deliveries apart and say each thing once."""

import html as html_module
import re
import time

import pytest
from django.urls import reverse

from sandbox import spec
from sandbox.delivery import panes, selectors, views
from sandbox.delivery.models import Delivery
from sandbox.subscriptions.services import subscription_update
from tests.factories import make_delivery, make_subscription

# Segment's schedule 10,000 times faster: each retry is due within milliseconds.
FAST = 10_000


def _text(markup: str) -> str:
    """What a person reads: tags dropped, entities decoded, spaces collapsed."""
    text = html_module.unescape(re.sub(r"<[^>]+>", " ", markup))
    return re.sub(r"\s+", " ", text).strip()


def _settle(deliver_due, pk: int) -> Delivery:
    """Run the engine until the delivery has no attempt left to make."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        deliver_due()
        delivery = Delivery.objects.get(pk=pk)
        if not delivery.is_open:
            return delivery
        time.sleep(0.01)
    raise AssertionError(f"delivery {pk} still open")


@pytest.fixture
def ten_attempts(receiver, deliver_due) -> Delivery:
    subscription = make_subscription(
        endpoint_url=receiver.url("/status/500"), time_scale=FAST
    )
    delivery = _settle(deliver_due, make_delivery(subscription=subscription).pk)
    assert delivery.attempt_count == 10
    return delivery


def _detail(client, pk: int, **params) -> str:
    return client.get(reverse("delivery:detail", args=[pk]), params).content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_delivery_opens_its_latest_attempt_only(client, ten_attempts):
    page = _detail(client, ten_attempts.pk)
    assert page.count('id="attempt-view"') == 1
    assert 'id="attempt-10"' in page
    assert 'id="attempt-3"' not in page
    # The event went out ten times; it is shown once.
    assert page.count("<td>User-Agent</td>") == 1
    assert page.count("data-attempt-link=") == 10
    assert 'data-attempt="10" class="chosen" aria-current="true"' in page
    # Following the latest: nothing chosen.
    assert "data-chosen-attempt" not in page


@pytest.mark.django_db(transaction=True)
def test_an_attempt_is_opened_by_its_number(client, ten_attempts):
    page = _detail(client, ten_attempts.pk, attempt="3")
    assert 'id="attempt-3"' in page
    assert 'id="attempt-10"' not in page
    assert 'data-chosen-attempt="3"' in page
    assert 'data-attempt="3" class="chosen" aria-current="true"' in page
    assert "Show the latest attempt" in page
    for nonsense in ("abc", "99", "0", "²", "9" * 5000, "-1"):
        page = _detail(client, ten_attempts.pk, attempt=nonsense)
        assert 'id="attempt-10"' in page, nonsense
        assert "data-chosen-attempt" not in page


@pytest.mark.django_db(transaction=True)
def test_choosing_an_attempt_swaps_only_the_attempt(client, ten_attempts):
    response = client.get(
        reverse("delivery:detail", args=[ten_attempts.pk]),
        {"attempt": "4"},
        headers={"HX-Request": "true", "HX-Target": "attempt-view"},
    )
    body = response.content.decode().strip()
    assert body.startswith('<section id="attempt-view"')
    assert 'data-attempt="4"' in body
    assert 'id="delivery-detail"' not in body
    # Any other htmx request for a delivery gets the whole pane.
    response = client.get(
        reverse("delivery:detail", args=[ten_attempts.pk]),
        headers={"HX-Request": "true", "HX-Target": "delivery-detail-pane"},
    )
    assert response.content.decode().strip().startswith('<div id="delivery-detail"')


@pytest.mark.django_db(transaction=True)
def test_the_pushed_pane_opens_the_latest_attempt(ten_attempts):
    context = panes.detail_context(selectors.delivery_get(pk=ten_attempts.pk))
    assert context["chosen"].attempt.number == 10
    assert context["chosen"].is_latest
    assert [a.number for a in context["attempts"]] == list(range(1, 11))
    # The event is shown by the attempts, not again on its own.
    assert context["payload_pretty"] == ""


@pytest.mark.django_db
def test_a_delivery_before_its_first_attempt_shows_its_event(client):
    delivery = make_delivery(subscription=make_subscription())
    context = panes.detail_context(selectors.delivery_get(pk=delivery.pk))
    assert context["chosen"] is None
    page = _detail(client, delivery.pk)
    assert "Waiting for the first attempt" in page
    assert 'id="attempt-view"' not in page
    assert "&quot;type&quot;: &quot;track&quot;" in page


@pytest.mark.django_db
def test_resend_from_its_page_goes_to_the_new_deliverys_page(client):
    original = make_delivery(subscription=make_subscription())
    url = reverse("delivery:resend", args=[original.pk])

    response = client.post(url, {"as_new": "1"}, follow=True)
    fresh = Delivery.objects.get(resend_of=original)
    assert response.redirect_chain == [
        (reverse("delivery:detail", args=[fresh.pk]), 302)
    ]
    page = response.content.decode()
    assert views.RESENT_AS_NEW.format(pk=fresh.pk) in page
    assert f'<span class="muted">#{fresh.pk}</span></h1>' in page

    response = client.post(
        url,
        headers={
            "HX-Request": "true",
            "HX-Current-URL": f"http://testserver/deliveries/{original.pk}/",
        },
    )
    deduplicated = Delivery.objects.filter(resend_of=original).latest("pk")
    assert deduplicated.state == "deduplicated"
    assert response["HX-Redirect"] == reverse("delivery:detail", args=[deduplicated.pk])
    page = client.get(response["HX-Redirect"]).content.decode()
    assert (
        html_module.escape(views.RESENT_DEDUPLICATED.format(pk=deduplicated.pk)) in page
    )
    assert 'class="flash-warning"' in page


@pytest.mark.django_db
def test_resend_in_the_event_tester_fills_its_pane(client):
    original = make_delivery(subscription=make_subscription())
    response = client.post(
        reverse("delivery:resend", args=[original.pk]),
        {"bypass_dedupe": "1"},
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/?from=1"},
    )
    resent = Delivery.objects.get(resend_of=original)
    assert resent.state == "pending"
    assert response["HX-Retarget"] == "#delivery-detail-pane"
    assert response["HX-Reswap"] == "innerHTML"
    body = response.content.decode()
    assert views.RESENT_BYPASSING_DEDUPE.format(pk=resent.pk) in body
    assert f'<div id="delivery-detail" class="card" data-delivery="{resent.pk}"' in body
    row = rf'<div id="delivery-row-{resent.pk}"'
    assert re.search(rf'hx-swap-oob="afterbegin:#delivery-feed">\s*{row}', body)


@pytest.mark.django_db
def test_a_refused_resend_is_told_and_changes_nothing(client):
    subscription = make_subscription()
    original = make_delivery(subscription=subscription)
    subscription_update(subscription=subscription, enabled=False)
    response = client.post(
        reverse("delivery:resend", args=[original.pk]),
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/"},
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert "disabled" in response.content.decode()
    assert not Delivery.objects.filter(resend_of=original).exists()


@pytest.mark.django_db
def test_a_pending_delivery_says_pending_once(client):
    delivery = make_delivery(subscription=make_subscription())
    feed = client.get(reverse("delivery:feed")).content.decode()
    row = feed[feed.index(f'<div id="delivery-row-{delivery.pk}"') :]
    assert _text(row).count("pending") == 1
    pane = _detail(client, delivery.pk)
    head = pane[pane.index('class="attempt-head"') : pane.index('class="pane-actions"')]
    assert _text(head).count("pending") == 1


@pytest.mark.django_db(transaction=True)
def test_a_reason_is_said_once(client, receiver, deliver_due):
    ok = make_delivery(subscription=make_subscription(endpoint_url=receiver.url("/ok")))
    refused = make_delivery(
        subscription=make_subscription(
            name="Refused", endpoint_url="http://127.0.0.1:9/hook", time_scale=FAST
        )
    )
    _settle(deliver_due, ok.pk)
    refused = _settle(deliver_due, refused.pk)
    assert _text(_detail(client, ok.pk)).count("processed (200)") == 1
    page = _text(_detail(client, refused.pk))
    said = refused.attempts.latest("number").reason.rstrip(".")
    assert refused.reason.startswith(said)
    assert page.count(said) == 1
    # An attempt that failed otherwise than the delivery ended says its own.
    flaky = make_delivery(
        subscription=make_subscription(
            name="Flaky", endpoint_url=receiver.url("/flaky/1/500"), time_scale=FAST
        )
    )
    flaky = _settle(deliver_due, flaky.pk)
    first = flaky.attempts.get(number=1).reason
    assert "failing attempt 1 on purpose" in first
    assert _text(_detail(client, flaky.pk, attempt="1")).count(first) == 1
    assert first not in _text(_detail(client, flaky.pk))


@pytest.mark.django_db
def test_rows_show_a_short_message_id_and_the_user(client):
    subscription = make_subscription()
    event = spec.sample_event("track")
    event.update(
        userId="<b>user-42</b>",
        messageId="ajs-next-1712345678901-0f6c1e7a-2b44-4c1e-9a55-5d2f9c0de8b1",
    )
    known = make_delivery(subscription=subscription, event=event)
    event = spec.sample_event("track")
    event.pop("userId", None)
    event.update(anonymousId="anon-7", messageId="m-1")
    anonymous = make_delivery(subscription=subscription, event=event)
    feed = client.get(reverse("delivery:feed")).content.decode()

    row = feed[feed.index(f'<div id="delivery-row-{known.pk}"') :]
    assert "…2f9c0de8b1</span>" in row
    assert "&lt;b&gt;user-42&lt;/b&gt;" in row
    assert "<b>user-42</b>" not in row
    row = feed[feed.index(f'<div id="delivery-row-{anonymous.pk}"') :]
    assert ">m-1</span>" in row
    assert "anon anon-7" in _text(row)


@pytest.mark.django_db
def test_the_feeds_rows_do_not_take_its_own_swap(client):
    delivery = make_delivery(subscription=make_subscription())
    feed = client.get(reverse("delivery:feed")).content.decode()
    assert 'hx-disinherit="*"' in feed[: feed.index(">")]
    link = re.search(rf'<a class="row-link"[^>]*/deliveries/{delivery.pk}/[^>]*>', feed)
    assert 'hx-target="#delivery-detail-pane"' in link.group()
    assert 'hx-swap="innerHTML"' in link.group()
