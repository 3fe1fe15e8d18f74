"""Django's ASGI handler, with plain views in one thread and one switch.

Django's own handler gives each request its own sync thread (a new thread and a
new SQLite connection per request) and, for a sync view, switches to it and back
once for every middleware hook: about a dozen switches per request. Here a plain
(sync) view runs the whole middleware chain in sync mode inside one switch to the
process's one sync thread, which keeps its database connection, as a WSGI worker
would; plain views run one at a time, in arrival order. An async view (the mock
endpoint, which may wait before answering) keeps Django's async chain, so its
wait holds no thread (every middleware in the chain is async-capable).
"""

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.urls import Resolver404, get_resolver


class SyncChainHandler(BaseHandler):
    def __init__(self):
        super().__init__()
        self.load_middleware(is_async=False)


class SandboxASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        self.sync_handler = SyncChainHandler()

    async def __call__(self, scope, receive, send):
        # Django's handler wraps this in a ThreadSensitiveContext, which is what
        # gives every request a thread of its own; without it, sync code runs in
        # the one shared sync thread.
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP here, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def get_response_async(self, request):
        if _serves_async(request.path_info):
            return await super().get_response_async(request)
        return await sync_to_async(self.sync_handler.get_response)(request)


def _serves_async(path: str) -> bool:
    try:
        match = get_resolver().resolve(path)
    except Resolver404:
        return False
    return iscoroutinefunction(match.func)
