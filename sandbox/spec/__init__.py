"""Segment's Spec in pure Python: types, samples, templates, validation, normalising."""

from sandbox.spec.constants import (
    EVENT_TYPES,
    MAX_EVENT_BYTES,
    MAX_MESSAGE_ID_LENGTH,
)
from sandbox.spec.json_text import (
    MAX_DEPTH,
    JsonError,
    encoded_or_problem,
    json_size,
    member_size,
    parse_event_json,
    parse_json,
    value_problem,
)
from sandbox.spec.normalisation import NormalisedEvent, normalise
from sandbox.spec.samples import sample_event, sample_problem
from sandbox.spec.sources import (
    LIBRARIES,
    SOURCES,
    fresh_message_id,
    message_id_like,
)
from sandbox.spec.templates import TEMPLATES, Template, templates_by_category
from sandbox.spec.timestamps import format_timestamp, parse_timestamp
from sandbox.spec.validation import (
    Problem,
    event_size,
    event_warnings,
    validate_event,
)

__all__ = [
    "EVENT_TYPES",
    "LIBRARIES",
    "MAX_DEPTH",
    "MAX_EVENT_BYTES",
    "MAX_MESSAGE_ID_LENGTH",
    "SOURCES",
    "TEMPLATES",
    "JsonError",
    "NormalisedEvent",
    "Problem",
    "Template",
    "encoded_or_problem",
    "event_size",
    "event_warnings",
    "format_timestamp",
    "fresh_message_id",
    "json_size",
    "member_size",
    "message_id_like",
    "normalise",
    "parse_event_json",
    "parse_json",
    "parse_timestamp",
    "sample_event",
    "sample_problem",
    "templates_by_category",
    "validate_event",
    "value_problem",
]
