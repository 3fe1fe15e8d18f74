"""App config for the Event Tester screens."""

from django.apps import AppConfig


class TesterConfig(AppConfig):
    name = "sandbox.tester"
    label = "tester"
