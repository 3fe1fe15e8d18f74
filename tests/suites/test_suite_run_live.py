"""A running suite's page: its step table filling in live with the run's
progress, and runs read once settled even if nobody opens their report."""

import json
from dataclasses import dataclass

import pytest
from aiohttp import web
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from sandbox.delivery.engine import Engine
from sandbox.delivery.services import Target
from sandbox.routing import websocket_application
from sandbox.suites import fileformat, selectors, services
from sandbox.suites.broadcast import run_steps_html
from sandbox.suites.models import SuiteRun, SuiteSource
from tests.factories import make_subscription
from tests.receiver import Receiver

ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
API_KEY = "live-secret-key-24680"


def _found(steps) -> selectors.FoundSuite:
    document = {"format": fileformat.FORMAT, "name": "Live", "steps": steps}
    suite = fileformat.suite_from_document(document)
    return selectors.FoundSuite(suite=suite, source=SuiteSource.FILE)


def _start(endpoint_url: str) -> SuiteRun:
    subscription = make_subscription(endpoint_url=endpoint_url, api_key=API_KEY)
    return services.suite_run_start(
        found=_found(
            [
                {"name": "First", "event": {"type": "track", "event": "A"}},
                {"name": "<b>Second</b>", "event": {"type": "track", "event": "B"}},
            ]
        ),
        target=Target.of(subscription),
    )


@dataclass
class KeyEcho(Receiver):
    """An endpoint that echoes the API key it was sent in its error."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        return web.json_response({"message": f"bad key {API_KEY}"}, status=401)


async def _deliver(*ids: int) -> None:
    engine = Engine()
    try:
        await engine.run_due(only_ids=list(ids))
    finally:
        await engine.close()


@pytest.mark.django_db(transaction=True)
async def test_the_step_table_fills_in_with_each_progress_push(receiver, watcher):
    suite_run = await database_sync_to_async(_start)(receiver.url("/status/400"))
    first, second = suite_run.steps
    socket = WebsocketCommunicator(
        websocket_application, f"/ws/runs/{suite_run.run_id}/", headers=ORIGIN
    )
    assert (await socket.connect())[0]
    await watcher.tick()
    html = await socket.receive_from(timeout=2)
    # One push: the run's counts, then the suite's step table.
    assert html.startswith('<p id="run-progress"')
    assert '<section id="suite-run-steps"' in html
    assert "Step 1 of 2: First (pending)" in html
    assert "0 of 2 done" in html

    await _deliver(first["delivery_id"])
    await watcher.tick()
    html = await socket.receive_from(timeout=2)
    assert "Step 2 of 2" in html
    assert "1 of 2 done" in html
    row = html.split('id="step-row-1"', 1)[1].split("</tr>", 1)[0]
    assert "<td>400</td>" in row
    assert '<span class="badge red">red</span>' in row
    assert " ms</td>" in row
    assert "<td>answered 400 on purpose</td>" in row
    assert "fail" in row
    # Endpoint and suite text is escaped, never markup.
    assert "&lt;b&gt;Second&lt;/b&gt;" in html
    assert "<b>Second</b>" not in html

    await _deliver(second["delivery_id"])
    await watcher.tick()
    html = await socket.receive_from(timeout=2)
    assert " data-settled" in html
    assert "All 2 steps have their final outcome" in html
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
def test_the_running_page_shows_the_step_table(client, receiver):
    suite_run = _start(receiver.url("/ok"))
    page = client.get(reverse("suites:run-report", args=[suite_run.pk]))
    html = page.content.decode()
    assert 'id="suite-run-steps"' in html
    assert "Step 1 of 2: First (pending)" in html
    assert 'id="step-row-2"' in html


@pytest.mark.django_db(transaction=True)
def test_an_echoed_api_key_is_masked_in_the_live_table(deliver_due):
    echo = KeyEcho().start()
    try:
        suite_run = _start(echo.url("/echo"))
        deliver_due([suite_run.steps[0]["delivery_id"]])
        html = run_steps_html(suite_run.run_id)
    finally:
        echo.stop()
    assert "bad key " in html
    assert API_KEY not in html


@pytest.mark.django_db
def test_a_run_of_another_door_gets_no_step_table():
    assert run_steps_html(123456) == ""


@pytest.mark.django_db(transaction=True)
def test_a_settled_run_is_read_when_the_list_is_viewed(client, receiver, deliver_due):
    subscription = make_subscription(name="P", endpoint_url=receiver.url("/ok"))
    services.suite_import(
        text=json.dumps(
            {
                "format": fileformat.FORMAT,
                "name": "Two",
                "steps": [{"type": "track"}, {"type": "identify"}],
            }
        )
    )
    response = client.post(
        reverse("suites:run"),
        {"suite": "Two", "subscription": subscription.pk, "concurrency": "1"},
    )
    assert response.status_code == 302
    suite_run = SuiteRun.objects.get()
    # Not settled yet: the list shows it running and leaves it unread.
    listed = client.get(reverse("suites:list")).content.decode()
    assert "running" in listed
    suite_run.refresh_from_db()
    assert suite_run.passed is None
    while deliver_due():
        pass
    # Nobody opened the report; the list reads the run once it has settled.
    listed = client.get(reverse("suites:list")).content.decode()
    suite_run.refresh_from_db()
    assert suite_run.passed is True
    assert suite_run.verdict == "Every expectation held (2 steps)"
    assert "Every expectation held (2 steps)" in listed
    finished_at = suite_run.finished_at
    # Read once: another look neither reads it again nor changes it.
    assert services.suite_runs_finish_settled() == 0
    suite_run.refresh_from_db()
    assert suite_run.finished_at == finished_at
