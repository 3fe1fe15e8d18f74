"""The source debugger's live list: events appear as their requests are read.

A page watches one source's events (key: the source's id; 0 for the events whose
write key no source has). The expander calls events_stored on commit; the live
watcher renders the new rows for the pages that watch them (see
sandbox.delivery.broadcast.LIST_RENDERERS).
"""

from collections import defaultdict

from django.template.loader import render_to_string

from sandbox.delivery import broadcast
from sandbox.sources import selectors

SOURCE_EVENTS = "source-events"
EVENT_ROW_TEMPLATE = "sources/source_detail.html#source-event"
# The key of the debugger of events no source owns.
UNKNOWN = 0


def events_stored(events: list[tuple[int | None, int]]) -> None:
    """(source id or None, ingested event id) of events just committed."""
    by_source: dict[int, list[int]] = defaultdict(list)
    for source_id, event_id in events:
        by_source[source_id or UNKNOWN].append(event_id)
    for key, ids in by_source.items():
        broadcast.list_items_added(kind=SOURCE_EVENTS, key=key, ids=ids)


def render_event_rows(key: object, ids: list[int]) -> str:
    """The rows of these events, as the debugger renders them, newest first."""
    events = selectors.ingested_events_by_ids(
        source_id=None if key == UNKNOWN else key, ids=ids
    )
    return "\n".join(
        render_to_string(EVENT_ROW_TEMPLATE, {"event": event}).strip()
        for event in events
    )


broadcast.LIST_RENDERERS[SOURCE_EVENTS] = render_event_rows
