"""Views for history, one delivery, and sending a stored event again."""

from urllib.parse import urlsplit

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from sandbox.delivery import panes, selectors, services
from sandbox.delivery.forms import HistoryFilterForm
from sandbox.delivery.models import FUNCTION_METHOD, Attempt, Delivery, State

RESENT = "Resent as #{pk} with the same messageId."
RESENT_BYPASSING_DEDUPE = "Resent as #{pk} with the same messageId, bypassing dedupe."
RESENT_AS_NEW = "Resent as #{pk}, a new event (fresh messageId and timestamps)."
RESENT_DEDUPLICATED = (
    "Resent as #{pk}, and deduplicated: this messageId was already sent within "
    "the dedupe window, so nothing went out. Resend, bypassing dedupe, to send it."
)
RETRYING_NOW = "The next attempt goes out now."
STOPPED = "No further attempts will be made."
NO_SUCH_REQUEST = "This attempt made no such HTTP request."


@require_GET
def history(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET or None)
    page = None
    if form.is_bound and form.is_valid():
        page = selectors.delivery_history(
            filters=form.filters(), before=form.cleaned_data.get("before")
        )
    elif not form.is_bound:
        page = selectors.delivery_history(filters=selectors.HistoryFilters())
    query = request.GET.copy()
    query.pop("before", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        # The first page shows new deliveries as they come; older pages stay put.
        "live": page is not None and not request.GET.get("before"),
        "page_size": selectors.PAGE_SIZE,
    }
    template = "delivery/delivery_history.html"
    if request.htmx:
        # The live list catching up as its socket (re)opens; else new filters or
        # another page, with the socket they watch.
        catching_up = request.htmx.target == "history-list"
        template += "#history-list" if catching_up else "#history-results"
    return render(request, template, context)


@require_GET
def feed(request: HttpRequest) -> HttpResponse:
    """The live feed as stored now: a (re)connected page catches up with it."""
    context = {
        "deliveries": selectors.delivery_feed(),
        "feed_window": selectors.FEED_SIZE,
    }
    return render(request, "delivery/delivery_feed.html#delivery-feed", context)


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        delivery = selectors.delivery_get(pk=pk)
    except Delivery.DoesNotExist:
        return render(request, "delivery/delivery_missing.html", status=404)
    context = panes.detail_context(
        delivery, number=_attempt_number(request.GET.get("attempt", ""))
    )
    template = "delivery/delivery_detail.html"
    if request.htmx:
        # Choosing an attempt in the timeline swaps only the opened attempt.
        opened = request.htmx.target == "attempt-view" and context["chosen"]
        template += "#attempt-view" if opened else "#delivery-detail"
    return render(request, template, context)


def _attempt_number(text: str) -> int | None:
    """An attempt's number from the query; None (the latest) for anything else."""
    if text.isascii() and text.isdigit() and len(text) <= 5:
        return int(text)
    return None


# The command carries the API key: never kept in the browser's cache.
@never_cache
@require_GET
def curl(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    """The attempt's request, or with ?fetch=<n> a function's nth fetch call
    (a function's attempt itself is no HTTP request)."""
    attempt = get_object_or_404(Attempt, delivery_id=pk, number=number)
    fetch = _attempt_number(request.GET.get("fetch", ""))
    if fetch is not None:
        command = panes.fetch_curl_command(attempt, fetch)
    elif attempt.request_method == FUNCTION_METHOD:
        command = None
    else:
        command = panes.curl_command(attempt)
    if command is None:
        raise Http404(NO_SUCH_REQUEST)
    return HttpResponse(command, content_type="text/plain")


@require_POST
def resend(request: HttpRequest, pk: int) -> HttpResponse:
    """The new delivery is shown where it belongs: in the Event Tester's pane
    beside the feed, else on its own page; either way saying what happened."""
    original = get_object_or_404(Delivery, pk=pk)
    as_new = request.POST.get("as_new") == "1"
    bypass_dedupe = request.POST.get("bypass_dedupe") == "1"
    try:
        delivery = services.delivery_resend(
            delivery=original, as_new=as_new, bypass_dedupe=bypass_dedupe
        )
    except services.DeliveryRefused as refusal:
        if request.htmx:
            # Told in the page's error banner; the pane stays as it was.
            return HttpResponse(str(refusal), status=400, content_type="text/plain")
        messages.error(request, str(refusal))
        return redirect("delivery:detail", pk=pk)
    message = _resent(delivery, as_new=as_new, bypass_dedupe=bypass_dedupe)
    if request.htmx and _in_event_tester(request):
        context = panes.detail_context(selectors.delivery_get(pk=delivery.pk))
        context["resent"] = message
        response = render(
            request, "delivery/delivery_detail.html#resend-result", context
        )
        return reswap(retarget(response, "#delivery-detail-pane"), "innerHTML")
    deduplicated = delivery.state == State.DEDUPLICATED
    (messages.warning if deduplicated else messages.success)(request, message)
    if request.htmx:
        page = reverse("delivery:detail", args=[delivery.pk])
        return HttpResponseClientRedirect(page)
    return redirect("delivery:detail", pk=delivery.pk)


def _resent(delivery: Delivery, *, as_new: bool, bypass_dedupe: bool) -> str:
    if delivery.state == State.DEDUPLICATED:
        message = RESENT_DEDUPLICATED
    elif as_new:
        message = RESENT_AS_NEW
    else:
        message = RESENT_BYPASSING_DEDUPE if bypass_dedupe else RESENT
    return message.format(pk=delivery.pk)


def _in_event_tester(request: HttpRequest) -> bool:
    """Whether the page that asked is the Event Tester, where a delivery shows in
    a pane beside the feed; anywhere else a delivery is a page of its own."""
    page = request.htmx.current_url_abs_path
    return page is not None and urlsplit(page).path == reverse("tester:home")


def _show(request: HttpRequest, pk: int, message: str) -> HttpResponse:
    """The delivery's detail: the partial for htmx, else a redirect to its page."""
    if request.htmx:
        delivery = selectors.delivery_get(pk=pk)
        return render(
            request,
            "delivery/delivery_detail.html#delivery-detail",
            panes.detail_context(delivery),
        )
    messages.success(request, message)
    return redirect("delivery:detail", pk=pk)


def _change(request: HttpRequest, pk: int, service, message: str) -> HttpResponse:
    delivery = get_object_or_404(Delivery, pk=pk)
    try:
        service(delivery=delivery)
    except services.DeliveryRefused as refusal:
        if not request.htmx:
            messages.error(request, str(refusal))
            return redirect("delivery:detail", pk=pk)
    return _show(request, pk, message)


@require_POST
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(Delivery, pk=pk)
    services.delivery_delete(delivery=delivery)
    messages.success(request, services.DELETED.format(pk=pk))
    if request.htmx:
        return HttpResponseClientRedirect(reverse("delivery:history"))
    return redirect("delivery:history")


@require_POST
def retry_now(request: HttpRequest, pk: int) -> HttpResponse:
    return _change(request, pk, services.delivery_retry_now, RETRYING_NOW)


@require_POST
def stop(request: HttpRequest, pk: int) -> HttpResponse:
    return _change(request, pk, services.delivery_stop_retrying, STOPPED)
