"""Routes for sources' pages and analytics.js's CDN paths (the tracking API's
POST paths are answered ahead of Django: sandbox.sources.api)."""

from django.urls import path

from sandbox.sources import views

app_name = "sources"

urlpatterns = [
    path(
        "v1/projects/<path:write_key>/settings",
        views.sdk_settings_view,
        name="sdk-settings",
    ),
    path(
        "analytics-next/bundles/<str:name>",
        views.sdk_bundle_view,
        name="sdk-bundle",
    ),
    path("sources/", views.source_list_view, name="list"),
    path("sources/new/", views.source_create_view, name="create"),
    path("sources/try/", views.try_sdk_view, name="try-sdk"),
    path("sources/unknown/", views.source_unknown_view, name="unknown"),
    path("sources/events/<id:pk>/", views.ingested_event_view, name="event"),
    path("sources/<id:pk>/", views.source_detail_view, name="detail"),
    path("sources/<id:pk>/edit/", views.source_edit_view, name="edit"),
    path("sources/<id:pk>/delete/", views.source_delete_view, name="delete"),
    path("sources/<id:pk>/key/", views.source_reveal_key_view, name="reveal-key"),
]
