"""What Segment's pipeline does to an event on its way to a subscription."""

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sandbox.spec.constants import (
    BROWSER_LIBRARIES,
    MOBILE_LIBRARIES,
    SANDBOX_PROJECT_ID,
    TRACKING_API_VERSION,
)
from sandbox.spec.timestamps import (
    as_utc,
    format_go_time,
    format_timestamp,
    is_go_time,
    parse_go_time,
    parse_timestamp,
)


class NormalisedEvent(dict):
    """An event as Segment delivers it, which remembers the event it was made from.

    as_sent is what the client sent: Segment's limits (the 32 KB) apply to it, not
    to the fields Segment's pipeline adds on the way. It is the same object that
    was given to normalise(). Stored and encoded, this is a plain JSON object.
    """

    as_sent: object


def normalise(
    event: dict,
    *,
    now: datetime,
    fresh: bool = False,
    new_message_id: Callable[[], str] | None = None,
    project_id: str = SANDBOX_PROJECT_ID,
) -> dict:
    """Return a new event as Segment would deliver it had it arrived at now.

    As segment-reference.md section 1.1: receivedAt is now; timestamp is
    Segment's, receivedAt - (sentAt - originalTimestamp), and originalTimestamp
    the client's time; a missing messageId is made; projectId (the source),
    channel and version are added when the client sent none. Everything else
    stays as the client sent it. fresh=True makes it a new event (new messageId,
    times re-based on now) for "resend as new". Values that don't parse are left
    alone: the user may be sending an invalid event on purpose. The copy is
    shallow; nested objects are shared with the input and not modified.
    """
    if not isinstance(event, dict):
        return event
    received = as_utc(now)
    is_delete = event.get("type") == "delete"
    result = NormalisedEvent(event)
    result.as_sent = event
    if fresh or not isinstance(event.get("messageId"), str):
        make_id = new_message_id or (_delete_message_id if is_delete else _message_id)
        result["messageId"] = make_id()
    result["receivedAt"] = format_timestamp(received)
    if is_delete:
        result.update(_delete_times(event, received, fresh))
    else:
        result.update(_times(event, received, fresh))
    if "projectId" not in event:
        result["projectId"] = project_id
    if "channel" not in event:
        # Segment's own delete messages come from its servers.
        result["channel"] = "server" if is_delete else _channel(event)
    if "version" not in event and not is_delete:
        # Both documented delete messages go without a version.
        result["version"] = TRACKING_API_VERSION
    return result


def _channel(event: dict) -> str:
    """The channel Segment gives an event, by the library that sent it."""
    context = event.get("context")
    library = context.get("library") if isinstance(context, dict) else None
    name = library.get("name") if isinstance(library, dict) else None
    if not isinstance(name, str):
        return "server"
    if name in BROWSER_LIBRARIES:
        return "client"
    if name in MOBILE_LIBRARIES:
        return "mobile"
    return "server"


def _message_id() -> str:
    return str(uuid.uuid4())


def _delete_message_id() -> str:
    # Segment's delete messageIds all start with "delete-".
    return f"delete-{uuid.uuid4()}"


def _client_time(event: dict) -> object:
    # A manually set timestamp is the client time when there is no originalTimestamp.
    original = event.get("originalTimestamp")
    return event.get("timestamp") if original is None else original


def _times(event: dict, received: datetime, fresh: bool) -> dict[str, object]:
    original_value = _client_time(event)
    original = parse_timestamp(original_value)
    sent = parse_timestamp(event.get("sentAt"))
    if fresh:
        return _rebased(event, received, original_value, original, sent)
    if original_value is None:
        # No client time at all: Segment's own clock is the event time, so no skew.
        now_text = format_timestamp(received)
        return {"originalTimestamp": now_text, "timestamp": now_text}
    times: dict[str, object] = {"originalTimestamp": original_value}
    corrected = _shifted(received, sent - original) if original and sent else None
    if corrected is not None:
        times["timestamp"] = corrected
    elif event.get("timestamp") is None:
        # Without sentAt there is no skew to correct, so the client time stands.
        times["timestamp"] = original_value
    return times


def _rebased(
    event: dict,
    received: datetime,
    original_value: object,
    original: datetime | None,
    sent: datetime | None,
) -> dict[str, object]:
    # Keep the event's send delay, so a resent event tells the same story today.
    delay = (
        sent - original if original is not None and sent is not None else timedelta(0)
    )
    times: dict[str, object] = {}
    if sent is not None:
        times["sentAt"] = format_timestamp(received)
    if original_value is not None and original is None:
        # A deliberately broken originalTimestamp stays broken on a resend.
        if event.get("timestamp") is None:
            times["timestamp"] = format_timestamp(received)
        return times
    new_original = _shifted(received, delay) or format_timestamp(received)
    times.update(originalTimestamp=new_original, timestamp=new_original)
    return times


def _shifted(moment: datetime, back: timedelta) -> str | None:
    """moment - back as Segment's text, or None when it falls off the calendar
    (a timestamp in year 1 with a sentAt in 9999): the validator says why."""
    try:
        return format_timestamp(moment - back)
    except OverflowError:
        return None


def _parse_any(value: object) -> datetime | None:
    return parse_timestamp(value) or parse_go_time(value)


def _delete_times(event: dict, received: datetime, fresh: bool) -> dict[str, object]:
    # Segment's delete messages skip the skew correction: both documented examples
    # have timestamp == receivedAt, while sentAt (when the deletion was requested) is
    # hours earlier. Applying the formula would put the deletion in the future.
    times: dict[str, object] = {"timestamp": format_timestamp(received)}
    original_value = _client_time(event)
    if not fresh:
        times["originalTimestamp"] = (
            format_timestamp(received) if original_value is None else original_value
        )
        return times
    original = _parse_any(original_value)
    sent = _parse_any(event.get("sentAt"))
    if original_value is None or original is not None:
        # Keep Go's time.String() form when that is what the event had.
        times["originalTimestamp"] = (
            format_go_time(received)
            if is_go_time(original_value)
            else format_timestamp(received)
        )
    if sent is not None:
        lead = original - sent if original is not None else timedelta(0)
        times["sentAt"] = _shifted(received, lead) or format_timestamp(received)
    return times
