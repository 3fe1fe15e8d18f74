"""Factories that build test data through the project's own services."""

import json

from django.utils import timezone

from sandbox import spec
from sandbox.delivery import services
from sandbox.delivery.models import Delivery, Door
from sandbox.delivery.services import Target
from sandbox.subscriptions.models import DEFAULT_TIMEOUT_SECONDS, Subscription
from sandbox.subscriptions.services import subscription_create


def make_subscription(
    *,
    name: str = "Partner webhook",
    endpoint_url: str = "http://127.0.0.1:9/hook",
    api_key: str = "segment",
    custom_settings: dict | None = None,
    timeout_seconds: float = 5.0,
    enabled: bool = True,
    **options,
) -> Subscription:
    """options: retry_policy, time_scale, dedupe_enabled, dedupe_window_hours."""
    return subscription_create(
        name=name,
        endpoint_url=endpoint_url,
        api_key=api_key,
        custom_settings=custom_settings or {},
        timeout_seconds=timeout_seconds,
        enabled=enabled,
        **options,
    )


def make_delivery(
    *,
    subscription: Subscription,
    event: object | None = None,
    door: str = Door.COMPOSER,
    allow_problems: bool = False,
) -> Delivery:
    return services.delivery_enqueue(
        target=services.Target.of(subscription),
        event=event if event is not None else spec.sample_event("track"),
        door=door,
        allow_problems=allow_problems,
    )


def ingest_batch(write_key: str, events: list[dict]) -> None:
    """A batch as an SDK sends it: stored as the tracking API stores it, then
    expanded into ingested events and deliveries, as its runtime does."""
    from sandbox.sources import services as sources

    sources.ingest_requests_store(
        requests=[
            sources.ArrivedRequest(
                endpoint="batch",
                write_key=write_key,
                body=json.dumps({"batch": events}),
                refusal="",
                client_ip="127.0.0.1",
                user_agent="analytics-python/2.3.3",
                received_at=timezone.now(),
            )
        ]
    )
    while sources.ingest_requests_expand():
        pass


def subscription_form_data(**overrides: str) -> dict[str, str]:
    """What the subscription form posts for a valid new subscription."""
    return {
        "name": "Hook",
        "endpoint_url": "http://localhost:3000/segment",
        "api_key": "key-1234",
        "custom_settings": "{}",
        "timeout_seconds": "5",
        "retry_policy": "segment",
        "time_scale": "1",
        "dedupe_enabled": "on",
        "dedupe_window_hours": "24",
        "enabled": "on",
        **overrides,
    }


def ad_hoc_target(
    url: str, *, time_scale: float = 1.0, dedupe_window_hours: int | None = None
) -> Target:
    """An endpoint given on the command line: a target with no subscription."""
    return Target(
        name=f"ad hoc: {url}",
        endpoint_url=url,
        api_key="k",
        custom_settings={},
        timeout_seconds=DEFAULT_TIMEOUT_SECONDS,
        time_scale=time_scale,
        dedupe_window_hours=dedupe_window_hours,
    )
