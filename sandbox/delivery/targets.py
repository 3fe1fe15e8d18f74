"""Targets: what a door sends to, and the immutable rows attempts are made to.

A `Target` is the description a door hands to the pipeline (a subscription, or
an ad hoc endpoint from the command line). `target_row` stores it once as a
`DeliveryTarget`, reused by content, so every delivery and attempt to the same
content points at one row and the API key is stored once.
"""

import hashlib
import json
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from sandbox.delivery import retry
from sandbox.delivery.models import DeliveryTarget, TargetKind
from sandbox.subscriptions.models import Subscription


@dataclass(frozen=True)
class Target:
    """Where and how to send: a stored subscription, or an ad hoc endpoint."""

    name: str
    endpoint_url: str
    api_key: str
    custom_settings: dict
    timeout_seconds: float
    retry_policy: str = retry.SEGMENT
    time_scale: float = 1.0
    # None: no deduplication.
    dedupe_window_hours: float | None = 24.0
    subscription: Subscription | None = None
    kind: str = TargetKind.WEBHOOK
    # A function target: the version that runs (a FunctionVersion) and its limits.
    function_version: object | None = None
    memory_mb: int = 128
    batch_size: int = 20
    batch_window_seconds: float = 10.0

    @classmethod
    def of(cls, subscription: Subscription) -> "Target":
        return cls(
            name=subscription.name,
            endpoint_url=subscription.endpoint_url,
            api_key=subscription.api_key,
            custom_settings=dict(subscription.custom_settings or {}),
            timeout_seconds=subscription.timeout_seconds,
            retry_policy=subscription.retry_policy,
            time_scale=subscription.time_scale,
            dedupe_window_hours=(
                subscription.dedupe_window_hours
                if subscription.dedupe_enabled
                else None
            ),
            subscription=subscription,
            kind=subscription.kind,
            function_version=(
                subscription.current_function
                if subscription.kind == TargetKind.FUNCTION
                else None
            ),
            memory_mb=subscription.memory_mb,
            batch_size=subscription.batch_size,
            batch_window_seconds=subscription.batch_window_seconds,
        )

    @classmethod
    def of_row(cls, row: DeliveryTarget) -> "Target":
        """An ad hoc target again (no subscription: no deduplication scope)."""
        return cls(
            name=row.name,
            endpoint_url=row.endpoint_url,
            api_key=row.api_key,
            custom_settings=row.custom_settings,
            timeout_seconds=row.timeout_seconds,
            retry_policy=row.retry_policy,
            time_scale=row.time_scale,
            kind=row.kind,
            function_version=row.function_version,
            memory_mb=row.memory_mb,
            batch_size=row.batch_size,
            batch_window_seconds=row.batch_window_seconds,
        )

    @classmethod
    def of_delivery(cls, delivery) -> "Target":
        """The delivery's subscription as it is now, or its ad hoc target row."""
        if delivery.subscription is not None:
            return cls.of(delivery.subscription)
        return cls.of_row(delivery.target)

    @property
    def subscription_id(self) -> int | None:
        return self.subscription.pk if self.subscription is not None else None

    def content_key(self) -> str:
        return content_key(
            kind=self.kind,
            subscription_id=self.subscription_id,
            name=self.name[:120],
            endpoint_url=self.endpoint_url,
            api_key=self.api_key,
            custom_settings=self.custom_settings,
            timeout_seconds=self.timeout_seconds,
            retry_policy=self.retry_policy,
            time_scale=self.time_scale,
            function=self._function_content(),
        )

    def _function_content(self) -> list | None:
        if self.kind != TargetKind.FUNCTION:
            return None
        version = self.function_version
        return [
            version.pk if version is not None else None,
            self.memory_mb,
            self.batch_size,
            self.batch_window_seconds,
        ]


def content_key(
    *,
    kind: str,
    subscription_id: int | None,
    name: str,
    endpoint_url: str,
    api_key: str,
    custom_settings: object,
    timeout_seconds: float,
    retry_policy: str,
    time_scale: float,
    function: list | None = None,
) -> str:
    # The settings' key order is part of the content: it is the header's order.
    content = [
        kind,
        subscription_id,
        name,
        endpoint_url,
        api_key,
        custom_settings,
        timeout_seconds,
        retry_policy,
        time_scale,
    ]
    # Only a function target has more; a webhook's key is what it always was.
    if function is not None:
        content.append(function)
    raw = json.dumps(content, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(raw.encode()).hexdigest()


# Target rows never change: each process looks each content up once.
_rows: dict[str, DeliveryTarget] = {}


def target_row(target: Target) -> DeliveryTarget:
    """The stored row for this content, created the first time it is sent to."""
    key = target.content_key()
    found = _rows.get(key)
    if found is not None:
        return found
    found = DeliveryTarget.objects.filter(content_key=key).first()
    if found is not None:
        # Kept once committed: a row made by a transaction that rolls back is not.
        transaction.on_commit(lambda: _rows.setdefault(key, found))
        return found
    row = DeliveryTarget(
        kind=target.kind,
        subscription=target.subscription,
        name=target.name[:120],
        endpoint_url=target.endpoint_url,
        api_key=target.api_key,
        custom_settings=target.custom_settings,
        timeout_seconds=target.timeout_seconds,
        retry_policy=target.retry_policy,
        time_scale=target.time_scale,
        function_version=target.function_version,
        memory_mb=target.memory_mb,
        batch_size=target.batch_size,
        batch_window_seconds=target.batch_window_seconds,
        content_key=key,
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        # Another process stored the same content first.
        row = DeliveryTarget.objects.get(content_key=key)
    transaction.on_commit(lambda: _rows.setdefault(key, row))
    return row


def forget_rows() -> None:
    """Drop the remembered rows (a database emptied under a running process)."""
    _rows.clear()
