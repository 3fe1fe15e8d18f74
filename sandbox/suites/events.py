"""The events one run of a suite sends: placeholders filled, samples made, a new
messageId for every step but a deliberate repeat (pure: no Django)."""

import random
from datetime import datetime

from sandbox import spec
from sandbox.suites.fileformat import DEFAULT_SOURCE, Suite
from sandbox.suites.placeholders import RunValues, fill, is_reference


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
