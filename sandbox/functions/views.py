"""The code page of a function subscription: edit and save its JavaScript, see its
versions, view an older one, restore it, or start again from the boilerplate."""

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sandbox.functions import selectors, services
from sandbox.functions.forms import FunctionSourceForm
from sandbox.functions.models import FunctionVersion
from sandbox.middleware import RequestBodyGuardMiddleware, body_size, megabytes
from sandbox.subscriptions.models import Subscription
from sandbox.subscriptions.selectors import subscription_get

CODE_TEMPLATE = "functions/function_code.html"
VERSION_TEMPLATE = "functions/functionversion_detail.html"

NO_SUCH_SUBSCRIPTION = "No such subscription."
NOT_A_FUNCTION = (
    "“{name}” is a webhook subscription, so it has no code. To write one, "
    "change its kind to Function on its edit page."
)
NO_SUCH_VERSION = "“{name}” has no version v{number}."
SAVED = "Saved {version}."
UNCHANGED = "Unchanged: still {version}."
RESTORED = "Restored {old} as {version}."
RESTORE_UNCHANGED = "{old} is already the newest version."
RESET = "Reset to Segment's boilerplate as {version}."
RESET_UNCHANGED = "It already is the boilerplate: still {version}."
BODY_TOO_LARGE = (
    "This save is over the {limit} the sandbox reads at once, so nothing was "
    "saved: a function may be at most {source_limit:,} bytes."
)

# The guard's other refusals (a form in another charset) still apply to a save.
_BODY_GUARD = RequestBodyGuardMiddleware(lambda request: None)


def _function_or_404(pk: int) -> Subscription:
    try:
        subscription = subscription_get(pk=pk)
    except Subscription.DoesNotExist:
        raise Http404(NO_SUCH_SUBSCRIPTION) from None
    if not subscription.is_function:
        raise Http404(NOT_A_FUNCTION.format(name=subscription.name))
    return subscription


def _version_or_404(subscription: Subscription, number: int) -> FunctionVersion:
    try:
        return selectors.function_version_get(subscription=subscription, number=number)
    except FunctionVersion.DoesNotExist:
        raise Http404(
            NO_SUCH_VERSION.format(name=subscription.name, number=number)
        ) from None


def _boilerplate() -> str:
    return services.boilerplate(f"{settings.BASE_URL}/mock/demo/")


def _page_context(subscription: Subscription, form: FunctionSourceForm) -> dict:
    return {
        "subscription": subscription,
        "form": form,
        "function": selectors.function_summary(subscription=subscription),
        "versions": selectors.function_version_list(subscription=subscription),
        "source_limit": services.MAX_SOURCE_BYTES,
    }


# CSRF is checked after the size (see code_page), so the view is exempt here.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def code_page(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method == "POST":
        # A source at the limit, percent-encoded, stays well inside Django's
        # 2.5 MB; a larger body is refused in the code page's words, unread.
        if body_size(request) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return _body_too_large(request)
        refusal = _BODY_GUARD.process_view(request, _code_page, (), {})
        if refusal is not None:
            return refusal
    return _code_page(request, pk)


code_page.reads_own_body = True


@csrf_protect
def _code_page(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = _function_or_404(pk)
    if request.method == "POST":
        form = FunctionSourceForm(request.POST)
        if form.is_valid():
            version, created = services.function_version_save(
                subscription=subscription, source=form.cleaned_data["source"]
            )
            said = SAVED if created else UNCHANGED
            messages.success(request, said.format(version=version.label))
            return redirect("subscriptions:code", pk=pk)
    else:
        current = subscription.current_function
        source = current.source if current else _boilerplate()
        form = FunctionSourceForm(initial={"source": source})
    return render(request, CODE_TEMPLATE, _page_context(subscription, form))


def _body_too_large(request: HttpRequest) -> HttpResponse:
    message = BODY_TOO_LARGE.format(
        limit=megabytes(settings.DATA_UPLOAD_MAX_MEMORY_SIZE),
        source_limit=services.MAX_SOURCE_BYTES,
    )
    return render(request, "400.html", {"message": message}, status=413)


@require_GET
def version_page(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    subscription = _function_or_404(pk)
    version = _version_or_404(subscription, number)
    context = {
        "subscription": subscription,
        "version": version,
        "current": subscription.current_function,
        "handlers": selectors.function_handlers(source=version.source),
    }
    return render(request, VERSION_TEMPLATE, context)


@require_POST
def version_restore(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    subscription = _function_or_404(pk)
    old = _version_or_404(subscription, number)
    version, created = services.function_version_save(
        subscription=subscription, source=old.source
    )
    said = RESTORED if created else RESTORE_UNCHANGED
    messages.success(request, said.format(old=old.label, version=version.label))
    return redirect("subscriptions:code", pk=pk)


@require_POST
def code_reset(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = _function_or_404(pk)
    version, created = services.function_version_save(
        subscription=subscription, source=_boilerplate()
    )
    said = RESET if created else RESET_UNCHANGED
    messages.success(request, said.format(version=version.label))
    return redirect("subscriptions:code", pk=pk)
