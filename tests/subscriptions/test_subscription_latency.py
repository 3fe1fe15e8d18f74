"""The subscription pages show latency over the subscription's recent deliveries."""

import pytest
from django.urls import reverse

from sandbox.delivery.models import Attempt
from tests.factories import make_delivery, make_subscription


@pytest.mark.django_db(transaction=True)
def test_pages_show_latency_with_the_window_it_covers(client, receiver, deliver_due):
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    quiet = make_subscription(name="Quiet", endpoint_url=receiver.url("/ok"))
    made = [make_delivery(subscription=subscription) for _ in range(4)]
    deliver_due()
    Attempt.objects.filter(delivery__in=made).update(latency_ms=40)
    Attempt.objects.filter(delivery=made[-1]).update(latency_ms=700)

    listing = client.get(reverse("subscriptions:list")).text
    assert "40 / 700 ms" in listing
    assert 'title="attempts for its last 4 deliveries">(4)</span>' in listing
    assert "no attempts yet" in listing  # the quiet subscription
    page = client.get(reverse("subscriptions:edit", args=[subscription.pk])).text
    assert "Latency over 4 attempts for its last 4 deliveries" in page
    assert "p50 40 ms" in page and "p95 700 ms" in page
    quiet_page = client.get(reverse("subscriptions:edit", args=[quiet.pk])).text
    assert 'id="subscription-latency"' not in quiet_page
