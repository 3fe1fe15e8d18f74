"""Routes for the suite pages: the list, import, export, a run's report."""

from django.urls import path

from sandbox.suites import views

app_name = "suites"

urlpatterns = [
    path("suites/", views.suite_list_view, name="list"),
    path("suites/import/", views.suite_import_view, name="import"),
    path("suites/run/", views.suite_run_view, name="run"),
    path("suites/export/", views.suite_export_view, name="export"),
    path("suites/runs/<int:pk>/", views.suite_run_report_view, name="run-report"),
]
