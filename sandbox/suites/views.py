"""Pages for suites: the list with import, a suite's file, a run's report."""

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
)
from django_htmx.http import HttpResponseClientRedirect

from sandbox import spec
from sandbox.delivery.models import Delivery
from sandbox.delivery.selectors import delivery_get, run_progress
from sandbox.delivery.services import DeliveryRefused, Target
from sandbox.display import indent_json, safe_text
from sandbox.suites import broadcast, fileformat, reports, results, selectors, services
from sandbox.suites.fileformat import FILE_SUFFIX, SuiteFileError
from sandbox.suites.forms import (
    SuiteAddStepForm,
    SuiteDeleteForm,
    SuiteImportForm,
    SuiteNameForm,
    SuiteRunForm,
    SuiteStepForm,
)
from sandbox.suites.models import Suite as StoredSuite
from sandbox.suites.models import SuiteRun

IMPORTED = "Suite “{name}” imported."
NO_SUCH_RUN = "No suite run #{pk}."


def _list_context(
    form: SuiteImportForm | None = None,
    problems: list[str] | None = None,
    run_form: SuiteRunForm | None = None,
) -> dict:
    _, broken = selectors.suite_directory()
    # A run started here and never opened is read once it has settled.
    services.suite_runs_finish_settled()
    return {
        "suites": selectors.suite_list(),
        "broken": broken,
        "runs": selectors.suite_run_list(),
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
                duplicate_rate=data["duplicate_rate"] or 0.0,
                jitter_ms=data["jitter_ms"] or 0,
                variations=data["variations"],
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
    form = SuiteImportForm(request.POST, request.FILES)
    problems: list[str] = []
    if form.is_valid():
        try:
            stored = services.suite_import(
                text=form.file_text(), replace=form.cleaned_data["replace"]
            )
        except SuiteFileError as error:
            problems = error.problems
        except ValueError as refusal:
            # Too large, not UTF-8, given twice, or a name already taken.
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
    response["Content-Disposition"] = content_disposition_header(
        True, f"{filename.strip('-') or 'suite'}{FILE_SUFFIX}"
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
        context = broadcast.running_context(suite_run=suite_run)
        return render(
            request,
            "suites/suiterun_running.html",
            {**context, "progress": progress},
        )
    api_key = selectors.suite_run_api_key(suite_run=suite_run)
    if not request.GET.get("download"):
        return HttpResponse(
            reports.html_report_page(
                suite_run=suite_run, api_key=api_key, request=request
            )
        )
    # One file for the reviewer: the same report, inline CSS and no scripts.
    response = HttpResponse(reports.html_report(suite_run=suite_run, api_key=api_key))
    name = "".join(c if c.isalnum() else "-" for c in suite_run.suite_name)
    response["Content-Disposition"] = content_disposition_header(
        True, f"{name.strip('-') or 'suite'}-run-{pk}.html"
    )
    return response


DETAIL_TEMPLATE = "suites/suite_detail.html"
STEP_TEMPLATE = "suites/suite_step_form.html"
ADD_TEMPLATE = "suites/suite_add.html"
DELETE_TEMPLATE = "suites/suite_confirm_delete.html"

NO_SUCH_SUITE = "No stored suite #{pk}."
RENAMED = "Renamed the suite to “{name}”."
DUPLICATED = "Duplicated as “{name}”: this copy is stored, and yours to edit."
DELETED = "Deleted suite “{name}”."
STEP_SAVED = "Saved step {number}."
STEP_DELETED = "Deleted step {number}."
STEP_MOVED = "Moved step {number} {direction}."
STEP_ADDED = "Added step {number} to {link}."
CHOOSE_A_SUITE = "Choose a suite, or give a new one a name."
NOT_STORED = "No stored suite named “{name}”: choose one from the list."
NO_SUCH_DELIVERY = "Delivery #{pk} is no longer in history."
NOT_AN_OBJECT = "The event must be a JSON object, as the editor's checks say."
# What a move's direction means for the step's place in the list.
OFFSETS = {"up": -1, "down": 1}


def suite_url(found: selectors.FoundSuite) -> str:
    """A stored suite's page by its id (it survives a rename); others by name."""
    if found.stored is not None:
        return reverse("suites:detail", args=[found.stored.pk])
    return f"{reverse('suites:named')}?{urlencode({'name': found.suite.name})}"


def _stored_or_404(pk: int) -> selectors.FoundSuite:
    try:
        return selectors.suite_stored_found(pk=pk)
    except StoredSuite.DoesNotExist:
        raise Http404(NO_SUCH_SUITE.format(pk=pk)) from None


def _detail_context(found: selectors.FoundSuite, **extra) -> dict:
    # A run started from here and never opened is read once it has settled.
    services.suite_runs_finish_settled()
    runs = selectors.suite_run_history(found=found)
    for suite_run in runs:
        suite_run.changes_since = [
            change
            for result in suite_run.results
            if isinstance(result, dict)
            for change in result.get("changes", [])
        ]
    steps = [
        {
            "number": number,
            "label": step.label(),
            "sends": _sends(step),
            "expected": results.describe_expectation(step.expect),
            "event_json": indent_json(step.event) if step.event is not None else "",
            "id": step.id,
        }
        for number, step in enumerate(found.suite.steps, start=1)
    ]
    return {
        "found": found,
        "suite": found.suite,
        "editable": found.stored is not None,
        "steps": steps,
        "variables": [
            (name, indent_json(value)) for name, value in found.suite.variables.items()
        ],
        "runs": runs,
        "last_good": next((run for run in runs if run.passed), None),
        "run_form": SuiteRunForm(initial={"suite": found.suite.name}),
        "name_form": SuiteNameForm(initial={"name": found.suite.name}),
        "duplicate_form": SuiteNameForm(initial={"name": f"{found.suite.name} copy"}),
        **extra,
    }


def _sends(step: fileformat.Step) -> str:
    if step.event is not None:
        kind = step.event.get("type")
        return f"{kind} event" if isinstance(kind, str) and kind else "event"
    if step.template:
        return f"track sample: {step.template}"
    source = f" from {step.source}" if step.source else ""
    return f"{step.type} sample{source}"


def _detail_page(
    request: HttpRequest, found: selectors.FoundSuite, status: int = 200, **extra
) -> HttpResponse:
    context = _detail_context(found, **extra)
    return render(request, DETAIL_TEMPLATE, context, status=status)


@require_GET
def suite_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, _stored_or_404(pk))


@require_GET
def suite_named_view(request: HttpRequest) -> HttpResponse:
    """Any suite by name: a stored one is at its own address."""
    try:
        found = selectors.suite_find(name=request.GET.get("name", ""))
    except selectors.SuiteNotFound as error:
        raise Http404(str(error)) from None
    if found.stored is not None:
        return redirect(suite_url(found))
    return _detail_page(request, found)


def _problems(error: Exception) -> list[str]:
    if isinstance(error, SuiteFileError):
        return [safe_text(problem) for problem in error.problems]
    return [safe_text(str(error))]


def _name(form: SuiteNameForm) -> str:
    """The name asked for; what the form itself refuses is refused in its words."""
    if not form.is_valid():
        raise services.SuiteRefused(f"name: {form.errors['name'][0]}")
    return form.cleaned_data["name"]


@require_POST
def suite_rename_view(request: HttpRequest, pk: int) -> HttpResponse:
    found = _stored_or_404(pk)
    form = SuiteNameForm(request.POST)
    try:
        stored = services.suite_rename(stored=found.stored, name=_name(form))
    except (SuiteFileError, services.SuiteRefused) as error:
        return _detail_page(
            request, found, 400, name_form=form, rename_problems=_problems(error)
        )
    messages.success(request, RENAMED.format(name=stored.name))
    return redirect("suites:detail", pk=stored.pk)


@require_POST
def suite_duplicate_view(request: HttpRequest) -> HttpResponse:
    """A stored copy of any suite, under a name no suite has."""
    try:
        found = selectors.suite_find(name=request.POST.get("suite", ""))
    except selectors.SuiteNotFound as error:
        raise Http404(str(error)) from None
    form = SuiteNameForm(request.POST)
    try:
        stored = services.suite_duplicate(found=found, name=_name(form))
    except (SuiteFileError, services.SuiteRefused) as error:
        return _detail_page(
            request,
            found,
            400,
            duplicate_form=form,
            duplicate_problems=_problems(error),
        )
    messages.success(request, DUPLICATED.format(name=stored.name))
    return redirect("suites:detail", pk=stored.pk)


@require_POST
def suite_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Asks first (a page without scripts; htmx asks in a dialog)."""
    found = _stored_or_404(pk)
    form = SuiteDeleteForm(request.POST)
    if not (form.is_valid() and form.cleaned_data["confirm"]):
        return render(request, DELETE_TEMPLATE, {"found": found})
    services.suite_delete(stored=found.stored)
    messages.success(request, DELETED.format(name=found.suite.name))
    if request.htmx:
        return HttpResponseClientRedirect(reverse("suites:list"))
    return redirect("suites:list")


def _steps_changed(
    request: HttpRequest, pk: int, edit, done: str, **extra
) -> HttpResponse:
    """A step moved or deleted: the steps again (htmx swaps them in place), or
    what was refused, with nothing changed."""
    found = _stored_or_404(pk)
    try:
        edit(stored=found.stored)
    except SuiteFileError as error:
        problems = _problems(error)
        if request.htmx:
            context = _detail_context(found, step_problems=problems, **extra)
            return render(request, f"{DETAIL_TEMPLATE}#suite-steps", context)
        return _detail_page(request, found, 400, step_problems=problems)
    found = _stored_or_404(pk)
    if request.htmx:
        context = _detail_context(found, step_notice=done, **extra)
        return render(request, f"{DETAIL_TEMPLATE}#suite-steps", context)
    messages.success(request, done)
    return redirect("suites:detail", pk=pk)


@require_POST
def suite_step_move_view(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    direction = request.POST.get("direction", "")
    offset = OFFSETS.get(direction)
    if offset is None:
        return HttpResponseBadRequest("direction must be up or down")

    def edit(*, stored):
        services.suite_step_move(stored=stored, number=number, offset=offset)

    moved_to = number + offset
    done = STEP_MOVED.format(number=number, direction=direction)
    # The moved step's button keeps the focus, so the keys can move it again.
    return _steps_changed(
        request, pk, edit, done, moved=moved_to, moved_direction=direction
    )


@require_POST
def suite_step_delete_view(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    def edit(*, stored):
        services.suite_step_delete(stored=stored, number=number)

    return _steps_changed(request, pk, edit, STEP_DELETED.format(number=number))


def _step_kind(raw: dict) -> str:
    return next((kind for kind in ("event", "template", "type") if kind in raw), "")


@require_http_methods(["GET", "POST"])
def suite_step_edit_view(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    """A step's event and expectation; saved only when the whole suite is valid."""
    found = _stored_or_404(pk)
    steps = found.stored.definition["steps"]
    if not 1 <= number <= len(steps):
        raise Http404(f"The suite has no step {number}.")
    raw = steps[number - 1]
    kind = _step_kind(raw)
    problems: list[str] = []
    if request.method == "POST":
        form = SuiteStepForm(request.POST)
        if form.is_valid():
            step, problems = form.step_document(kind=kind, index=number - 1)
            if not problems:
                try:
                    services.suite_step_update(
                        stored=found.stored, number=number, step=step
                    )
                except SuiteFileError as error:
                    problems = _problems(error)
                else:
                    messages.success(request, STEP_SAVED.format(number=number))
                    return redirect("suites:detail", pk=pk)
            problems = [safe_text(problem) for problem in problems]
    else:
        form = SuiteStepForm(initial=SuiteStepForm.initial_for(raw))
    context = {
        "found": found,
        "number": number,
        "kind": kind,
        "form": form,
        "problems": problems,
        "label": found.suite.steps[number - 1].label(),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, STEP_TEMPLATE, context, status=status)


@require_GET
def suite_add_view(request: HttpRequest) -> HttpResponse:
    """ "Add to suite" from history or a delivery's pane: choose the suite."""
    form = SuiteAddStepForm(request.GET)
    form.is_valid()
    _, problems = _add_event(form)
    return _add_page(request, form, problems, status=400 if problems else 200)


def _add_context(form: SuiteAddStepForm, problems: list[str]) -> dict:
    data = form.cleaned_data if hasattr(form, "cleaned_data") else {}
    return {
        "form": form,
        "problems": problems,
        "stored_names": selectors.suite_stored_names(),
        "chosen": data.get("suite", ""),
        "new_suite_name": data.get("new_suite_name", ""),
        "payload": data.get("payload", "") or "",
        "delivery_pk": data.get("delivery"),
    }


def _add_page(
    request: HttpRequest, form: SuiteAddStepForm, problems: list[str], status: int
) -> HttpResponse:
    context = _add_context(form, problems)
    if request.htmx:
        return render(request, f"{ADD_TEMPLATE}#add-to-suite", context)
    event, _ = _add_event(form)
    context["event_pretty"] = indent_json(event) if event is not None else ""
    return render(request, ADD_TEMPLATE, context, status=status)


def _add_event(form: SuiteAddStepForm) -> tuple[dict | None, list[str]]:
    """The event to add (the delivery's, or the composer's text), or why none."""
    if form.errors:
        return None, [
            safe_text(f"{form.fields[name].label or name.capitalize()}: {error}")
            for name, errors in form.errors.items()
            for error in errors
        ]
    data = form.cleaned_data
    if data.get("delivery"):
        try:
            event = delivery_get(pk=data["delivery"]).payload
        except Delivery.DoesNotExist:
            return None, [NO_SUCH_DELIVERY.format(pk=data["delivery"])]
    else:
        event, error = spec.parse_event_json(data.get("payload") or "")
        if error is not None:
            return None, [error.message]
    return (event, []) if isinstance(event, dict) else (None, [NOT_AN_OBJECT])


@require_POST
def suite_add_step_view(request: HttpRequest) -> HttpResponse:
    """Add an event as a step: to a stored suite, or as a new suite's first."""
    form = SuiteAddStepForm(request.POST)
    form.is_valid()
    event, problems = _add_event(form)
    data = form.cleaned_data
    if event is None:
        return _add_page(request, form, problems, status=400)
    if not data.get("add"):
        return _add_page(request, form, [], status=200)
    stored = None
    if data.get("suite"):
        try:
            stored = selectors.suite_stored_get(name=data["suite"])
        except StoredSuite.DoesNotExist:
            problem = NOT_STORED.format(name=data["suite"])
            return _add_page(request, form, [problem], status=400)
    elif not data.get("new_suite_name", "").strip():
        return _add_page(request, form, [CHOOSE_A_SUITE], status=400)
    try:
        stored, number = services.suite_step_add(
            event=event, stored=stored, new_name=data.get("new_suite_name", "")
        )
    except (SuiteFileError, services.SuiteRefused) as error:
        return _add_page(request, form, _problems(error), status=400)
    found = selectors.suite_stored_found(pk=stored.pk)
    added = format_html(
        STEP_ADDED,
        number=number,
        link=format_html('<a href="{}">“{}”</a>', suite_url(found), stored.name),
    )
    if request.htmx:
        return render(request, f"{ADD_TEMPLATE}#added-to-suite", {"added": added})
    messages.success(request, added)
    return redirect(suite_url(found))
