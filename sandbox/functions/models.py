"""Function versions: every saved source of a function subscription, kept so that
each attempt records which version ran."""

import hashlib

from django.db import models


class FunctionVersion(models.Model):
    # None for a function run ad hoc from the command line (sendevent --function).
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="function_versions",
    )
    number = models.PositiveIntegerField()
    source = models.TextField()
    source_sha256 = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "number"],
                condition=models.Q(subscription__isnull=False),
                name="function_version_number_unique",
            )
        ]

    def __str__(self) -> str:
        return f"version {self.number}"

    @staticmethod
    def hash_of(source: str) -> str:
        return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def label(self) -> str:
        return f"v{self.number}"
