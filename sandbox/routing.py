"""Websocket routes, open only to pages this server served (see sandbox.origin)."""

from channels.routing import URLRouter
from django.urls import path

from sandbox.delivery.consumers import DeliveryFeedConsumer
from sandbox.origin import SameOriginValidator

websocket_urlpatterns = [
    path("ws/deliveries/", DeliveryFeedConsumer.as_asgi()),
]

websocket_application = SameOriginValidator(URLRouter(websocket_urlpatterns))
