"""ASGI entry point: the tracking API and the mock endpoint first, other HTTP
through Django, websockets through Channels.

Importing it starts nothing: `runserver` starts the engine once its port is bound,
and any other server's first request does (see sandbox.delivery.runtime).
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox.settings")
django.setup(set_prefix=False)

from sandbox.server.handler import SandboxASGIHandler  # noqa: E402

django_asgi_app = SandboxASGIHandler()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from sandbox.delivery import runtime  # noqa: E402
from sandbox.mock.receiver import MockReceiver  # noqa: E402
from sandbox.routing import websocket_application  # noqa: E402
from sandbox.sources.api import TrackingAPI  # noqa: E402

# The tracking API (/v1/identify, /v1/batch, ...) and the mock endpoint
# (/mock/<slug>/) are answered ahead of Django: APIs for machines, not pages.
application = runtime.StartLive(
    TrackingAPI(
        MockReceiver(
            ProtocolTypeRouter(
                {"http": django_asgi_app, "websocket": websocket_application}
            )
        )
    )
)
