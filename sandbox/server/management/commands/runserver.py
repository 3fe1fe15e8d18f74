"""`runserver`: Daphne's, delivering only once the port is bound.

A server that cannot bind its port (another sandbox already runs there) exits
non-zero without starting an engine, so it never delivers behind the one that
serves. Under the autoreloader the serving child exits with its parent, so
`kill -9` of the pid a user sees stops the deliveries too.
"""

import os
import signal
import sys
import threading
import time

from daphne.http_protocol import WebRequest
from daphne.management.commands.runserver import Command as DaphneRunserver
from daphne.server import Server
from django.conf import settings
from twisted.internet import reactor

from sandbox.delivery import runtime

# Twisted's default of 50 refuses connections in a burst of a few hundred.
LISTEN_BACKLOG = 1024
PARENT_CHECK_SECONDS = 0.5
PARENT_PID = "SANDBOX_RELOADER_PID"
LISTEN_FAILED = (
    "Error: could not listen on {address}. Is another server running there? "
    "Choose another port, e.g. `manage.py runserver 127.0.0.1:8001`. "
    "Nothing was delivered."
)


class BodyKeepingRequest(WebRequest):
    """Daphne's request, without Twisted's own parse of POST bodies.

    Twisted reads a form body into `request.args` before Daphne sees the
    request; Daphne never reads those (the application gets the body as it
    came), and the parse costs about a millisecond of the server's one core per
    POST (it reads Content-Type with the email package's header parser) and a
    whole second copy of a multipart upload, such as a replay file.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._parsePOSTFormSubmission = False


def _keep_bodies(factory) -> None:
    """Make the factory's connections build BodyKeepingRequest objects, and
    keep no Twisted access log (see _no_access_log)."""
    build = factory.buildProtocol
    factory.log = _no_access_log

    def buildProtocol(addr):
        protocol = build(addr)
        if protocol is not None:
            protocol.requestFactory = BodyKeepingRequest
        return protocol

    factory.buildProtocol = buildProtocol


def _no_access_log(request) -> None:
    """Twisted's access log line, which nothing here reads: the console's
    request lines are Daphne's own. Formatting it and handing it to Twisted's
    logger (which buffers what no observer takes) cost about 7 % of the
    server's core per request under load."""


class SandboxServer(Server):
    """Daphne's server with a deep listen queue, starting the engine once bound."""

    def __init__(self, *, endpoints: list[str], **options):
        options.setdefault("ready_callable", self.serving)
        super().__init__(
            endpoints=[f"{e}:backlog={LISTEN_BACKLOG}" for e in endpoints], **options
        )

    @property
    def bound(self) -> bool:
        return not self.abort_start and len(self.listening_addresses) == len(
            self.endpoints
        )

    def serving(self) -> None:
        # Called before the reactor runs, after every (synchronous) TCP listen:
        # before the first connection is accepted.
        _keep_bodies(self.http_factory)
        if self.bound:
            runtime.start_engine(process=settings.ENGINE_PROCESS)
            # Daphne takes a second or two to close; the engine must not go on
            # sending meanwhile (to the mock it serves, say): it stops first.
            reactor.addSystemEventTrigger("before", "shutdown", runtime.stop_engine)


class Command(DaphneRunserver):
    help = (
        "Serve the sandbox (pages, websockets and the delivery engine) for local use."
    )

    def run(self, **options):
        if options["use_reloader"] and os.environ.get("RUN_MAIN") != "true":
            os.environ[PARENT_PID] = str(os.getpid())
        super().run(**options)

    def server_cls(self, **options) -> SandboxServer:
        self.server = SandboxServer(**options)
        return self.server

    def inner_run(self, *args, **options):
        if os.environ.get("RUN_MAIN") == "true":
            exit_with_parent(int(os.environ.get(PARENT_PID, os.getppid())))
        if threading.current_thread() is threading.main_thread():
            # Under the autoreloader this is a thread, and the reloader's main
            # thread takes Ctrl+C.
            signal.signal(signal.SIGINT, _stop_on_ctrl_c)
        self.server = None
        super().inner_run(*args, **options)
        if self.server is not None and not self.server.bound:
            address = f"[{self.addr}]" if self._raw_ipv6 else self.addr
            self.stderr.write(LISTEN_FAILED.format(address=f"{address}:{self.port}"))
            sys.stderr.flush()
            # As Django's runserver does: under the autoreloader this is a thread.
            os._exit(1)


def _stop_on_ctrl_c(signum, frame) -> None:
    """Ctrl+C stops the server at any moment, its start included.

    Twisted puts its own handler in place only as the reactor starts, and runs
    its startup inside code that catches every exception: a KeyboardInterrupt
    raised there was lost, and the server went on serving. With this handler in
    place first, Twisted keeps it (it replaces only Python's default).
    """
    if reactor.running:
        reactor.callFromThread(reactor.stop)
    else:
        reactor.callWhenRunning(reactor.stop)


def exit_with_parent(parent: int) -> None:
    """End this process when the reloader that started it is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
