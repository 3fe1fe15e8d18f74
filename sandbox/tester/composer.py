"""What the composer shows about the JSON being edited (pure apart from the spec)."""

import json
from dataclasses import dataclass, field

from sandbox import spec


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
    size = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
    return Check(problems=spec.validate_event(event), size_bytes=size)


def editor_text(event: object) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False)
