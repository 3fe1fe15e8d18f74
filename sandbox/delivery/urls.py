"""URLs for history and deliveries."""

from django.urls import path

from sandbox.delivery import views

app_name = "delivery"

urlpatterns = [
    path("history/", views.history, name="history"),
    path("deliveries/feed/", views.feed, name="feed"),
    path("deliveries/<int:pk>/", views.detail, name="detail"),
    path("deliveries/<int:pk>/resend/", views.resend, name="resend"),
    path("deliveries/<int:pk>/retry-now/", views.retry_now, name="retry-now"),
    path("deliveries/<int:pk>/stop/", views.stop, name="stop"),
    path("deliveries/<int:pk>/delete/", views.delete, name="delete"),
    path(
        "deliveries/<int:pk>/attempts/<int:number>/curl/",
        views.curl,
        name="curl",
    ),
]
