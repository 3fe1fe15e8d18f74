"""Refuses oversized or non-UTF-8 request bodies in the sandbox's own words."""

import codecs
import os
from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin
from whitenoise.middleware import WhiteNoiseMiddleware

BODY_TOO_LARGE = (
    "The request is {size} and the sandbox accepts at most {limit} per form; "
    "an event may be at most 32 KB (Segment's limit)."
)
FORM_NOT_UTF8 = "Forms must be sent as UTF-8 (got charset {charset})."
NUMBER_TOO_LARGE = (
    "A number in the request is too large to name anything the sandbox stores "
    "(ids go up to 9223372036854775807)."
)

FORM_CONTENT_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data"}
)
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
MEGABYTE = 1024 * 1024


def megabytes(size: int) -> str:
    return f"{size / MEGABYTE:.1f}".removesuffix(".0") + " MB"


def body_size(request: HttpRequest) -> int:
    """The body's length as announced, or as buffered when nothing was announced."""
    announced = request.META.get("CONTENT_LENGTH")
    if announced and announced.isascii() and announced.isdigit():
        return int(announced)
    stream = getattr(request, "_stream", None)
    if stream is not None and getattr(stream, "seekable", lambda: False)():
        size = stream.seek(0, os.SEEK_END)
        stream.seek(0)
        return size
    return 0


def _is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name == "utf-8"
    except LookupError:
        return False


class RequestBodyGuardMiddleware(MiddlewareMixin):
    """Reads the body before CSRF does, so a body Django would refuse with its own
    page (too large, or a form in another charset) gets a sentence instead.

    Views that answer such bodies themselves set `reads_own_body = True`.
    """

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable,
        view_args: tuple,
        view_kwargs: dict,
    ) -> HttpResponse | None:
        if request.method not in METHODS_WITH_BODY:
            return None
        if getattr(view_func, "reads_own_body", False):
            return None
        charset = request.content_params.get("charset")
        if request.content_type in FORM_CONTENT_TYPES and charset is not None:
            if not _is_utf8(charset):
                return _refusal(request, FORM_NOT_UTF8.format(charset=charset), 400)
            # Django reads only the exact spelling "utf-8"; utf8, UTF8... are too.
            request.encoding = "utf-8"
        try:
            request.body  # noqa: B018 - reading is the check
        except RequestDataTooBig:
            message = BODY_TOO_LARGE.format(
                size=megabytes(body_size(request)),
                limit=megabytes(settings.DATA_UPLOAD_MAX_MEMORY_SIZE),
            )
            return _refusal(request, message, 413)
        return None

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        # A form's choice of a row by an id past SQLite's integers fails as the
        # query is bound, before any "no such choice" check can answer it.
        if isinstance(exception, OverflowError):
            return _refusal(request, NUMBER_TOO_LARGE, 400)
        return None


def _refusal(request: HttpRequest, message: str, status: int) -> HttpResponse:
    if request.htmx:
        # The page shows a short plain-text answer in its error banner.
        return HttpResponse(message, status=status, content_type="text/plain")
    return render(request, "400.html", {"message": message}, status=status)


class StaticFilesMiddleware:
    """WhiteNoise, usable on the async path too.

    WhiteNoise's middleware is sync only: in an async middleware chain Django would
    run it in the sync thread and the rest of the chain (an async view that waits,
    such as a slow mock endpoint) inside it, holding that thread for the wait. Here
    the async path looks the file up and serves it in the sync thread, and hands
    anything else on without leaving the event loop.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable):
        self.get_response = get_response
        self.whitenoise = WhiteNoiseMiddleware(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        return self.whitenoise(request)

    def _static_file(self, path: str):
        if self.whitenoise.autorefresh:
            return self.whitenoise.find_file(path)
        return self.whitenoise.files.get(path)

    async def _acall(self, request: HttpRequest):
        if request.path_info.startswith(self.whitenoise.static_prefix):
            static_file = await sync_to_async(self._static_file)(request.path_info)
            if static_file is not None:
                return await sync_to_async(self.whitenoise.serve)(static_file, request)
        return await self.get_response(request)
