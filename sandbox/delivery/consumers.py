"""Websocket consumers: relay pushed HTML to the browser, nothing more."""

from channels.generic.websocket import AsyncWebsocketConsumer

from sandbox.delivery.broadcast import FEED_GROUP


class DeliveryFeedConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.channel_layer.group_add(FEED_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(FEED_GROUP, self.channel_name)

    async def feed_html(self, event: dict) -> None:
        await self.send(text_data=event["html"])
