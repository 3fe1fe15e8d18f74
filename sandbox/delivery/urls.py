"""URLs for history and deliveries."""

from django.urls import path

from sandbox.delivery import views

app_name = "delivery"

urlpatterns = [
    path("history/", views.history, name="history"),
    path("deliveries/feed/", views.feed, name="feed"),
    path("deliveries/<id:pk>/", views.detail, name="detail"),
    path("deliveries/<id:pk>/resend/", views.resend, name="resend"),
    path("deliveries/<id:pk>/retry-now/", views.retry_now, name="retry-now"),
    path("deliveries/<id:pk>/stop/", views.stop, name="stop"),
    path("deliveries/<id:pk>/delete/", views.delete, name="delete"),
    path(
        "deliveries/<id:pk>/attempts/<id:number>/curl/",
        views.curl,
        name="curl",
    ),
]
