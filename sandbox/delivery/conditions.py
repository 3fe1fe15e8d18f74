"""Delivery conditions: the faults a real pipeline brings, planned on purpose (pure).

A plan says, for each event of a send, when it falls due and whether a second
copy with the same messageId follows it (at-least-once delivery after a timeout).
"""

import random
from dataclasses import dataclass, field

MAX_COPIES = 1000
MAX_CONCURRENCY = 100
MAX_JITTER_MS = 60_000
# An injected duplicate arrives a little after its original, as a redelivery does.
DUPLICATE_DELAY_SECONDS = (0.05, 0.5)

COPIES_RANGE = f"Copies must be between 1 and {MAX_COPIES}."
CONCURRENCY_RANGE = f"Concurrency must be between 1 and {MAX_CONCURRENCY}."
DUPLICATE_RATE_RANGE = "The duplicate rate must be between 0 and 1."
JITTER_RANGE = f"Jitter must be between 0 and {MAX_JITTER_MS} ms."


@dataclass(frozen=True)
class Conditions:
    copies: int = 1
    concurrency: int = 1
    shuffle: bool = False
    duplicate_rate: float = 0.0
    jitter_ms: int = 0

    def problems(self) -> list[str]:
        found = []
        if not 1 <= self.copies <= MAX_COPIES:
            found.append(COPIES_RANGE)
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            found.append(CONCURRENCY_RANGE)
        if not 0.0 <= self.duplicate_rate <= 1.0:
            found.append(DUPLICATE_RATE_RANGE)
        if not 0 <= self.jitter_ms <= MAX_JITTER_MS:
            found.append(JITTER_RANGE)
        return found


@dataclass(frozen=True)
class Planned:
    index: int  # which event of the send
    due_in_seconds: float
    duplicate: bool = False


@dataclass(frozen=True)
class Plan:
    items: list[Planned] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return sum(1 for item in self.items if item.duplicate)


def plan(
    count: int, conditions: Conditions, *, rng: random.Random | None = None
) -> Plan:
    """Due times for `count` events: shuffled, spaced by jitter, some duplicated."""
    rng = rng or random.Random()
    order = list(range(count))
    if conditions.shuffle:
        rng.shuffle(order)
    items: list[Planned] = []
    due = 0.0
    for position, index in enumerate(order):
        if position and conditions.jitter_ms:
            due += rng.uniform(0, conditions.jitter_ms) / 1000
        # A tiny step keeps the claim order (due time, then id) the planned order.
        due += 1e-6
        items.append(Planned(index=index, due_in_seconds=due))
        if conditions.duplicate_rate and rng.random() < conditions.duplicate_rate:
            delay = rng.uniform(*DUPLICATE_DELAY_SECONDS)
            items.append(
                Planned(index=index, due_in_seconds=due + delay, duplicate=True)
            )
    return Plan(items=items)


def describe(conditions: Conditions, result: Plan) -> str:
    """What was applied, in one line the page and the history can show."""
    parts = [f"{conditions.copies} event{'s' if conditions.copies != 1 else ''}"]
    parts.append(f"concurrency {conditions.concurrency}")
    parts.append("shuffled" if conditions.shuffle else "in order")
    if conditions.duplicate_rate:
        parts.append(
            f"{result.duplicates} duplicate{'s' if result.duplicates != 1 else ''} "
            f"injected (rate {conditions.duplicate_rate:g})"
        )
    if conditions.jitter_ms:
        parts.append(f"jitter up to {conditions.jitter_ms} ms between events")
    return ", ".join(parts)
