"""A replay: a file or a slice of history sent again through the pipeline as one
Run, with its durable progress through the source."""

from django.db import models

from sandbox.delivery.models import DeliveryTarget, Run
from sandbox.subscriptions.models import Subscription

# The reasons kept of a replay's bad lines; the rest are only counted.
BAD_LINES_KEPT = 300


class Replay(models.Model):
    class Source(models.TextChoices):
        FILE = "file", "File"
        HISTORY = "history", "History"
        # Events the sandbox's sources received from SDKs (sandbox.sources).
        INGESTED = "ingested", "Ingested events"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="replay")
    source = models.CharField(max_length=16, choices=Source.choices)
    # A file's name as the user gave it, and where the sandbox keeps it.
    file_name = models.CharField(max_length=500, blank=True)
    file_path = models.CharField(max_length=2000, blank=True)
    file_size = models.BigIntegerField(default=0)
    # History: the filters, and the newest delivery (or ingested event) id when
    # the replay was made (the replay's own deliveries are never read back
    # into it).
    history_filters = models.JSONField(default=dict, blank=True)
    history_until_id = models.BigIntegerField(null=True, blank=True)
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Its name when made: a replay whose subscription is gone (subscription is
    # then None) is not sent on to the copy its target row keeps.
    subscription_name = models.CharField(max_length=200, blank=True)
    # An ad hoc endpoint's target (the command line's --endpoint).
    target = models.ForeignKey(DeliveryTarget, on_delete=models.PROTECT)
    shuffle = models.BooleanField(default=False)
    new_message_ids = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    # How far the source has been enqueued, committed with each chunk: lines or
    # array elements of a file, the last delivery (or ingested event) id of
    # history.
    position = models.BigIntegerField(default=0)
    bytes_read = models.BigIntegerField(default=0)
    events_read = models.PositiveIntegerField(default=0)
    bad_count = models.PositiveIntegerField(default=0)
    # [[position, reason], ...]: the first BAD_LINES_KEPT.
    bad_lines = models.JSONField(default=list, blank=True)
    # "line", "element", "delivery" or "event" (ingested): what `position` and
    # bad lines count.
    unit = models.CharField(max_length=16, default="line")
    duplicates_skipped = models.PositiveIntegerField(default=0)
    # Set once the whole source is enqueued.
    fed_at = models.DateTimeField(null=True, blank=True)
    # Who is reading the source now (a process's worker name), "" when no one.
    feeder = models.CharField(max_length=200, blank=True)
    problem = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"replay {self.pk} of {self.source_label}"

    @property
    def retry_policy_label(self) -> str:
        """The retries its events get: the subscription's policy as it is now
        (each attempt follows it, so a change applies to the next), or the
        command line's endpoint's."""
        if self.subscription is not None:
            return self.subscription.get_retry_policy_display()
        return Subscription.RetryPolicy(self.target.retry_policy).label

    @property
    def source_label(self) -> str:
        if self.source == self.Source.FILE:
            return self.file_name
        if self.source == self.Source.INGESTED:
            return "ingested events"
        return "history"


class ReadinessCheck(models.Model):
    """A short, bounded test of a subscription against Segment's three questions
        before a replay: does it respect `timestamp`, does order matter, what rate
        does it sustain. `report` holds the findings (see sandbox.replay.readiness);
    while it runs, `phase` and `probe_runs` say how far it got."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL
    )
    subscription_name = models.CharField(max_length=200)
    endpoint_url = models.CharField(max_length=2000)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    # The findings so far: each part is stored as its phase ends.
    report = models.JSONField(default=dict, blank=True)
    # The phase running ("timestamps", "order", "rate"); "" before the first.
    phase = models.CharField(max_length=16, blank=True)
    # The check's own probe runs, stored as each is created:
    # [{"run": id, "phase": phase}, ...].
    probe_runs = models.JSONField(default=list, blank=True)
    problem = models.CharField(max_length=500, blank=True)
    # The process running it (sandbox.delivery.queue.worker_name): a check
    # whose process ended (a server restarted) is seen as ended with it.
    runner = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"readiness check {self.pk} of {self.subscription_name}"


class LaneItem(models.Model):
    """An event of a replay's lane written ahead of its first attempt
    (sandbox.replay.lane): in the sender's hands, not yet recorded as a
    delivery. Its answer replaces it with the delivery and its attempt, in one
    transaction; a replay that stopped with some left (its process died) finds
    each recorded as interrupted when it resumes, never sent again as the same
    attempt."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="lane_items")
    # The delivery's columns as the lane will insert them (lane._row_of), its
    # payload as sent, and the request written ahead.
    row = models.TextField()
    payload = models.TextField()
    request_url = models.CharField(max_length=2000)
    request_headers = models.TextField()
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"lane item {self.pk} of run {self.run_id}"
