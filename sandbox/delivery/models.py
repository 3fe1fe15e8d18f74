"""Deliveries of one event to one subscription, and each attempt made to deliver it."""

import re

from django.db import models

from sandbox.delivery import webhook


class Door(models.TextChoices):
    """Where a delivery came from; every door feeds the same pipeline."""

    COMPOSER = "composer", "Composer"
    RESEND = "resend", "Resend"
    CLI = "cli", "Command line"
    SUITE = "suite", "Suite"
    SOURCE = "source", "Source"
    REPLAY = "replay", "Replay"
    # The replay readiness check's probes: a 429 is an answer it reports, and
    # does not hold or slow them as it does a replay.
    READINESS = "readiness", "Readiness check"


class State(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    DISCARDED = "discarded", "Discarded"
    UNSUPPORTED = "unsupported", "Unsupported"
    DEDUPLICATED = "deduplicated", "Deduplicated"


class Outcome(models.TextChoices):
    """The Dev Center Test Suite's colours."""

    GREEN = webhook.GREEN, "Green"
    YELLOW = webhook.YELLOW, "Yellow"
    RED = webhook.RED, "Red"


OPEN_STATES = (State.PENDING, State.RETRYING)
# A function attempt's request line: "INVOKE function:<name>@v<N>#<handler>".
FUNCTION_METHOD = "INVOKE"
_FUNCTION_URL = re.compile(r"@v(?P<version>\d+)#(?P<handler>[^#]*)\Z")


class TargetKind(models.TextChoices):
    """What a target is; each kind has its sender (see sandbox.delivery.senders)."""

    WEBHOOK = "webhook", "Webhook"
    FUNCTION = "function", "Function"


class DeliveryTarget(models.Model):
    """Where and how an attempt is sent: a subscription as it was at some moment,
    or an ad hoc endpoint from the command line (no subscription).

    Immutable and shared by content: every delivery and attempt made to the same
    content points at one row, so the API key is stored once, and a deleted
    subscription's history keeps what it was sent to.
    """

    kind = models.CharField(
        max_length=16, choices=TargetKind.choices, default=TargetKind.WEBHOOK
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        null=True,
        on_delete=models.SET_NULL,
        related_name="targets",
    )
    name = models.CharField(max_length=120)
    endpoint_url = models.CharField(max_length=2000)
    api_key = models.CharField(max_length=500, blank=True)
    custom_settings = models.JSONField(default=dict, blank=True)
    timeout_seconds = models.FloatField(default=5.0)
    retry_policy = models.CharField(max_length=16, default="segment")
    time_scale = models.FloatField(default=1.0)
    # A function target: the version that runs, and its limits and batching.
    function_version = models.ForeignKey(
        "functions.FunctionVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="targets",
    )
    memory_mb = models.PositiveIntegerField(default=128)
    batch_size = models.PositiveSmallIntegerField(default=20)
    batch_window_seconds = models.FloatField(default=10.0)
    # A hash of everything above (the subscription's id included): the row to reuse.
    content_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        if self.kind == TargetKind.FUNCTION:
            return f"{self.name} → function {self.function_version}"
        return f"{self.name} → {self.endpoint_url}"


class Run(models.Model):
    """Deliveries sent together: copies under delivery conditions, a suite, a
    replay. The engine keeps each run within its concurrency."""

    door = models.CharField(max_length=16, choices=Door.choices)
    label = models.CharField(max_length=200, blank=True)
    conditions = models.JSONField(default=dict)
    applied = models.CharField(max_length=500, blank=True)
    # In-flight requests of this run at once, across the engine.
    concurrency = models.PositiveSmallIntegerField(default=1)
    # One delivery at a time in id order: the next goes out only once the one
    # before it has its final outcome, retries included (a suite run, as
    # Segment's tester sends). Counting rows in flight is not enough: a row
    # waiting for its retry is not in flight.
    strict_order = models.BooleanField(default=False)
    # A replay's controls, honoured by the claim. `rate`: deliveries claimed per
    # second at most (None: as fast as the concurrency allows); `rate_clock` is
    # when, in seconds since the epoch, the run's allowance was last used up to.
    rate = models.FloatField(null=True, blank=True)
    rate_clock = models.FloatField(default=0.0)
    paused = models.BooleanField(default=False)
    # 429 answers slow a replay: its rate and concurrency are multiplied by a
    # share (queue.throttle_factor) cut to `throttle_factor` at the last 429,
    # which came at the share `throttle_ceiling`; nothing of it is claimed
    # before `held_until` (Retry-After).
    throttle_factor = models.FloatField(default=1.0)
    throttle_ceiling = models.FloatField(default=1.0)
    # A replay asked for no rate: the events/s it went at when a 429 first
    # slowed it, which the share then applies to (its concurrency alone is a
    # weak brake on an endpoint that answers at once).
    throttle_rate = models.FloatField(null=True, blank=True)
    throttled_at = models.FloatField(default=0.0)
    held_until = models.FloatField(default=0.0)
    throttled_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set once no delivery of the run is open: the engine looks only at open runs.
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["id"],
                condition=models.Q(settled_at__isnull=True),
                name="run_open",
            )
        ]

    def __str__(self) -> str:
        return self.label or f"run {self.pk}"


class Delivery(models.Model):
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        null=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    # What it was last sent to (or, before its first attempt, what it was sent
    # for): each attempt goes to the subscription as it is when the attempt is made.
    target = models.ForeignKey(
        DeliveryTarget, on_delete=models.PROTECT, related_name="deliveries"
    )
    door = models.CharField(max_length=16, choices=Door.choices)
    # Indexed below where set: every index is kept up on every insert, and most
    # rows are neither resends nor duplicates.
    resend_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resends",
        db_index=False,
    )
    # Indexed first in delivery_due_by_run.
    run = models.ForeignKey(
        Run,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
        db_index=False,
    )
    # The first delivery of this messageId, when this one was deduplicated or is
    # a duplicate injected on purpose.
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="duplicates",
        db_index=False,
    )
    injected_duplicate = models.BooleanField(default=False)
    # Indexed first in delivery_dedupe.
    message_id = models.CharField(max_length=200, blank=True)
    # Held by the first delivery of a messageId in its dedupe scope (a hash of the
    # scope and the messageId): the database refuses a second holder, so two
    # sends racing with one messageId cannot both go out.
    dedupe_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    event_type = models.CharField(max_length=32, blank=True, db_index=True)
    event_name = models.CharField(max_length=200, blank=True, db_index=True)
    user_id = models.CharField(max_length=200, blank=True, db_index=True)
    anonymous_id = models.CharField(max_length=200, blank=True, db_index=True)
    # Stored as the webhook sends it (compact, UTF-8): the text is the body.
    payload = models.JSONField(encoder=webhook.BodyEncoder)
    # Spec problems the user chose to send anyway.
    spec_problems = models.JSONField(default=list, blank=True)

    # Its own index too: history's state filter reads it in id order.
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.PENDING, db_index=True
    )
    outcome = models.CharField(
        max_length=8, choices=Outcome.choices, blank=True, db_index=True
    )
    response_status = models.PositiveSmallIntegerField(null=True, db_index=True)
    latency_ms = models.PositiveIntegerField(null=True)
    reason = models.CharField(max_length=500, blank=True)
    attempt_count = models.PositiveSmallIntegerField(default=0)

    # Durable scheduling: the engine claims due rows, so a restart loses nothing and
    # several processes can share the table.
    next_attempt_at = models.DateTimeField(null=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    claimed_until = models.DateTimeField(null=True)

    # Indexed first in delivery_newest.
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            # The fair claim: due rows outside runs, and each open run's due rows,
            # each read in due order from its own range.
            models.Index(
                fields=["run", "next_attempt_at", "id"], name="delivery_due_by_run"
            ),
            models.Index(
                fields=["run"],
                condition=models.Q(claimed_until__isnull=False),
                name="delivery_run_in_flight",
            ),
            # A strict-order run's next delivery: its lowest open id.
            models.Index(
                fields=["run", "id"],
                condition=models.Q(state__in=["pending", "retrying"]),
                name="delivery_run_open_in_order",
            ),
            models.Index(fields=["-created_at", "-id"], name="delivery_newest"),
            models.Index(fields=["message_id", "created_at"], name="delivery_dedupe"),
            # History's "injected duplicates only": a few rows in a long history.
            models.Index(
                fields=["id"],
                condition=models.Q(injected_duplicate=True),
                name="delivery_injected_duplicate",
            ),
            models.Index(
                fields=["resend_of"],
                condition=models.Q(resend_of__isnull=False),
                name="delivery_resends",
            ),
            models.Index(
                fields=["duplicate_of"],
                condition=models.Q(duplicate_of__isnull=False),
                name="delivery_duplicates",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id} → {self.subscription_name}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def timeline(self) -> list["Attempt"]:
        return sorted(self.attempts.all(), key=lambda attempt: attempt.number)

    @property
    def subscription_name(self) -> str:
        return self.target.name

    @property
    def retry_policy(self) -> str:
        return self.target.retry_policy

    @property
    def time_scale(self) -> float:
        return self.target.time_scale

    @property
    def label(self) -> str:
        """What a person calls this event: the track name, else its type."""
        return self.event_name or self.event_type or "(no type)"

    @property
    def function_call(self) -> str:
        """What its latest attempt ran, as "onTrack · v3", when the delivery is
        to a function ("" for a webhook, or before a first attempt)."""
        if self.target.kind != TargetKind.FUNCTION:
            return ""
        attempts = self.timeline
        return attempts[-1].function_call if attempts else ""


class Attempt(models.Model):
    class ErrorKind(models.TextChoices):
        TIMEOUT = "timeout", "Timeout"
        REFUSED = "refused", "Connection refused"
        DNS = "dns", "DNS failure"
        TLS = "tls", "TLS error"
        RESET = "reset", "Connection reset"
        INVALID_URL = "invalid_url", "Invalid URL"
        INTERRUPTED = "interrupted", "Interrupted"
        OTHER = "other", "Transport error"

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempts"
    )
    number = models.PositiveSmallIntegerField()
    target = models.ForeignKey(
        DeliveryTarget, on_delete=models.PROTECT, related_name="attempts"
    )
    # When the schedule wanted it sent; started_at is when it was.
    due_at = models.DateTimeField(null=True)
    started_at = models.DateTimeField()
    request_method = models.CharField(max_length=8, default="POST")
    request_url = models.CharField(max_length=2000)
    request_headers = models.JSONField(default=list)  # [[name, value], ...] in order

    response_status = models.PositiveSmallIntegerField(null=True)
    response_headers = models.JSONField(default=list)
    response_body = models.TextField(blank=True)
    response_truncated = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(null=True)
    error_kind = models.CharField(max_length=16, choices=ErrorKind.choices, blank=True)
    error_message = models.CharField(max_length=1000, blank=True)
    # Further HTTP exchanges the attempt made (a function's fetch calls), each as
    # {"request": {...}, "response": {...}}; a webhook attempt is one exchange.
    exchanges = models.JSONField(default=list, blank=True)
    # A function's run: its handler, Callback Return, Log Output, error and
    # duration (sandbox.functions.sender); empty for a webhook.
    invocation = models.JSONField(default=dict, blank=True)

    # Blank while the request is in flight: written before sending, so a crash
    # leaves a trace and the attempt is never sent twice.
    outcome = models.CharField(max_length=8, choices=Outcome.choices, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "number"], name="attempt_number_unique"
            )
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"

    @property
    def function_call(self) -> str:
        """What a function's attempt ran, as "onTrack · v3", read from its
        request line ("function:<name>@v<N>#<handler>"); "" for an HTTP request."""
        if self.request_method != FUNCTION_METHOD:
            return ""
        found = _FUNCTION_URL.search(self.request_url)
        if found is None:
            return ""
        return f"{found['handler']} · v{found['version']}"

    @property
    def function_result(self) -> str:
        """A settled function attempt's category as Segment's Event Delivery
        names it ("returned", "retry", "timeout"): the start of its reason."""
        if self.request_method != FUNCTION_METHOD or not self.outcome:
            return ""
        if self.error_kind:
            # Nothing ran to the end: the engine stopped it (a restart, a fault).
            return self.get_error_kind_display().lower()
        category = self.reason.split(":", 1)[0].strip().lower()
        return category if 0 < len(category) <= 30 else self.outcome

    @property
    def request_body(self) -> str:
        """The body sent: the delivery's event, stored once, encoded as it went out."""
        from sandbox.delivery.senders import request_body

        return request_body(self.delivery)
