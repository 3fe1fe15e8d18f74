"""App config for delivery: deliveries, attempts, the engine and live updates."""

from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "sandbox.delivery"
    label = "delivery"
