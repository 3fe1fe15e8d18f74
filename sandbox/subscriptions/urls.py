"""URLs for the subscription pages."""

from django.urls import path

from sandbox.functions import urls as function_urls
from sandbox.subscriptions import views

app_name = "subscriptions"

urlpatterns = [
    path("", views.list_page, name="list"),
    path("new/", views.create_page, name="create"),
    path("<id:pk>/", views.detail_page, name="detail"),
    path("<id:pk>/edit/", views.edit_page, name="edit"),
    path("<id:pk>/disable/", views.disable, name="disable"),
    path("<id:pk>/enable/", views.enable, name="enable"),
    path("<id:pk>/delete/", views.delete, name="delete"),
    path("<id:pk>/key/", views.reveal_key, name="reveal-key"),
    # A function's code page is one of its subscription's pages.
    *function_urls.urlpatterns,
]
