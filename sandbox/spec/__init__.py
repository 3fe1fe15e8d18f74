"""Segment's Spec in pure Python: types, samples, templates, validation, normalising."""

from sandbox.spec.constants import (
    EVENT_TYPES,
    MAX_EVENT_BYTES,
    MAX_MESSAGE_ID_LENGTH,
    SOURCES,
)
from sandbox.spec.json_text import (
    JsonError,
    json_size,
    parse_event_json,
    parse_json,
    value_problem,
)
from sandbox.spec.normalisation import normalise
from sandbox.spec.samples import sample_event
from sandbox.spec.templates import TEMPLATES, Template, templates_by_category
from sandbox.spec.timestamps import format_timestamp, parse_timestamp
from sandbox.spec.validation import Problem, validate_event

__all__ = [
    "EVENT_TYPES",
    "MAX_EVENT_BYTES",
    "MAX_MESSAGE_ID_LENGTH",
    "SOURCES",
    "TEMPLATES",
    "JsonError",
    "Problem",
    "Template",
    "format_timestamp",
    "json_size",
    "normalise",
    "parse_event_json",
    "parse_json",
    "parse_timestamp",
    "sample_event",
    "templates_by_category",
    "validate_event",
    "value_problem",
]
