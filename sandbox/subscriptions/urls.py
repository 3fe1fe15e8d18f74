"""URLs for the subscription pages."""

from django.urls import path

from sandbox.functions import urls as function_urls
from sandbox.subscriptions import views

app_name = "subscriptions"

urlpatterns = [
    path("", views.list_page, name="list"),
    path("new/", views.create_page, name="create"),
    path("<int:pk>/", views.detail_page, name="detail"),
    path("<int:pk>/edit/", views.edit_page, name="edit"),
    path("<int:pk>/disable/", views.disable, name="disable"),
    path("<int:pk>/enable/", views.enable, name="enable"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    path("<int:pk>/key/", views.reveal_key, name="reveal-key"),
    # A function's code page is one of its subscription's pages.
    *function_urls.urlpatterns,
]
