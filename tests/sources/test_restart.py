"""Requests stored by a server that stopped before expanding them are expanded
by the next server on the same data directory: nothing answered 200 is lost."""

import json
import uuid

import pytest
from django.utils import timezone

from sandbox.sources import services, spool
from tests.receiver import Receiver
from tests.server import Server
from tests.sources.conftest import received_by_user, wait_for

pytestmark = pytest.mark.slow


def test_a_new_server_expands_what_the_last_one_stored(tmp_path, settings):
    receiver = Receiver().start()
    server = Server(tmp_path)
    try:
        server.prepare()
        server.manage(
            "subscription",
            "create",
            "Hook",
            "--endpoint",
            receiver.url("/ok"),
            "--api-key",
            "k",
        )
        server.manage("source", "create", "App", "--to", "Hook", "--write-key", "wk")
        # What a server stored and answered 200 before it was stopped.
        settings.SOURCES_SPOOL_PATH = tmp_path / spool.FILE_NAME
        user = f"restart-{uuid.uuid4()}"
        body = {"batch": [{"type": "track", "event": "Kept", "userId": user}]}
        request = services.ArrivedRequest(
            endpoint="batch",
            write_key="wk",
            body=json.dumps(body),
            refusal="",
            client_ip="127.0.0.1",
            user_agent="test",
            received_at=timezone.now(),
        )
        spool.append(spool.connection(), [request.row()])
        spool.disconnect()

        server.start()
        [arrived] = wait_for(lambda: received_by_user(receiver, user))
        assert arrived.json["event"] == "Kept"
        assert server.query(
            "SELECT status FROM sources_ingestedevent WHERE user_id = ?", user
        ) == [("accepted",)]
    finally:
        server.stop()
        receiver.stop()
