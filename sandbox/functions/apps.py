"""App config for functions: JavaScript subscription functions the sandbox runs."""

from django.apps import AppConfig


class FunctionsConfig(AppConfig):
    name = "sandbox.functions"
    label = "functions"

    def ready(self) -> None:
        # The engine sends to function targets through this kind's sender.
        from sandbox.functions import sender

        sender.register()
