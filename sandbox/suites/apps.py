"""App config for suites: named lists of events with expectations, and their runs."""

from django.apps import AppConfig


class SuitesConfig(AppConfig):
    name = "sandbox.suites"
    label = "suites"

    def ready(self) -> None:
        from sandbox.delivery import broadcast as delivery_broadcast
        from sandbox.suites import broadcast

        # A suite run's page shows its step table filling in, pushed with the
        # run's progress.
        if broadcast.run_steps_html not in delivery_broadcast.RUN_PUSH_EXTRAS:
            delivery_broadcast.RUN_PUSH_EXTRAS.append(broadcast.run_steps_html)
