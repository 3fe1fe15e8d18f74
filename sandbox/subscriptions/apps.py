"""App config for subscriptions: the partner endpoints the sandbox delivers to."""

from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "sandbox.subscriptions"
    label = "subscriptions"
