"""URLs for history and deliveries."""

from django.urls import path

from sandbox.delivery import views

app_name = "delivery"

urlpatterns = [
    path("history/", views.history, name="history"),
    path("deliveries/<int:pk>/", views.detail, name="detail"),
    path("deliveries/<int:pk>/resend/", views.resend, name="resend"),
    path(
        "deliveries/<int:pk>/attempts/<int:number>/curl/",
        views.curl,
        name="curl",
    ),
]
