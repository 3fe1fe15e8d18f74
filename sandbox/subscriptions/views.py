"""Pages to list, show, create, edit, disable and delete subscriptions, and to
reveal an API key."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sandbox.delivery.selectors import (
    HistoryFilters,
    delivery_history,
    latency_by_subscription,
)
from sandbox.functions.selectors import function_summary, function_version_numbers
from sandbox.subscriptions import selectors, services
from sandbox.subscriptions.forms import SubscriptionForm
from sandbox.subscriptions.models import Subscription

LIST_TEMPLATE = "subscriptions/subscription_list.html"
DETAIL_TEMPLATE = "subscriptions/subscription_detail.html"
FORM_TEMPLATE = "subscriptions/subscription_form.html"
# A subscription's page lists its newest deliveries, live.
RECENT_DELIVERIES = 20

CREATED = "Created subscription “{name}”."
CREATED_FUNCTION = (
    "Created function subscription “{name}” with Segment's boilerplate as "
    "{version}: edit it here, then save."
)
SAVED = "Saved subscription “{name}”."
DISABLED = (
    "Disabled subscription “{name}”: it receives no events until enabled, and "
    "any pending retries stopped."
)
ENABLED = "Enabled subscription “{name}”."
DELETED = "Deleted subscription “{name}”."


def _subscription_or_404(pk: int) -> Subscription:
    try:
        return selectors.subscription_get(pk=pk)
    except Subscription.DoesNotExist:
        raise Http404("No such subscription") from None


@require_GET
def list_page(request: HttpRequest) -> HttpResponse:
    subscriptions = list(selectors.subscription_list())
    ids = [s.pk for s in subscriptions]
    latencies = latency_by_subscription(subscription_ids=ids)
    versions = function_version_numbers(subscription_ids=ids)
    for subscription in subscriptions:
        subscription.latency = latencies.get(subscription.pk)
        subscription.function_version = versions.get(subscription.pk)
    return render(request, LIST_TEMPLATE, {"subscriptions": subscriptions})


@require_GET
def detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = _subscription_or_404(pk)
    recent = delivery_history(
        filters=HistoryFilters(subscription_id=pk), limit=RECENT_DELIVERIES
    )
    context = {
        "subscription": subscription,
        "deliveries": recent.deliveries,
        "recent_size": RECENT_DELIVERIES,
    }
    if request.htmx:
        # Its recent deliveries catching up as the page's socket (re)opens.
        return render(request, f"{DETAIL_TEMPLATE}#subscription-deliveries", context)
    context["latency"] = latency_by_subscription(subscription_ids=[pk]).get(pk)
    context["function"] = function_summary(subscription=subscription)
    return render(request, DETAIL_TEMPLATE, context)


@require_http_methods(["GET", "POST"])
def create_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = SubscriptionForm(request.POST)
        if form.is_valid():
            subscription = services.subscription_create_with_code(**form.cleaned_data)
            if subscription.is_function:
                version = subscription.current_function
                messages.success(
                    request,
                    CREATED_FUNCTION.format(name=subscription, version=version.label),
                )
                return redirect("subscriptions:code", pk=subscription.pk)
            messages.success(request, CREATED.format(name=subscription))
            return redirect("subscriptions:detail", pk=subscription.pk)
    else:
        form = SubscriptionForm()
    return render(request, FORM_TEMPLATE, {"form": form})


@require_http_methods(["GET", "POST"])
def edit_page(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = _subscription_or_404(pk)
    if request.method == "POST":
        form = SubscriptionForm(request.POST, instance=subscription)
        if form.is_valid():
            services.subscription_update_with_code(
                subscription=subscription, **form.cleaned_data
            )
            messages.success(request, SAVED.format(name=subscription))
            return redirect("subscriptions:detail", pk=pk)
    else:
        form = SubscriptionForm(instance=subscription)
    latency = latency_by_subscription(subscription_ids=[pk]).get(pk)
    context = {"form": form, "subscription": subscription, "latency": latency}
    return render(request, FORM_TEMPLATE, context)


@require_POST
def disable(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = _subscription_or_404(pk)
    services.subscription_update(subscription=subscription, enabled=False)
    messages.success(request, DISABLED.format(name=subscription))
    return redirect("subscriptions:detail", pk=pk)


@require_POST
def enable(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = _subscription_or_404(pk)
    services.subscription_update(subscription=subscription, enabled=True)
    messages.success(request, ENABLED.format(name=subscription))
    return redirect("subscriptions:detail", pk=pk)


@require_POST
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = _subscription_or_404(pk)
    services.subscription_delete(subscription=subscription)
    messages.success(request, DELETED.format(name=subscription))
    return redirect("subscriptions:list")


# Never cached, so the full key is not left behind in the browser's cache.
@never_cache
@require_GET
def reveal_key(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = _subscription_or_404(pk)
    return render(
        request,
        f"{LIST_TEMPLATE}#api-key",
        {"subscription": subscription, "revealed": True},
    )
