"""Websocket consumers for sources: relay pushed HTML to the browser, nothing more."""

from sandbox.delivery.consumers import LiveConsumer
from sandbox.sources.broadcast import SOURCE_EVENTS


class SourceEventsConsumer(LiveConsumer):
    """A source debugger: its source's events as they arrive (pk 0: unknown keys)."""

    kind = SOURCE_EVENTS
