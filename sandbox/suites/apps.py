"""App config for suites: named lists of events with expectations, and their runs."""

from django.apps import AppConfig


class SuitesConfig(AppConfig):
    name = "sandbox.suites"
    label = "suites"
