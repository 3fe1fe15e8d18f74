"""URLs for a function subscription's code page.

They are pages of a subscription, so sandbox.subscriptions.urls serves them in its
own namespace (`subscriptions:code`) under /subscriptions/<pk>/code/."""

from django.urls import path

from sandbox.functions import views

urlpatterns = [
    path("<id:pk>/code/", views.code_page, name="code"),
    path("<id:pk>/code/reset/", views.code_reset, name="code-reset"),
    path(
        "<id:pk>/code/versions/<id:number>/",
        views.version_page,
        name="code-version",
    ),
    path(
        "<id:pk>/code/versions/<id:number>/restore/",
        views.version_restore,
        name="code-restore",
    ),
]
