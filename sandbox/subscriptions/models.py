"""Subscriptions: what the sandbox delivers events to, a partner's webhook endpoint
or a JavaScript subscription function the sandbox runs."""

from django.core.exceptions import ValidationError
from django.db import models

from sandbox.display import indent_json, mask_secret
from sandbox.spec import json_size, value_problem
from sandbox.spec.endpoint_url import endpoint_url_problem

DEFAULT_TIMEOUT_SECONDS = 5.0
MIN_TIMEOUT_SECONDS = 0.1
MAX_TIMEOUT_SECONDS = 60.0
# Segment sends the API key itself as `apiKey`; a custom setting may not shadow it.
RESERVED_SETTINGS_KEY = "apiKey"

NAME_TAKEN_ERROR = "A subscription with this name already exists."
CUSTOM_SETTINGS_UNSENDABLE_ERROR = "Custom settings cannot travel as JSON: {reason}."
CUSTOM_SETTINGS_TOO_LARGE_ERROR = (
    "Custom settings are {size:,} bytes as JSON; the sandbox accepts at most "
    "{limit:,}. They travel base64-encoded in the X-Segment-Settings header, and "
    "servers refuse header lines much over 8 KB."
)
# Compact UTF-8 JSON; base64 makes 4 KB about 5.5 KB, well inside the 8 KB header
# line that Node, nginx and aiohttp accept by default.
MAX_CUSTOM_SETTINGS_BYTES = 4096
TIMEOUT_RANGE_ERROR = "The timeout must be between 0.1 and 60 seconds."
CUSTOM_SETTINGS_NOT_OBJECT_ERROR = (
    "Custom settings must be a JSON object of key → value pairs"
)
TIME_SCALE_RANGE_ERROR = "The time scale must be between 1 (real time) and 10000."
DEDUPE_WINDOW_RANGE_ERROR = "The dedupe window must be between 1 minute and 170 days."
DEFAULT_DEDUPE_WINDOW_HOURS = 24.0
MAX_TIME_SCALE = 10_000.0
# The partner FAQ's observed window is about 170 days.
MAX_DEDUPE_WINDOW_HOURS = 170 * 24.0
ENDPOINT_URL_REQUIRED_ERROR = "A webhook subscription needs an endpoint URL."
MEMORY_RANGE_ERROR = "The memory limit must be between 16 and 1024 MB."
BATCH_SIZE_RANGE_ERROR = "The batch size must be between 1 and 400 events."
BATCH_WINDOW_RANGE_ERROR = "The batch window must be between 0.1 and 60 seconds."
# Segment's defaults for functions (segment-reference.md sections 7.1 and 7.4).
DEFAULT_MEMORY_MB = 128
DEFAULT_BATCH_SIZE = 20
DEFAULT_BATCH_WINDOW_SECONDS = 10.0
CUSTOM_SETTINGS_API_KEY_ERROR = (
    "apiKey is set by the API key field; Segment keeps it out of X-Segment-Settings"
)


# What only a function subscription has.
FUNCTION_FIELDS = ("memory_mb", "batch_size", "batch_window_seconds")
# What only a webhook subscription has.
WEBHOOK_FIELDS = ("endpoint_url",)
# What a user may set on a subscription, in the order the form shows it.
EDITABLE_FIELDS = (
    "name",
    "kind",
    *WEBHOOK_FIELDS,
    "api_key",
    "custom_settings",
    "timeout_seconds",
    *FUNCTION_FIELDS,
    "retry_policy",
    "time_scale",
    "dedupe_enabled",
    "dedupe_window_hours",
    "enabled",
)


def validate_endpoint_url(value: str) -> None:
    # The check and its sentences are pure (sandbox.spec.endpoint_url) so the
    # transport, which runs without Django, words a refused URL the same way.
    problem = endpoint_url_problem(value)
    if problem is not None:
        raise ValidationError(problem, code="invalid")


def validate_timeout_seconds(value: float) -> None:
    # Written as "not inside" so NaN, which fails every comparison, is refused too.
    if not MIN_TIMEOUT_SECONDS <= value <= MAX_TIMEOUT_SECONDS:
        raise ValidationError(TIMEOUT_RANGE_ERROR, code="range")


def validate_time_scale(value: float) -> None:
    if not 1.0 <= value <= MAX_TIME_SCALE:
        raise ValidationError(TIME_SCALE_RANGE_ERROR, code="range")


def validate_memory_mb(value: int) -> None:
    if not 16 <= value <= 1024:
        raise ValidationError(MEMORY_RANGE_ERROR, code="range")


def validate_batch_size(value: int) -> None:
    if not 1 <= value <= 400:
        raise ValidationError(BATCH_SIZE_RANGE_ERROR, code="range")


def validate_batch_window(value: float) -> None:
    if not 0.1 <= value <= 60:
        raise ValidationError(BATCH_WINDOW_RANGE_ERROR, code="range")


def validate_dedupe_window(value: float) -> None:
    if not 1 / 60 <= value <= MAX_DEDUPE_WINDOW_HOURS:
        raise ValidationError(DEDUPE_WINDOW_RANGE_ERROR, code="range")


def custom_settings_problem(value: object) -> str | None:
    """Why these custom settings cannot be sent, or None."""
    if not isinstance(value, dict):
        return CUSTOM_SETTINGS_NOT_OBJECT_ERROR
    if RESERVED_SETTINGS_KEY in value:
        return CUSTOM_SETTINGS_API_KEY_ERROR
    reason = value_problem(value)
    if reason is not None:
        return CUSTOM_SETTINGS_UNSENDABLE_ERROR.format(reason=reason)
    size = json_size(value)
    if size > MAX_CUSTOM_SETTINGS_BYTES:
        return CUSTOM_SETTINGS_TOO_LARGE_ERROR.format(
            size=size, limit=MAX_CUSTOM_SETTINGS_BYTES
        )
    return None


def validate_custom_settings(value: object) -> None:
    problem = custom_settings_problem(value)
    if problem is not None:
        raise ValidationError(problem, code="invalid")


class Subscription(models.Model):
    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        FUNCTION = "function", "Function"

    class RetryPolicy(models.TextChoices):
        SEGMENT = "segment", "Segment (first attempt + 9 retries over about 4 hours)"
        NONE = "none", "None (one attempt)"

    name = models.CharField(
        max_length=120, unique=True, error_messages={"unique": NAME_TAKEN_ERROR}
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WEBHOOK)
    # A CharField, not a URLField, so validate_endpoint_url is the only URL check.
    # Blank only for a function, which sends with fetch (see clean()).
    endpoint_url = models.CharField(
        "endpoint URL", max_length=2000, blank=True, validators=[validate_endpoint_url]
    )
    api_key = models.CharField("API key", max_length=500, blank=True)
    custom_settings = models.JSONField(default=dict, blank=True)
    timeout_seconds = models.FloatField(
        "timeout (seconds)",
        default=DEFAULT_TIMEOUT_SECONDS,
        validators=[validate_timeout_seconds],
    )
    retry_policy = models.CharField(
        max_length=16, choices=RetryPolicy.choices, default=RetryPolicy.SEGMENT
    )
    time_scale = models.FloatField(
        default=1.0,
        validators=[validate_time_scale],
        help_text="1 is real time; 240 plays Segment's four hours of retries in "
        "one minute.",
    )
    dedupe_enabled = models.BooleanField(
        "deduplicate by messageId",
        default=True,
        help_text="Segment drops a second event with the same messageId.",
    )
    dedupe_window_hours = models.FloatField(
        "dedupe window (hours)",
        default=DEFAULT_DEDUPE_WINDOW_HOURS,
        validators=[validate_dedupe_window],
    )
    enabled = models.BooleanField(default=True)
    # A function's limits and batching (onBatch); a webhook ignores them.
    memory_mb = models.PositiveIntegerField(
        "memory limit (MB)", default=DEFAULT_MEMORY_MB, validators=[validate_memory_mb]
    )
    batch_size = models.PositiveSmallIntegerField(
        "batch size (events)",
        default=DEFAULT_BATCH_SIZE,
        validators=[validate_batch_size],
        help_text="onBatch gets up to this many events at once.",
    )
    batch_window_seconds = models.FloatField(
        "batch window (seconds)",
        default=DEFAULT_BATCH_WINDOW_SECONDS,
        validators=[validate_batch_window],
        help_text="A batch goes when it is full or this long after its first event.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["enabled", "name"], name="subscription_enabled_name")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Checked here rather than as a field validator: Django skips field validators
        # for "empty" values, which would let [] through as custom settings.
        try:
            validate_custom_settings(self.custom_settings)
        except ValidationError as error:
            raise ValidationError({"custom_settings": error}) from None
        if self.kind == self.Kind.WEBHOOK and not self.endpoint_url:
            raise ValidationError(
                {"endpoint_url": ValidationError(ENDPOINT_URL_REQUIRED_ERROR)}
            )

    @property
    def is_function(self) -> bool:
        return self.kind == self.Kind.FUNCTION

    @property
    def current_function(self):
        """The function's newest saved version, or None."""
        return self.function_versions.order_by("-number").first()

    @property
    def masked_api_key(self) -> str:
        return mask_secret(self.api_key)

    @property
    def custom_settings_json(self) -> str:
        return indent_json(self.custom_settings)

    @property
    def timeout_label(self) -> str:
        return f"{self.timeout_seconds:g} s"

    @property
    def retry_policy_label(self) -> str:
        """The policy's name, without what its choice label says it does."""
        return self.get_retry_policy_display().split(" (", 1)[0]

    @property
    def time_scale_label(self) -> str:
        times = f"{self.time_scale:g}\N{MULTIPLICATION SIGN}"
        return f"{times} (real time)" if self.time_scale == 1 else times

    @property
    def dedupe_label(self) -> str:
        if not self.dedupe_enabled:
            return "off"
        return _hours_label(self.dedupe_window_hours)


def _hours_label(hours: float) -> str:
    """A window as people say it: 30 min, 24 h, 7 d."""
    if hours < 1:
        return f"{hours * 60:.3g} min"
    if hours >= 48 and hours % 24 == 0:
        return f"{hours / 24:g} d"
    return f"{hours:g} h"
