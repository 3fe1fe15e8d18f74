"""Event Tester views: compose, generate, validate and send."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from sandbox import spec
from sandbox.converters import id_from
from sandbox.delivery import panes, services
from sandbox.delivery import selectors as delivery_selectors
from sandbox.delivery.models import Delivery, Door
from sandbox.sources import selectors as source_selectors
from sandbox.sources.models import IngestedEvent
from sandbox.tester.composer import check_text, editor_text
from sandbox.tester.forms import ComposerForm, SampleForm
from sandbox.tester.selectors import composer_initial, delivery_to_edit

PAGE = "tester/home.html"
NOT_LOADED_ID = "No ingested event {pk} to load; the sample is shown instead."
NOT_LOADED_UNREADABLE = (
    "Ingested event {pk} holds no event object to edit (its request could not "
    "be read as one); the sample is shown instead."
)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    editing = delivery_to_edit(pk=request.GET.get("from"))
    arrived, not_loaded = _arrived_event(request.GET.get("from_event"))
    form = ComposerForm(
        initial=composer_initial(
            delivery=editing, event=arrived.payload if arrived else None
        )
    )
    context = {
        "form": form,
        "deliveries": delivery_selectors.delivery_feed(),
        "feed_window": delivery_selectors.FEED_SIZE,
        "editing": editing is not None or arrived is not None,
        "loaded_from": arrived,
        "not_loaded": not_loaded,
        "source_events": source_selectors.ingested_event_recent(),
        "sample": editing is None and arrived is None,
        "sent": _sent(request.GET.get("sent")),
    }
    return render(request, PAGE, context)


def _arrived_event(pk: str | None) -> tuple[IngestedEvent | None, str]:
    """The event a source received that "Load event from source" (or its
    debugger's "Edit and send") names, accepted or dropped; or why none loads."""
    if pk is None:
        return None, ""
    number = id_from(pk)
    if number is None:
        return None, NOT_LOADED_ID.format(pk=pk[:40])
    try:
        event = source_selectors.ingested_event_get(pk=number)
    except IngestedEvent.DoesNotExist:
        return None, NOT_LOADED_ID.format(pk=pk[:40])
    if not isinstance(event.payload, dict):
        return None, NOT_LOADED_UNREADABLE.format(pk=event.pk)
    return event, ""


def _sent(pk: str | None) -> dict | None:
    """After a plain (script-less) send, the page opens on what was sent."""
    number = id_from(pk)
    if number is None:
        return None
    try:
        return panes.detail_context(delivery_selectors.delivery_get(pk=number))
    except Delivery.DoesNotExist:
        return None


# A POST that carries only the selects: the editor's text (up to 32 KB and more)
# never travels in a URL, and nothing of the event reaches the access log.
@require_POST
def sample(request: HttpRequest) -> HttpResponse:
    sample_form = SampleForm(request.POST)
    if not sample_form.is_valid():
        return HttpResponse(
            sample_form.refusal(), status=400, content_type="text/plain"
        )
    data = sample_form.cleaned_data
    event = spec.sample_event(
        data["event_type"], source=data["source"], template=data["template"] or None
    )
    form = ComposerForm(
        initial={
            **data,
            "subscription": request.POST.get("subscription"),
            "payload": editor_text(event),
        }
    )
    return render(request, f"{PAGE}#sample-result", {"form": form, "sample": True})


@require_POST
def validate(request: HttpRequest) -> HttpResponse:
    check = check_text(request.POST.get("payload", ""))
    return render(request, f"{PAGE}#event-problems", {"check": check})


@require_POST
def send(request: HttpRequest) -> HttpResponse:
    form = ComposerForm(request.POST)
    context = {"form": form}
    if form.is_valid():
        try:
            delivery, run = services.delivery_send(
                target=services.Target.of(form.cleaned_data["subscription"]),
                event=form.event,
                door=Door.COMPOSER,
                conditions=form.conditions(),
                allow_problems=form.cleaned_data["confirm"],
            )
        except services.SpecRejected as rejected:
            context["rejected"] = rejected.problems
        except services.DeliveryRefused as refusal:
            context["refusal"] = str(refusal)
        else:
            if not request.htmx:
                return redirect(f"{reverse('tester:home')}?sent={delivery.pk}")
            return render(
                request, f"{PAGE}#send-result", {"delivery": delivery, "run": run}
            )
    if request.htmx:
        return render(request, f"{PAGE}#composer-result", context)
    context["deliveries"] = delivery_selectors.delivery_feed()
    context["feed_window"] = delivery_selectors.FEED_SIZE
    return render(request, PAGE, context, status=400)
