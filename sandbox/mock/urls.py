"""Routes for the mock endpoint pages and the mock endpoint itself."""

from django.urls import path

from sandbox.mock import views

app_name = "mock"

urlpatterns = [
    path("mocks/", views.mock_endpoint_list_view, name="list"),
    path("mocks/new/", views.mock_endpoint_create_view, name="create"),
    path("mocks/<slug:slug>/", views.mock_endpoint_detail_view, name="detail"),
    path("mocks/<slug:slug>/edit/", views.mock_endpoint_edit_view, name="edit"),
    path("mocks/<slug:slug>/delete/", views.mock_endpoint_delete_view, name="delete"),
    path("mocks/<slug:slug>/clear/", views.mock_requests_clear_view, name="clear"),
    path(
        "mocks/<slug:slug>/key/", views.mock_endpoint_reveal_key_view, name="reveal-key"
    ),
    path("mock/<slug:slug>/", views.mock_receive_view, name="receive"),
    # A URL pasted without its slash would otherwise meet APPEND_SLASH, which cannot
    # redirect a POST.
    path("mock/<slug:slug>", views.mock_receive_view),
]
