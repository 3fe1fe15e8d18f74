"""Websocket routes, open only to pages this server served (see sandbox.origin)."""

from channels.routing import URLRouter
from django.urls import path

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
    path("ws/deliveries/<int:pk>/", DeliveryDetailConsumer.as_asgi()),
    path("ws/runs/<int:pk>/", RunProgressConsumer.as_asgi()),
    path("ws/history/", HistoryConsumer.as_asgi()),
    path("ws/mocks/<int:pk>/", MockRequestsConsumer.as_asgi()),
    path("ws/sources/<int:pk>/", SourceEventsConsumer.as_asgi()),
]

websocket_application = SameOriginValidator(URLRouter(websocket_urlpatterns))
