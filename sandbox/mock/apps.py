"""App config for the built-in mock endpoint."""

from django.apps import AppConfig


class MockConfig(AppConfig):
    name = "sandbox.mock"
    label = "mock"
