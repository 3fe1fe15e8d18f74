"""Websocket consumers: relay pushed HTML to the browser, nothing more."""

from channels.generic.websocket import AsyncWebsocketConsumer

from sandbox.delivery import broadcast


class LiveConsumer(AsyncWebsocketConsumer):
    """One page's subscription to one topic; the route's pk says whose."""

    kind = ""
    topic: broadcast.Topic | None = None

    async def connect(self) -> None:
        key = self.scope["url_route"]["kwargs"].get("pk")
        self.topic = broadcast.Topic(self.kind, key)
        await broadcast.join(self.channel_layer, self.channel_name, self.topic)
        await self.accept()

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
