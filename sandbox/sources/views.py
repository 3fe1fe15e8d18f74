"""Pages for sources, and what analytics.js loads from the sandbox as its CDN."""

import re

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
)

from sandbox.display import indent_json, mask_secret
from sandbox.sources import sdk, selectors, services
from sandbox.sources.broadcast import UNKNOWN
from sandbox.sources.forms import SourceForm
from sandbox.sources.models import IngestedEvent, Source

# Segment's CDN answers 404 to a write key no source has, and analytics.js then
# fails to load (segmentio/analytics-node#371, analytics-react-native#873).
UNKNOWN_WRITE_KEY = (
    "No source has this write key. Create one with "
    "`python manage.py source create NAME --to SUBSCRIPTION`."
)
NO_SOURCE = "No source is set up yet: create one on the Sources page."
NO_SUCH_SOURCE = "No source #{pk}."
KEY_NOT_SENDABLE = (
    "This source's write key holds characters SDKs cannot send (it was stored "
    "before keys were checked), so analytics.js cannot load or send with it."
)
NO_SUCH_EVENT = "No ingested event #{pk}."
CREATED = "Source “{name}” created; its write key is {key}."
SAVED = "Source “{name}” saved."
DELETED = "Source “{name}” deleted; the deliveries its events made stay in history."
# Any page may load the library's settings, as from Segment's CDN.
_CORS = {"Access-Control-Allow-Origin": "*"}
_BUNDLE_MAX_AGE = 60 * 60 * 24 * 365  # the file names carry their content's hash


@require_http_methods(["GET", "HEAD", "OPTIONS"])
def sdk_settings_view(request: HttpRequest, write_key: str) -> HttpResponse:
    """The settings document analytics.js asks its CDN for, sending its events to
    this sandbox's tracking API on the host and scheme the page used."""
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        response["Access-Control-Max-Age"] = "86400"
    else:
        try:
            selectors.source_get_by_write_key(write_key=write_key)
        except Source.DoesNotExist:
            response = JsonResponse({"message": UNKNOWN_WRITE_KEY}, status=404)
        else:
            document = sdk.settings_document(
                write_key=write_key,
                api_host=f"{request.get_host()}/v1",
                protocol=request.scheme,
            )
            response = JsonResponse(document)
    for name, value in _CORS.items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def sdk_bundle_view(request: HttpRequest, name: str) -> FileResponse:
    """One of analytics.js's lazily loaded bundles, from the vendored package."""
    if name not in sdk.BUNDLES:
        raise Http404("No such analytics.js bundle.")
    response = FileResponse(
        (sdk.BUNDLES_DIR / name).open("rb"), content_type="text/javascript"
    )
    response["Cache-Control"] = f"public, max-age={_BUNDLE_MAX_AGE}, immutable"
    return response


@require_GET
def try_sdk_view(request: HttpRequest) -> HttpResponse:
    """The real analytics.js, loaded for a source: buttons call its methods."""
    sources = list(selectors.source_list())
    chosen = None
    wanted = request.GET.get("source", "")
    for source in sources:
        if str(source.pk) == wanted:
            chosen = source
    if chosen is None and sources:
        chosen = sources[0]
    return render(
        request,
        "sources/try_sdk.html",
        {
            "sources": sources,
            "source": chosen,
            "no_source": NO_SOURCE,
            "key_not_sendable": KEY_NOT_SENDABLE,
            "version": sdk.ANALYTICS_NEXT_VERSION,
        },
    )


def _source(pk: int) -> Source:
    try:
        return selectors.source_get(pk=pk)
    except Source.DoesNotExist:
        raise Http404(NO_SUCH_SOURCE.format(pk=pk)) from None


@require_GET
def source_list_view(request: HttpRequest) -> HttpResponse:
    sources = list(selectors.source_list())
    rows = [(source, selectors.source_last_event(source=source)) for source in sources]
    unknown = selectors.ingested_event_list(source=None, limit=1)
    return render(
        request,
        "sources/source_list.html",
        {"rows": rows, "unknown_last": unknown[0] if unknown else None},
    )


def _save(request: HttpRequest, form: SourceForm, source: Source | None):
    """The source saved from a valid form, or None with the errors on the form."""
    data = form.cleaned_data
    write_key = data["write_key"] or None
    try:
        if source is None:
            saved, _ = services.source_save(
                name=data["name"],
                subscriptions=data["subscriptions"],
                write_key=write_key,
            )
        else:
            saved = services.source_update(
                source=source,
                name=data["name"],
                subscriptions=data["subscriptions"],
                write_key=write_key,
            )
    except ValidationError as error:
        form.add_error(None, error)
        return None
    return saved


@require_http_methods(["GET", "POST"])
def source_create_view(request: HttpRequest) -> HttpResponse:
    form = SourceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        source = _save(request, form, None)
        if source is not None:
            messages.success(
                request,
                CREATED.format(name=source.name, key=source.masked_write_key),
            )
            return redirect("sources:detail", pk=source.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "sources/source_form.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
def source_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    source = _source(pk)
    form = SourceForm(request.POST or None, instance=source)
    if request.method == "POST" and form.is_valid():
        saved = _save(request, form, _source(pk))
        if saved is not None:
            messages.success(request, SAVED.format(name=saved.name))
            return redirect("sources:detail", pk=saved.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "sources/source_form.html",
        {"form": form, "source": _source(pk)},
        status=status,
    )


@require_POST
def source_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    source = _source(pk)
    services.source_delete(source=source)
    messages.success(request, DELETED.format(name=source.name))
    return redirect("sources:list")


@never_cache
@require_GET
def source_reveal_key_view(request: HttpRequest, pk: int) -> HttpResponse:
    source = _source(pk)
    return render(
        request,
        "sources/source_detail.html#write-key",
        {"source": source, "key_revealed": True},
    )


def _debugger(request: HttpRequest, source: Source | None) -> HttpResponse:
    status = request.GET.get("status") or None
    if status not in {None, *IngestedEvent.Status.values}:
        status = None
    try:
        before = int(request.GET["before"]) if request.GET.get("before") else None
    except ValueError:
        before = None
    events = selectors.ingested_event_list(
        source=source, before_id=before, status=status
    )
    context = {
        "source": source,
        "events": events,
        "status": status or "",
        "paged": before is not None,
        "key": source.pk if source is not None else UNKNOWN,
        "shown": selectors.EVENTS_SHOWN,
        "older": events[-1].pk if len(events) == selectors.EVENTS_SHOWN else None,
        "host": f"{request.scheme}://{request.get_host()}",
    }
    if request.htmx and request.htmx.target == "source-events":
        return render(request, "sources/source_detail.html#source-events", context)
    return render(request, "sources/source_detail.html", context)


@require_GET
def source_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The source debugger: events as they arrive, accepted or dropped, and why."""
    return _debugger(request, _source(pk))


@require_GET
def source_unknown_view(request: HttpRequest) -> HttpResponse:
    """Events whose write key no source has: Segment drops them, as the sandbox."""
    return _debugger(request, None)


# A writeKey member in what arrived: its value (perhaps cut short by the preview).
_WRITE_KEY_MEMBER = re.compile(r'("writeKey"\s*:\s*")((?:[^"\\]|\\.)*)("|\Z)')


def _payload_text(payload: object) -> str:
    """What the event pane shows: the event, or the start of a refused request's
    body as the text that arrived; any writeKey in it masked, as elsewhere."""
    if payload is None:
        return ""
    text = payload if isinstance(payload, str) else indent_json(payload)
    return _WRITE_KEY_MEMBER.sub(
        lambda found: found[1] + mask_secret(found[2]) + found[3], text
    )


@require_GET
def ingested_event_view(request: HttpRequest, pk: int) -> HttpResponse:
    """One ingested event: what arrived or was forwarded, and its deliveries."""
    try:
        event = selectors.ingested_event_get(pk=pk)
    except IngestedEvent.DoesNotExist:
        raise Http404(NO_SUCH_EVENT.format(pk=pk)) from None
    context = {
        "event": event,
        "payload_text": _payload_text(event.payload),
        "editable": isinstance(event.payload, dict),
        "deliveries": selectors.ingested_event_deliveries(event=event),
    }
    if request.htmx:
        return render(request, "sources/ingested_event.html#event-pane", context)
    return render(request, "sources/ingested_event.html", context)
