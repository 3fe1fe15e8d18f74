"""App config for replay: historical events sent again to a subscription at scale."""

from django.apps import AppConfig


class ReplayConfig(AppConfig):
    name = "sandbox.replay"
    label = "replay"

    def ready(self) -> None:
        from sandbox.delivery import broadcast as delivery_broadcast
        from sandbox.replay import broadcast

        # A replay's page shows its rates, latency and ETA, pushed with the run's
        # progress (so coalesced with it).
        if broadcast.replay_progress_html not in delivery_broadcast.RUN_PUSH_EXTRAS:
            delivery_broadcast.RUN_PUSH_EXTRAS.append(broadcast.replay_progress_html)
