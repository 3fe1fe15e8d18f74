"""Mock endpoints that answer deliveries as a partner would, and what they received."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from sandbox.delivery.webhook import GREEN, classify_status
from sandbox.display import mask_headers, mask_secret, pretty_json
from sandbox.mock.answers import default_body
from sandbox.spec import EVENT_TYPES, parse_json

STATUS_CODE_RANGE = (
    "Status code must be between 200 and 599: a 1xx status is not a final answer, "
    "so a sender would only wait for one."
)
FAIL_STATUS_RANGE = "Failure status must be between 400 and 599."
DELAY_RANGE = "Delay must be between 0 and 30000 ms."
FAIL_FIRST_N_RANGE = "Failed attempts must be between 0 and 100."
UNKNOWN_EVENT_TYPES = "Unsupported types must be chosen from: {choices}."
RESPONSE_BODY_NOT_JSON = (
    "Response body is not valid JSON: {error} (line {line}, column {column})."
)
RESERVED_SLUG = "'{slug}' is reserved; choose another slug."

# /mocks/new/ is the create page, so an endpoint with that slug could never be shown.
RESERVED_SLUGS = frozenset({"new"})


def validate_event_types(value: object) -> None:
    if not isinstance(value, list) or not set(value) <= set(EVENT_TYPES):
        raise ValidationError(
            UNKNOWN_EVENT_TYPES.format(choices=", ".join(EVENT_TYPES)),
            code="invalid_choice",
        )


def validate_json_text(value: str) -> None:
    _, error = parse_json(value)
    if error is not None:
        raise ValidationError(
            RESPONSE_BODY_NOT_JSON.format(
                error=error.reason, line=error.line, column=error.column
            ),
            code="invalid_json",
        )


def validate_slug_not_reserved(value: str) -> None:
    if value in RESERVED_SLUGS:
        raise ValidationError(RESERVED_SLUG.format(slug=value), code="reserved")


class MockEndpoint(models.Model):
    slug = models.SlugField(unique=True, validators=[validate_slug_not_reserved])
    name = models.CharField(max_length=120)
    api_key = models.CharField(max_length=500)
    status_code = models.IntegerField(
        default=200,
        validators=[
            MinValueValidator(200, STATUS_CODE_RANGE),
            MaxValueValidator(599, STATUS_CODE_RANGE),
        ],
    )
    delay_ms = models.IntegerField(
        default=0,
        validators=[
            MinValueValidator(0, DELAY_RANGE),
            MaxValueValidator(30000, DELAY_RANGE),
        ],
    )
    fail_first_n = models.IntegerField(
        default=0,
        validators=[
            MinValueValidator(0, FAIL_FIRST_N_RANGE),
            MaxValueValidator(100, FAIL_FIRST_N_RANGE),
        ],
    )
    fail_status = models.IntegerField(
        default=503,
        validators=[
            MinValueValidator(400, FAIL_STATUS_RANGE),
            MaxValueValidator(599, FAIL_STATUS_RANGE),
        ],
    )
    unsupported_types = models.JSONField(
        default=list, blank=True, validators=[validate_event_types]
    )
    # Blank means a default JSON body that suits the status code.
    response_body = models.TextField(blank=True, validators=[validate_json_text])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "slug"]

    def __str__(self) -> str:
        return self.name

    @property
    def masked_api_key(self) -> str:
        return mask_secret(self.api_key)

    @property
    def answer_body(self) -> str:
        """The body sent with the configured status, default or not."""
        return self.response_body or default_body(self.status_code)


class MockRequest(models.Model):
    endpoint = models.ForeignKey(
        MockEndpoint, on_delete=models.CASCADE, related_name="requests"
    )
    method = models.CharField(max_length=16)
    # [name, value] pairs in received order; a dict would lose order and repeats.
    headers = models.JSONField(default=list)
    body = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    event_type = models.CharField(max_length=32, blank=True, db_index=True)
    response_status = models.IntegerField()
    response_body = models.TextField(blank=True)
    auth_ok = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Fail-first-N counts earlier attempts of one messageId at one endpoint.
            models.Index(fields=["endpoint", "message_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.event_type or '?'} → {self.response_status}"

    @property
    def outcome(self) -> str:
        """Segment's colour for the answer, as the engine reads the same status."""
        return classify_status(self.response_status).outcome

    @property
    def succeeded(self) -> bool:
        return self.outcome == GREEN

    @property
    def display_headers(self) -> list[tuple[str, str]]:
        return mask_headers(self.headers)

    @property
    def pretty_body(self) -> str:
        return pretty_json(self.body)[0]

    @property
    def pretty_response_body(self) -> str:
        return pretty_json(self.response_body)[0]
