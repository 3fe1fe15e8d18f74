"""The events one run of a suite sends: placeholders filled, samples made, a new
messageId for every step but a deliberate repeat, and for a run with variations
each step's variants right after it (pure: no Django)."""

import random
from dataclasses import dataclass
from datetime import datetime

from sandbox import spec
from sandbox.suites.fileformat import DEFAULT_SOURCE, Step, Suite
from sandbox.suites.placeholders import RunValues, fill, is_reference
from sandbox.suites.variations import variants_of


@dataclass(frozen=True)
class Send:
    """One delivery of a run: a step's event, or one of its variants."""

    step: int  # the step's index in the suite
    event: dict
    variant: str = ""  # the variation's name; "" for the step's own event


def suite_events(
    suite: Suite, *, now: datetime, rng: random.Random | None = None
) -> tuple[list[dict], RunValues]:
    """One event per step, in the suite's order, and the values the run used."""
    values = RunValues(now=now, variables=dict(suite.variables))
    events = []
    for index, step in enumerate(suite.steps):
        if step.event is not None:
            event = fill(step.event, values)
            if not is_reference(step.event.get("messageId")):
                event["messageId"] = spec.fresh_message_id(event, now=now)
        else:
            event = spec.sample_event(
                step.type or "track",
                source=step.source or DEFAULT_SOURCE,
                template=step.template,
                now=now,
                rng=rng,
            )
            # One person through the whole run, as a real user's session.
            if event.get("userId"):
                event["userId"] = values.user_id
            if event.get("anonymousId"):
                event["anonymousId"] = values.anonymous_id
        message_id = event.get("messageId")
        values.message_ids.append(message_id if isinstance(message_id, str) else "")
        if step.id:
            values.step_ids[step.id] = index
        events.append(event)
    return events, values


def repeats_on_purpose(step: Step) -> bool:
    """A step that sends an earlier step's messageId again, or expects Segment
    to drop it as a repeat: a dedupe test, whose variants would test nothing."""
    if step.expect is not None and step.expect.deduplicated:
        return True
    return step.event is not None and is_reference(step.event.get("messageId"))


def suite_sends(
    suite: Suite, events: list[dict], *, order: list[int], seed: int | None = None
) -> list[Send]:
    """The run's deliveries in the order they go out: each step in the order
    given and, with a seed (a run with variations), its variants right after
    it, made from the event exactly as the step sends it."""
    sends = []
    for index in order:
        sends.append(Send(step=index, event=events[index]))
        if seed is None or repeats_on_purpose(suite.steps[index]):
            continue
        sends += [
            Send(step=index, event=variant, variant=name)
            for name, variant in variants_of(events[index], seed=seed)
        ]
    return sends
