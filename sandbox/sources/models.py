"""Sources (a write key connected to subscriptions) and every event their SDKs
sent to the tracking API (the requests wait in sandbox.sources.spool)."""

import secrets
import string

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from sandbox.display import mask_secret

NAME_TAKEN_ERROR = "A source with this name already exists."
WRITE_KEY_TAKEN_ERROR = "Another source already has this write key."
# Segment's write keys are 32 letters and digits; the sandbox makes them alike.
WRITE_KEY_LENGTH = 32
# Segment's source ids (an event's projectId) are 22 letters and digits.
PROJECT_ID_LENGTH = 22
_ALPHABET = string.ascii_letters + string.digits
# SDKs put the write key in a URL path (analytics.js loads
# /v1/projects/<writeKey>/settings) and before the colon of Basic auth, so a
# key with "/", ":", "?", "#", "%" or a space could never be used by one.
WRITE_KEY_INVALID = (
    "A write key may hold only letters, digits, '.', '_', '~' and '-' (SDKs "
    "send it in a URL and before the colon of Basic auth, where other "
    "characters break it)."
)
write_key_validator = RegexValidator(
    r"\A[A-Za-z0-9._~-]+\Z", WRITE_KEY_INVALID, code="invalid_write_key"
)


def new_write_key() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(WRITE_KEY_LENGTH))


def new_project_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(PROJECT_ID_LENGTH))


class Source(models.Model):
    """What an SDK sends to: a write key whose events go to its subscriptions."""

    name = models.CharField(
        max_length=120, unique=True, error_messages={"unique": NAME_TAKEN_ERROR}
    )
    write_key = models.CharField(
        max_length=200,
        unique=True,
        default=new_write_key,
        validators=[write_key_validator],
        error_messages={"unique": WRITE_KEY_TAKEN_ERROR},
    )
    # The projectId its events carry, as Segment's carry their source's id.
    project_id = models.CharField(max_length=32, default=new_project_id)
    subscriptions = models.ManyToManyField(
        "subscriptions.Subscription", related_name="sources", blank=True
    )
    # Segment drops a messageId seen on the source within this window.
    dedupe_window_hours = models.FloatField(default=24.0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def masked_write_key(self) -> str:
        return mask_secret(self.write_key)

    @property
    def write_key_sendable(self) -> bool:
        """Whether SDKs can send this key (one stored before keys were checked
        may hold characters they cannot)."""
        try:
            write_key_validator(self.write_key)
        except ValidationError:
            return False
        return True


class IngestedEvent(models.Model):
    """One event a request carried: forwarded (accepted) or dropped, and why."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        DROPPED = "dropped", "Dropped"

    # None when the write key is nobody's (the event is dropped).
    source = models.ForeignKey(
        Source,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="ingested_events",
    )
    write_key = models.CharField(max_length=200, blank=True)
    endpoint = models.CharField(max_length=32)
    # The spool's number of the request it came in (requests leave the spool once
    # expanded): the events of one batch share it.
    request_number = models.BigIntegerField(db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    reason = models.CharField(max_length=500, blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    event_type = models.CharField(max_length=32, blank=True)
    event_name = models.CharField(max_length=200, blank=True)
    user_id = models.CharField(max_length=200, blank=True)
    anonymous_id = models.CharField(max_length=200, blank=True)
    library = models.CharField(max_length=200, blank=True)
    client_ip = models.CharField(max_length=64, blank=True)
    # Accepted: the event as forwarded (enriched as Segment enriches it).
    # Dropped: what arrived, as far as it could be read.
    payload = models.JSONField(null=True)
    received_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["source", "-id"], name="ingested_by_source"),
            models.Index(
                fields=["source", "message_id", "received_at"],
                condition=models.Q(status="accepted"),
                name="ingested_dedupe",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type or 'event'} {self.message_id} ({self.status})"

    @property
    def label(self) -> str:
        return self.event_name or self.event_type or "(no type)"

    @property
    def masked_write_key(self) -> str:
        return mask_secret(self.write_key)


class IngestedDelivery(models.Model):
    """An ingested event's delivery to one subscription (kept here, so the
    pipeline knows nothing of sources)."""

    event = models.ForeignKey(
        IngestedEvent, on_delete=models.CASCADE, related_name="delivery_links"
    )
    delivery_id = models.BigIntegerField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["event", "delivery_id"], name="ingested_delivery_unique"
            )
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} → delivery {self.delivery_id}"
