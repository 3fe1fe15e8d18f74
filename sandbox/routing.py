"""Websocket routes, open only to pages this server served (see sandbox.origin)."""

from channels.routing import URLRouter
from django.urls import path

from sandbox import converters  # noqa: F401 - registers <id:...>
from sandbox.delivery.consumers import (
    DeliveryDetailConsumer,
    DeliveryFeedConsumer,
    HistoryConsumer,
    RunProgressConsumer,
)
from sandbox.mock.consumers import MockRequestsConsumer
from sandbox.origin import SameOriginValidator
from sandbox.sources.consumers import SourceEventsConsumer

websocket_urlpatterns = [
    path("ws/deliveries/", DeliveryFeedConsumer.as_asgi()),
    path("ws/deliveries/<id:pk>/", DeliveryDetailConsumer.as_asgi()),
    path("ws/runs/<id:pk>/", RunProgressConsumer.as_asgi()),
    path("ws/history/", HistoryConsumer.as_asgi()),
    path("ws/mocks/<id:pk>/", MockRequestsConsumer.as_asgi()),
    path("ws/sources/<id:pk>/", SourceEventsConsumer.as_asgi()),
]


class UnknownAddressesClosed:
    """A socket to an address that is no page's (an unknown path, an id no row
    can have) is refused as the socket opens, not left to raise."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        try:
            return await self.app(scope, receive, send)
        except ValueError as error:
            if scope["type"] != "websocket" or not str(error).startswith(
                "No route found"
            ):
                raise
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 4404})


websocket_application = SameOriginValidator(
    UnknownAddressesClosed(URLRouter(websocket_urlpatterns))
)
