"""Views for history, one delivery, and sending a stored event again."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from sandbox.delivery import panes, selectors, services
from sandbox.delivery.forms import HistoryFilterForm
from sandbox.delivery.models import Attempt, Delivery

RESENT = "Sent again with the same messageId."
RESENT_AS_NEW = "Sent again as a new event (fresh messageId and timestamps)."
RETRYING_NOW = "The next attempt goes out now."
STOPPED = "No further attempts will be made."


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
    context = {"form": form, "page": page, "query": query.urlencode()}
    template = "delivery/delivery_history.html"
    if request.htmx:
        template += "#history-results"
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
    template = "delivery/delivery_detail.html"
    if request.htmx:
        template += "#delivery-detail"
    return render(request, template, panes.detail_context(delivery))


# The command carries the API key: never kept in the browser's cache.
@never_cache
@require_GET
def curl(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    attempt = get_object_or_404(Attempt, delivery_id=pk, number=number)
    return HttpResponse(panes.curl_command(attempt), content_type="text/plain")


@require_POST
def resend(request: HttpRequest, pk: int) -> HttpResponse:
    original = get_object_or_404(Delivery, pk=pk)
    as_new = request.POST.get("as_new") == "1"
    try:
        delivery = services.delivery_resend(
            delivery=original,
            as_new=as_new,
            bypass_dedupe=request.POST.get("bypass_dedupe") == "1",
        )
    except services.DeliveryRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("delivery:detail", pk=pk)
    return _show(request, delivery.pk, RESENT_AS_NEW if as_new else RESENT)


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
