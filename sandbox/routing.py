"""Websocket routes, behind the same origin check the server uses."""

from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from sandbox.delivery.consumers import DeliveryFeedConsumer

websocket_urlpatterns = [
    path("ws/deliveries/", DeliveryFeedConsumer.as_asgi()),
]

# Browsers send Origin on websockets; only pages served from ALLOWED_HOSTS may listen.
websocket_application = AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns))
