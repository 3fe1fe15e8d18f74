"""Websocket consumers: relay pushed HTML to the browser, nothing more."""

from channels.generic.websocket import AsyncWebsocketConsumer

from sandbox.delivery import broadcast

# Above it no row can exist (SQLite's ids are signed 64-bit): a topic for such
# an id would only make the watcher's queries fail.
MAX_ID = 2**63 - 1
# A page's filters are a handful of fields; more is no page of ours.
MAX_QUERY_BYTES = 4096
MAX_QUERY_FIELDS = 50


class LiveConsumer(AsyncWebsocketConsumer):
    """One page's subscription to one topic; the route's pk says whose."""

    kind = ""
    topic: broadcast.Topic | None = None

    async def connect(self) -> None:
        topic = self.topic_of_route()
        if topic is None:
            # Nothing any page of ours watches: refused, never watched.
            await self.close()
            return
        self.topic = topic
        await broadcast.join(self.channel_layer, self.channel_name, self.topic)
        await self.accept()

    def topic_of_route(self) -> broadcast.Topic | None:
        pk = self.scope["url_route"]["kwargs"].get("pk")
        if pk is not None and not 0 <= pk <= MAX_ID:
            return None
        return broadcast.Topic(self.kind, pk)

    async def disconnect(self, code: int) -> None:
        if self.topic is not None:
            await broadcast.leave(self.channel_layer, self.channel_name, self.topic)

    async def live_html(self, event: dict) -> None:
        await self.send(text_data=event["html"])


class DeliveryFeedConsumer(LiveConsumer):
    kind = broadcast.FEED


class DeliveryDetailConsumer(LiveConsumer):
    kind = broadcast.DELIVERY_DETAIL


class RunProgressConsumer(LiveConsumer):
    kind = broadcast.RUN_PROGRESS


class HistoryConsumer(LiveConsumer):
    """The history's first page under the filters in the socket's query string."""

    kind = broadcast.HISTORY

    def topic_of_route(self) -> broadcast.Topic | None:
        raw = self.scope.get("query_string", b"")
        if len(raw) > MAX_QUERY_BYTES or raw.count(b"&") >= MAX_QUERY_FIELDS:
            return None
        return broadcast.history_topic(raw.decode("latin-1"))
