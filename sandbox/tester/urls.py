"""URLs for the Event Tester."""

from django.urls import path

from sandbox.tester import views

app_name = "tester"

urlpatterns = [
    path("", views.home, name="home"),
    path("sample/", views.sample, name="sample"),
    path("validate/", views.validate, name="validate"),
    path("send/", views.send, name="send"),
]
