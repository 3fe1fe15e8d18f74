"""URLs for a function subscription's code page.

They are pages of a subscription, so sandbox.subscriptions.urls serves them in its
own namespace (`subscriptions:code`) under /subscriptions/<pk>/code/."""

from django.urls import path

from sandbox.functions import views

urlpatterns = [
    path("<int:pk>/code/", views.code_page, name="code"),
    path("<int:pk>/code/reset/", views.code_reset, name="code-reset"),
    path(
        "<int:pk>/code/versions/<int:number>/",
        views.version_page,
        name="code-version",
    ),
    path(
        "<int:pk>/code/versions/<int:number>/restore/",
        views.version_restore,
        name="code-restore",
    ),
]
