"""What the composer shows about the JSON being edited (pure apart from the spec)."""

from dataclasses import dataclass, field

from sandbox import spec
from sandbox.display import indent_json


@dataclass(frozen=True)
class Check:
    json_error: spec.JsonError | None = None
    problems: list[spec.Problem] = field(default_factory=list)
    size_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.json_error is None and not self.problems


def check_text(text: str) -> Check:
    """Invalid JSON first (with line and column), then the Spec's problems."""
    event, error = spec.parse_event_json(text)
    if error is not None:
        return Check(json_error=error)
    return Check(problems=spec.validate_event(event), size_bytes=spec.json_size(event))


def editor_text(event: object) -> str:
    """The event as the editor shows it."""
    return indent_json(event)
