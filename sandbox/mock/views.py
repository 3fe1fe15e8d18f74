"""Pages that configure mock endpoints, and the mock endpoint itself."""

import asyncio

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sandbox.delivery.broadcast import MOCK_REQUESTS_SHOWN
from sandbox.middleware import body_size
from sandbox.mock.answers import METHOD_NOT_ALLOWED, UNKNOWN_ENDPOINT
from sandbox.mock.forms import MockEndpointForm
from sandbox.mock.models import MockEndpoint
from sandbox.mock.selectors import (
    mock_endpoint_get,
    mock_endpoint_list,
    mock_request_list,
    mock_request_stats,
)
from sandbox.mock.services import (
    mock_endpoint_create,
    mock_endpoint_delete,
    mock_endpoint_update,
    mock_request_receive,
    mock_requests_clear,
)

CREATED = "Mock endpoint “{name}” created."
UPDATED = "Mock endpoint “{name}” saved."
DELETED = "Mock endpoint “{name}” deleted."
CLEARED = "Cleared {count} recorded requests."


def _endpoint_or_404(slug: str) -> MockEndpoint:
    endpoint = mock_endpoint_get(slug=slug)
    if endpoint is None:
        raise Http404(UNKNOWN_ENDPOINT.format(slug=slug))
    return endpoint


def _detail_context(request: HttpRequest, endpoint: MockEndpoint) -> dict:
    receive_path = reverse("mock:receive", kwargs={"slug": endpoint.slug})
    return {
        "endpoint": endpoint,
        "receive_url": request.build_absolute_uri(receive_path),
        "mock_requests": mock_request_list(
            endpoint=endpoint, limit=MOCK_REQUESTS_SHOWN
        ),
        "stats": mock_request_stats(endpoint=endpoint),
        # Live pushes add to the list; the page keeps this many.
        "requests_shown": MOCK_REQUESTS_SHOWN,
    }


@require_GET
def mock_endpoint_list_view(request: HttpRequest) -> HttpResponse:
    return render(
        request, "mock/mockendpoint_list.html", {"endpoints": mock_endpoint_list()}
    )


@require_http_methods(["GET", "POST"])
def mock_endpoint_create_view(request: HttpRequest) -> HttpResponse:
    form = MockEndpointForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        endpoint = mock_endpoint_create(**form.cleaned_data)
        messages.success(request, CREATED.format(name=endpoint.name))
        return redirect("mock:detail", slug=endpoint.slug)
    return render(request, "mock/mockendpoint_form.html", {"form": form})


@require_GET
def mock_endpoint_detail_view(request: HttpRequest, slug: str) -> HttpResponse:
    endpoint = _endpoint_or_404(slug)
    if request.htmx:
        # The list fetches itself when its websocket (re)connects; answering 204
        # when nothing changed leaves the page alone, so expanded headers and
        # bodies stay open.
        stats = mock_request_stats(endpoint=endpoint)
        if request.GET.get("seen") == stats.version:
            return HttpResponse(status=204)
        template = "mock/mockendpoint_detail.html#mock-requests"
    else:
        template = "mock/mockendpoint_detail.html"
    return render(request, template, _detail_context(request, endpoint))


@require_http_methods(["GET", "POST"])
def mock_endpoint_edit_view(request: HttpRequest, slug: str) -> HttpResponse:
    endpoint = _endpoint_or_404(slug)
    form = MockEndpointForm(
        request.POST if request.method == "POST" else None, instance=endpoint
    )
    if request.method == "POST" and form.is_valid():
        changes = {k: v for k, v in form.cleaned_data.items() if k != "slug"}
        mock_endpoint_update(endpoint=endpoint, **changes)
        messages.success(request, UPDATED.format(name=endpoint.name))
        return redirect("mock:detail", slug=endpoint.slug)
    return render(
        request, "mock/mockendpoint_form.html", {"form": form, "endpoint": endpoint}
    )


@require_POST
def mock_endpoint_delete_view(request: HttpRequest, slug: str) -> HttpResponse:
    endpoint = _endpoint_or_404(slug)
    mock_endpoint_delete(endpoint=endpoint)
    messages.success(request, DELETED.format(name=endpoint.name))
    return redirect("mock:list")


@require_POST
def mock_requests_clear_view(request: HttpRequest, slug: str) -> HttpResponse:
    endpoint = _endpoint_or_404(slug)
    count = mock_requests_clear(endpoint=endpoint)
    messages.success(request, CLEARED.format(count=count))
    return redirect("mock:detail", slug=endpoint.slug)


@never_cache
@require_GET
def mock_endpoint_reveal_key_view(request: HttpRequest, slug: str) -> HttpResponse:
    endpoint = _endpoint_or_404(slug)
    if request.htmx:
        return render(
            request,
            "mock/mockendpoint_detail.html#api-key",
            {"endpoint": endpoint, "key_revealed": True},
        )
    context = _detail_context(request, endpoint) | {"key_revealed": True}
    return render(request, "mock/mockendpoint_detail.html", context)


@csrf_exempt
async def mock_receive_view(request: HttpRequest, slug: str) -> HttpResponse:
    """The mock endpoint itself: answers a delivery as the configured partner would.

    A server answers it ahead of Django (sandbox.mock.receiver); this view is the
    same door for anything that calls Django directly."""
    if request.method != "POST":
        return JsonResponse(
            {"message": METHOD_NOT_ALLOWED.format(method=request.method)},
            status=405,
            headers={"Allow": "POST"},
        )
    try:
        body, size = request.body, 0
    except RequestDataTooBig:
        body, size = None, body_size(request)
    received = await sync_to_async(mock_request_receive)(
        slug=slug,
        method=request.method,
        headers=list(request.headers.items()),
        body=body,
        size=size,
    )
    if received is None:
        return JsonResponse({"message": UNKNOWN_ENDPOINT.format(slug=slug)}, status=404)
    if received.delay_ms:
        # Recorded first, answered late: like a partner that is slow to respond.
        await asyncio.sleep(received.delay_ms / 1000)
    answer = received.answer
    return HttpResponse(
        answer.body, status=answer.status, content_type=answer.content_type
    )


# An oversized delivery is recorded and answered here, in the mock's words.
mock_receive_view.reads_own_body = True
