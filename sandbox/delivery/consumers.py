"""Websocket consumers: relay pushed HTML to the browser, nothing more."""

from channels.generic.websocket import AsyncWebsocketConsumer

from sandbox.delivery import broadcast


class LiveConsumer(AsyncWebsocketConsumer):
    """One page's subscription to one topic; the route's pk says whose."""

    kind = ""
    topic: broadcast.Topic | None = None

    async def connect(self) -> None:
        self.topic = self.topic_of_route()
        await broadcast.join(self.channel_layer, self.channel_name, self.topic)
        await self.accept()

    def topic_of_route(self) -> broadcast.Topic:
        return broadcast.Topic(self.kind, self.scope["url_route"]["kwargs"].get("pk"))

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

    def topic_of_route(self) -> broadcast.Topic:
        query = self.scope.get("query_string", b"").decode("latin-1")
        return broadcast.history_topic(query)
