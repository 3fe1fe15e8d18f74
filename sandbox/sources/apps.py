"""App config for sources: Segment's HTTP Tracking API and the sources it serves."""

from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "sandbox.sources"
    label = "sources"

    def ready(self) -> None:
        # The source debugger's live list registers its renderer.
        from sandbox.sources import broadcast  # noqa: F401
