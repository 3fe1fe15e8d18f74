"""URL wiring: each app owns its own urls.py and namespace."""

from django.urls import include, path

from sandbox import converters  # noqa: F401 - registers <id:...>

urlpatterns = [
    path("", include("sandbox.tester.urls")),
    path("", include("sandbox.delivery.urls")),
    path("subscriptions/", include("sandbox.subscriptions.urls")),
    path("", include("sandbox.mock.urls")),
    path("", include("sandbox.suites.urls")),
    path("", include("sandbox.sources.urls")),
    path("", include("sandbox.replay.urls")),
]
