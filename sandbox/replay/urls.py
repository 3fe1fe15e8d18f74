"""Routes for replays: the list with the start form, a replay's page, its
controls, its delete."""

from django.urls import path

from sandbox.replay import views

app_name = "replay"

urlpatterns = [
    path("replays/", views.replay_list_view, name="list"),
    path("replays/start/", views.replay_start_view, name="start"),
    path("replays/<int:pk>/", views.replay_detail_view, name="detail"),
    path("replays/<int:pk>/pause/", views.replay_pause_view, name="pause"),
    path("replays/<int:pk>/resume/", views.replay_resume_view, name="resume"),
    path("replays/<int:pk>/cancel/", views.replay_cancel_view, name="cancel"),
    path("replays/<int:pk>/delete/", views.replay_delete_view, name="delete"),
    path("replays/readiness/", views.readiness_start_view, name="readiness-start"),
    path(
        "replays/readiness/<int:pk>/",
        views.readiness_detail_view,
        name="readiness-detail",
    ),
    path(
        "replays/readiness/<int:pk>/download/",
        views.readiness_download_view,
        name="readiness-download",
    ),
]
