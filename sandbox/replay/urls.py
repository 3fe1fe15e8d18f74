"""Routes for replays: the list with the start form, a replay's page, its
controls, its delete."""

from django.urls import path

from sandbox.replay import views

app_name = "replay"

urlpatterns = [
    path("replays/", views.replay_list_view, name="list"),
    path("replays/start/", views.replay_start_view, name="start"),
    path("replays/<id:pk>/", views.replay_detail_view, name="detail"),
    path("replays/<id:pk>/pause/", views.replay_pause_view, name="pause"),
    path("replays/<id:pk>/resume/", views.replay_resume_view, name="resume"),
    path("replays/<id:pk>/cancel/", views.replay_cancel_view, name="cancel"),
    path("replays/<id:pk>/delete/", views.replay_delete_view, name="delete"),
    path("replays/readiness/", views.readiness_start_view, name="readiness-start"),
    path(
        "replays/readiness/<id:pk>/",
        views.readiness_detail_view,
        name="readiness-detail",
    ),
    path(
        "replays/readiness/<id:pk>/download/",
        views.readiness_download_view,
        name="readiness-download",
    ),
]
