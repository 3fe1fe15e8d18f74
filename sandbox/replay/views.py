"""Pages for replays: start one from a file or history, watch it, control it,
delete it; and the replay readiness check, followed live."""

from pathlib import Path

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from sandbox.delivery.services import Target
from sandbox.replay import readiness, selectors, services, uploads
from sandbox.replay.forms import ReadinessForm, ReplayForm
from sandbox.replay.models import ReadinessCheck, Replay

NO_SUCH_REPLAY = "No replay #{pk}."
NO_SUCH_CHECK = "No readiness check #{pk}."
PAUSED = "Replay paused: nothing more is sent until you resume it."
RESUMED = "Replay resumed."
CANCELLED = "Replay cancelled; resume it to send the rest."
DELETED = "Deleted replay #{pk}; its deliveries stay in history."
READINESS_BUSY = (
    "A readiness check of {name} is running (#{pk}): two at once share the "
    "machine and the engine, and both would report wrong rates. Start this one "
    "when it is done."
)


def _list_context(
    form: ReplayForm | None = None, readiness_form: ReadinessForm | None = None
) -> dict:
    replays = selectors.replay_list()
    # A check whose process ended while it ran is shown ended, saying so.
    readiness.readiness_end_orphans()
    return {
        "form": form or ReplayForm(),
        "readiness_form": readiness_form or ReadinessForm(),
        "checks": selectors.readiness_list(),
        "replays": replays,
        "max_upload_mb": uploads.MAX_UPLOAD_BYTES >> 20,
    }


@require_GET
def replay_list_view(request: HttpRequest) -> HttpResponse:
    uploads.uploads_sweep()
    form = ReplayForm(initial=ReplayForm.initial_from(request.GET))
    return render(request, "replay/replay_list.html", _list_context(form))


@csrf_exempt
@require_POST
def replay_start_view(request: HttpRequest) -> HttpResponse:
    # The file goes straight to the data directory as it arrives: the handler is
    # set before the form is read, so CSRF is checked after it.
    handler = uploads.ReplayUploadHandler(request)
    request.upload_handlers = [handler]
    try:
        return _replay_start(request, handler)
    finally:
        # Only a file a replay was made of stays: not one refused by the form,
        # its contents or CSRF, nor one whose upload broke off.
        handler.discard()


replay_start_view.reads_own_body = True


@csrf_protect
def _replay_start(
    request: HttpRequest, handler: uploads.ReplayUploadHandler
) -> HttpResponse:
    form = ReplayForm(request.POST, request.FILES)
    valid = form.is_valid()
    if handler.too_large:
        limit = uploads.MAX_UPLOAD_BYTES >> 20
        form.add_error(None, uploads.TOO_LARGE.format(limit=limit))
        valid = False
    if not valid:
        return _refused(request, form)
    data = form.cleaned_data
    upload = data.get("file") if data["source"] == "file" else None
    try:
        replay = services.replay_create(
            target=Target.of(data["subscription"]),
            path=upload.path if upload is not None else None,
            file_name=Path(upload.name).name if upload is not None else "",
            history=form.history() if upload is None else None,
            rate=data["rate"],
            concurrency=data["concurrency"],
            shuffle=data["shuffle"],
            new_message_ids=data["new_message_ids"],
        )
    except services.ReplayRefused as refusal:
        form.add_error(None, str(refusal))
        return _refused(request, form)
    if upload is not None:
        handler.kept = upload.path
    services.replay_feed_in_background(replay_id=replay.pk)
    return redirect("replay:detail", pk=replay.pk)


def _refused(request: HttpRequest, form: ReplayForm) -> HttpResponse:
    context = _list_context(form)
    return render(request, "replay/replay_list.html", context, status=400)


def _replay(pk: int) -> Replay:
    try:
        return selectors.replay_get(pk=pk)
    except Replay.DoesNotExist:
        raise Http404(NO_SUCH_REPLAY.format(pk=pk)) from None


@require_GET
def replay_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    replay = _replay(pk)
    context = {
        "replay": replay,
        "progress": selectors.replay_progress(replay=replay),
        "chosen_by": selectors.replay_chosen_by(replay=replay),
    }
    return render(request, "replay/replay_detail.html", context)


def _controlled(request: HttpRequest, replay: Replay, said: str) -> HttpResponse:
    """htmx: the progress as it now stands; a plain POST: back to the page."""
    if request.htmx:
        replay = selectors.replay_get(pk=replay.pk)
        context = {
            "replay": replay,
            "progress": selectors.replay_progress(replay=replay),
        }
        return render(request, "replay/replay_detail.html#replay-progress", context)
    messages.info(request, said)
    return redirect("replay:detail", pk=replay.pk)


@require_POST
def replay_pause_view(request: HttpRequest, pk: int) -> HttpResponse:
    replay = _replay(pk)
    try:
        replay = services.replay_pause(replay=replay)
    except services.ReplayRefused as refused:
        return _controlled(request, replay, str(refused))
    return _controlled(request, replay, PAUSED)


@require_POST
def replay_resume_view(request: HttpRequest, pk: int) -> HttpResponse:
    replay = _replay(pk)
    try:
        replay = services.replay_resume(replay=replay)
    except services.ReplayRefused as refused:
        return _controlled(request, replay, str(refused))
    if services.replay_needs_feeding(replay=replay):
        services.replay_feed_in_background(replay_id=replay.pk)
    return _controlled(request, replay, RESUMED)


@require_POST
def replay_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    replay = _replay(pk)
    try:
        replay = services.replay_cancel(replay=replay)
    except services.ReplayRefused as refused:
        return _controlled(request, replay, str(refused))
    return _controlled(request, replay, CANCELLED)


@require_POST
def replay_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx from the list: the list again; from the replay's page: to the list;
    a plain POST: redirected there."""
    services.replay_delete(replay=_replay(pk))
    said = DELETED.format(pk=pk)
    if request.htmx and request.htmx.target == "replay-rows":
        context = {"replays": selectors.replay_list(), "said": said}
        return render(request, "replay/replay_list.html#replay-rows", context)
    messages.success(request, said)
    if request.htmx:
        return HttpResponseClientRedirect(reverse("replay:list"))
    return redirect("replay:list")


@require_POST
def readiness_start_view(request: HttpRequest) -> HttpResponse:
    form = ReadinessForm(request.POST)
    running = None
    if form.is_valid():
        try:
            check = readiness.readiness_create(
                subscription=form.cleaned_data["subscription"]
            )
        except readiness.ReadinessBusy as busy:
            running = busy.running
        else:
            readiness.readiness_run_in_background(check_id=check.pk)
            return redirect("replay:readiness-detail", pk=check.pk)
    else:
        readiness.readiness_end_orphans()
        running = selectors.readiness_running()
    if running is not None:
        said = READINESS_BUSY.format(name=running.subscription_name, pk=running.pk)
        form.add_error(None, said)
    context = _list_context(readiness_form=form) | {"running_check": running}
    status = 409 if running is not None else 400
    return render(request, "replay/replay_list.html", context, status=status)


def _check(pk: int) -> ReadinessCheck:
    readiness.readiness_end_orphans()
    try:
        return selectors.readiness_get(pk=pk)
    except ReadinessCheck.DoesNotExist:
        raise Http404(NO_SUCH_CHECK.format(pk=pk)) from None


@require_GET
def readiness_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The check's page; htmx polls its live part while the check runs."""
    check = _check(pk)
    context = {
        "check": check,
        "progress": selectors.readiness_progress(check=check),
        "took": selectors.readiness_took(check=check),
    }
    if request.htmx:
        return render(request, "replay/readiness_detail.html#readiness-live", context)
    return render(request, "replay/readiness_detail.html", context)


@require_GET
def readiness_download_view(request: HttpRequest, pk: int) -> HttpResponse:
    check = _check(pk)
    context = {"check": check, "took": selectors.readiness_took(check=check)}
    response = render(request, "replay/readiness_report.html", context)
    name = "".join(c if c.isalnum() else "-" for c in check.subscription_name)
    # A name in any script: filename* (RFC 6266), the header itself ASCII.
    response["Content-Disposition"] = content_disposition_header(
        True, f"replay-readiness-{name.strip('-') or pk}.html"
    )
    return response
