"""Pages for suites: the list with import, a suite's file, a run's report."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from sandbox.delivery.selectors import run_progress
from sandbox.delivery.services import DeliveryRefused, Target
from sandbox.display import safe_text
from sandbox.suites import reports, selectors, services
from sandbox.suites.fileformat import FILE_SUFFIX, SuiteFileError
from sandbox.suites.forms import SuiteImportForm, SuiteRunForm
from sandbox.suites.models import SuiteRun

IMPORTED = "Suite “{name}” imported."
NO_SUCH_RUN = "No suite run #{pk}."


def _list_context(
    form: SuiteImportForm | None = None,
    problems: list[str] | None = None,
    run_form: SuiteRunForm | None = None,
) -> dict:
    _, broken = selectors.suite_directory()
    return {
        "suites": selectors.suite_list(),
        "broken": broken,
        "runs": SuiteRun.objects.all()[:20],
        "form": form or SuiteImportForm(),
        "problems": problems or [],
        "run_form": run_form or SuiteRunForm(),
    }


@require_GET
def suite_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "suites/suite_list.html", _list_context())


@require_POST
def suite_run_view(request: HttpRequest) -> HttpResponse:
    """Start a run; the server's engine sends it, the report reads it."""
    form = SuiteRunForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            found = selectors.suite_find(name=data["suite"])
            suite_run = services.suite_run_start(
                found=found,
                target=Target.of(data["subscription"]),
                concurrency=data["concurrency"],
                shuffle=data["shuffle"],
            )
        except (
            selectors.SuiteNotFound,
            services.SuiteRefused,
            DeliveryRefused,
        ) as refusal:
            form.add_error(None, safe_text(str(refusal)))
        else:
            return redirect("suites:run-report", pk=suite_run.pk)
    context = _list_context(run_form=form)
    return render(request, "suites/suite_list.html", context, status=400)


@require_POST
def suite_import_view(request: HttpRequest) -> HttpResponse:
    form = SuiteImportForm(request.POST)
    problems: list[str] = []
    if form.is_valid():
        try:
            stored = services.suite_import(
                text=form.cleaned_data["text"], replace=form.cleaned_data["replace"]
            )
        except SuiteFileError as error:
            problems = error.problems
        except services.SuiteRefused as refusal:
            problems = [str(refusal)]
        else:
            messages.success(request, IMPORTED.format(name=stored.name))
            return redirect("suites:list")
    context = _list_context(form, [safe_text(p) for p in problems])
    return render(request, "suites/suite_list.html", context, status=400)


@require_GET
def suite_export_view(request: HttpRequest) -> HttpResponse:
    try:
        found = selectors.suite_find(name=request.GET.get("name", ""))
    except selectors.SuiteNotFound as error:
        raise Http404(str(error)) from None
    text = services.suite_export(suite=found.suite)
    response = HttpResponse(text, content_type="application/json; charset=utf-8")
    filename = "".join(c if c.isalnum() else "-" for c in found.suite.name)
    response["Content-Disposition"] = (
        f'attachment; filename="{filename.strip("-") or "suite"}{FILE_SUFFIX}"'
    )
    return response


@require_GET
def suite_run_report_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The reviewer's report: every step, request and response (keys masked)."""
    try:
        suite_run = selectors.suite_run_get(pk=pk)
    except SuiteRun.DoesNotExist:
        raise Http404(NO_SUCH_RUN.format(pk=pk)) from None
    if suite_run.passed is None:
        suite_run = services.suite_run_finish_if_settled(suite_run=suite_run)
    if suite_run.passed is None and not request.GET.get("download"):
        # Still running: its progress, live; the report once it has settled.
        progress = run_progress(run_id=suite_run.run_id)
        return render(
            request,
            "suites/suiterun_running.html",
            {"suite_run": suite_run, "progress": progress},
        )
    response = HttpResponse(
        reports.html_report(
            suite_run=suite_run,
            api_key=selectors.suite_run_api_key(suite_run=suite_run),
        )
    )
    if request.GET.get("download"):
        # One file for the reviewer: the same page, inline CSS and no scripts.
        name = "".join(c if c.isalnum() else "-" for c in suite_run.suite_name)
        response["Content-Disposition"] = (
            f'attachment; filename="{name.strip("-") or "suite"}-run-{pk}.html"'
        )
    return response
