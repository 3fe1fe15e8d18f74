"""App config for server: the `runserver` that serves first and delivers second."""

from django.apps import AppConfig


class ServerConfig(AppConfig):
    name = "sandbox.server"
    label = "server"
