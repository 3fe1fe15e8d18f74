"""Routes for the suite pages: the list, import, export, a run's report."""

from django.urls import path

from sandbox.suites import views

app_name = "suites"

urlpatterns = [
    path("suites/", views.suite_list_view, name="list"),
    path("suites/import/", views.suite_import_view, name="import"),
    path("suites/run/", views.suite_run_view, name="run"),
    path("suites/export/", views.suite_export_view, name="export"),
    path("suites/runs/<id:pk>/", views.suite_run_report_view, name="run-report"),
    # A stored suite's page is at its id, so a rename keeps its address; the
    # built-in suite and suite files (read-only) are at their name.
    path("suites/<id:pk>/", views.suite_detail_view, name="detail"),
    path("suites/named/", views.suite_named_view, name="named"),
    path("suites/<id:pk>/rename/", views.suite_rename_view, name="rename"),
    path("suites/<id:pk>/delete/", views.suite_delete_view, name="delete"),
    path("suites/duplicate/", views.suite_duplicate_view, name="duplicate"),
    path(
        "suites/<id:pk>/steps/<id:number>/",
        views.suite_step_edit_view,
        name="step-edit",
    ),
    path(
        "suites/<id:pk>/steps/<id:number>/move/",
        views.suite_step_move_view,
        name="step-move",
    ),
    path(
        "suites/<id:pk>/steps/<id:number>/delete/",
        views.suite_step_delete_view,
        name="step-delete",
    ),
    path("suites/add/", views.suite_add_view, name="add"),
    path("suites/add/step/", views.suite_add_step_view, name="add-step"),
]
