"""Stored suites, and each run of a suite with its results."""

from django.db import models


class Suite(models.Model):
    """A suite stored in the sandbox (imported, or saved); files in
    SANDBOX_SUITES_DIR and the built-in suite are read where they are."""

    name = models.CharField(max_length=120, unique=True)
    # The file's JSON document (sandbox.suites.fileformat), never an API key.
    definition = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SuiteSource(models.TextChoices):
    BUILT_IN = "built_in", "Built in"
    STORED = "stored", "Stored"
    FILE = "file", "File"


class SuiteRun(models.Model):
    """One run of a suite: the pipeline's Run and its deliveries (so the steps
    are in history), the results read against the expectations, the verdict."""

    suite_name = models.CharField(max_length=120, db_index=True)
    source = models.CharField(max_length=16, choices=SuiteSource.choices)
    suite = models.ForeignKey(
        Suite, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    run = models.OneToOneField(
        "delivery.Run",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="suite_run",
    )
    # The suite as it ran (its file document) and where it was sent (no API key).
    definition = models.JSONField()
    target_name = models.CharField(max_length=200)
    endpoint_url = models.CharField(max_length=2000)
    # The subscription it was sent to (none for an ad hoc endpoint): runs are
    # compared with the last good one to the same subscription, renamed or not.
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Each step: number, label, delivery id, messageId, expectation.
    steps = models.JSONField(default=list)
    # Each step's result (sandbox.suites.results.StepResult as a dict).
    results = models.JSONField(default=list)
    # None until the run has settled and its results are read.
    passed = models.BooleanField(null=True)
    verdict = models.TextField(blank=True)
    # The run it was compared with: the suite's last run in which all held.
    compared_with = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    options = models.JSONField(default=dict)
    duration_ms = models.PositiveIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["suite_name", "passed", "-created_at"],
                name="suiterun_last_good",
            )
        ]

    def __str__(self) -> str:
        return f"{self.suite_name} run {self.pk}"
