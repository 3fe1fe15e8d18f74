"""`manage.py sendevent`: the same pipeline from a terminal, with clear exit codes."""

import base64
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from manage import segment_settings_flag
from sandbox import spec
from sandbox.delivery.management.commands import sendevent
from sandbox.delivery.models import Delivery, Door
from tests.factories import make_subscription

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> tuple[int, str, str]:
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("sendevent", *args, stdout=out, stderr=err)
    except CommandError as error:
        # What manage.py prints and exits with for it.
        err.write(f"CommandError: {error}\n")
        return error.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_sendevent_green_exits_0_and_is_recorded(receiver):
    make_subscription(name="Partner", endpoint_url=receiver.url("/ok"))
    code, out, _ = _run("Order Completed", "--to", "Partner")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"POST {receiver.url('/ok')}"
    assert lines[1].startswith("200 · ") and lines[1].endswith(" ms · green")
    assert lines[2] == "processed (200)"
    delivery = Delivery.objects.get()
    assert delivery.door == Door.CLI
    assert delivery.event_name == "Order Completed"
    assert receiver.received[0].json["event"] == "Order Completed"


@pytest.mark.django_db(transaction=True)
def test_sendevent_yellow_exits_0(receiver):
    make_subscription(name="Partner", endpoint_url=receiver.url("/status/501"))
    code, out, _ = _run("page", "--to", "Partner")
    assert code == 0
    assert "yellow" in out


@pytest.mark.django_db(transaction=True)
def test_sendevent_red_exits_1(receiver):
    make_subscription(name="Partner", endpoint_url=receiver.url("/status/503"))
    code, out, _ = _run("identify", "--to", "Partner")
    assert code == 1
    assert "the endpoint is temporarily down (503)" in out
    assert "Segment would retry at" in out


@pytest.mark.django_db(transaction=True)
def test_sendevent_ad_hoc_endpoint_with_settings(receiver):
    code, _, _ = _run(
        "group",
        "--endpoint",
        receiver.url("/ok"),
        "--api-key",
        "segment",
        "--custom-settings",
        '{"region": "eu"}',
    )
    assert code == 0
    received = receiver.received[0]
    assert received.header("Authorization") == "Basic c2VnbWVudDo="
    settings = json.loads(base64.b64decode(received.header("X-Segment-Settings")))
    assert settings == {"region": "eu"}
    assert Delivery.objects.get().subscription_name == (
        f"ad hoc: {receiver.url('/ok')}"
    )


@pytest.mark.django_db(transaction=True)
def test_sendevent_sends_a_file(receiver, tmp_path):
    make_subscription(name="Partner", endpoint_url=receiver.url("/ok"))
    event = {"type": "track", "event": "From File", "userId": "u-1"}
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    code, _, _ = _run("track", "--to", "Partner", "--file", str(path))
    assert code == 0
    assert receiver.received[0].json["event"] == "From File"
    assert "messageId" in receiver.received[0].json


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trak", "--to", "Partner"], "Unknown type or template 'trak'."),
        (["track", "--to", "Nobody"], "No subscription named 'Nobody'."),
        (
            ["track"],
            "Give --to SUBSCRIPTION_NAME, --endpoint URL with --api-key KEY, or",
        ),
        (["track", "--endpoint", "ftp://x/y", "--api-key", "k"], "must start with"),
        (["track", "--endpoint", "http://x/y"], "--endpoint needs --api-key"),
        (
            [
                "track",
                "--endpoint",
                "http://x/y",
                "--api-key",
                "k",
                "--custom-settings",
                "[1]",
            ],
            "--settings: Custom settings must be a JSON object",
        ),
        (["track", "--to", "Partner", "--file", "/no/such.json"], "Cannot read"),
    ],
)
def test_sendevent_bad_input_exits_2(args, message):
    make_subscription(name="Partner")
    code, _, err = _run(*args)
    assert code == 2
    assert message in err
    assert Delivery.objects.count() == 0


@pytest.mark.django_db
def test_sendevent_invalid_file_json_and_spec_problems_exit_2(tmp_path):
    make_subscription(name="Partner")
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "track",\n "event": }')
    code, _, err = _run("track", "--to", "Partner", "--file", str(broken))
    assert code == 2
    assert "Invalid JSON at line 2" in err
    anonymous = tmp_path / "anonymous.json"
    anonymous.write_text('{"type": "track", "event": "x"}')
    code, _, err = _run("track", "--to", "Partner", "--file", str(anonymous))
    assert code == 2
    assert "Add --force to send it anyway." in err


def test_settings_flag_is_segments_for_sendevent_only():
    assert segment_settings_flag(["m", "sendevent", "--settings", "{}"]) == [
        "m",
        "sendevent",
        "--custom-settings",
        "{}",
    ]
    assert segment_settings_flag(["m", "sendevent", "--settings={}"])[2] == (
        "--custom-settings={}"
    )
    assert segment_settings_flag(["m", "migrate", "--settings", "x"])[2] == "--settings"


@pytest.mark.slow
def test_sendevent_from_a_real_terminal(receiver, tmp_path):
    """The documented command line, in its own process and database."""
    env = {**os.environ, "SANDBOX_DATA_DIR": str(tmp_path)}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    result = subprocess.run(
        [
            *manage,
            "sendevent",
            "track",
            "--endpoint",
            receiver.url("/ok"),
            "--api-key",
            "segment",
            "--settings",
            '{"plan": "pro"}',
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "green" in result.stdout
    settings = receiver.received[0].header("X-Segment-Settings")
    assert json.loads(base64.b64decode(settings)) == {"plan": "pro"}
    bad = subprocess.run(
        [*manage, "sendevent", "track", "--bogus"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2


@pytest.mark.django_db(transaction=True)
def test_sendevent_says_a_repeated_message_id_was_deduplicated(receiver, tmp_path):
    make_subscription(name="Partner", endpoint_url=receiver.url("/ok"))
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps({**spec.sample_event("track"), "messageId": "same-id-twice"})
    )
    assert _run("track", "--to", "Partner", "--file", str(event))[0] == 0
    first = Delivery.objects.get()
    code, out, err = _run("track", "--to", "Partner", "--file", str(event))
    assert code == 1
    assert out == ""
    assert err.startswith(
        "CommandError: Not sent. Deduplicated: messageId 'same-id-twice'"
    )
    assert f"The first: {settings.BASE_URL}/deliveries/{first.pk}/" in err
    assert len(receiver.received) == 1


# A webhook that fails with a long plain-text body, as a partner's stack trace does.
TRACE_LINES = [f"line {n}: at handler (app.js:{n})" for n in range(1, 31)]


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = "\n".join(TRACE_LINES).encode()
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Trace-Id", "trace-42")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def failing_endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def _delivery_page(delivery):
    return f"{settings.BASE_URL}/deliveries/{delivery.pk}/"


@pytest.mark.django_db(transaction=True)
def test_sendevent_failure_prints_the_status_the_body_and_the_delivery(
    failing_endpoint,
):
    make_subscription(name="Partner", endpoint_url=failing_endpoint)
    code, out, err = _run("track", "--to", "Partner")
    assert code == 1
    lines = out.splitlines()
    start = lines.index("Response: 500 Internal Server Error")
    shown = lines[start + 1 : start + 1 + sendevent.BODY_LINES]
    assert shown == [f"  {line}" for line in TRACE_LINES[: sendevent.BODY_LINES]]
    assert lines[start + 1 + sendevent.BODY_LINES] == (
        "  … 20 more lines (the whole body: -v 2 or the delivery's page)"
    )
    delivery = Delivery.objects.get()
    assert lines[-1] == f"Delivery: {_delivery_page(delivery)}"
    assert "CommandError: Not delivered: retrying." in err


@pytest.mark.django_db(transaction=True)
def test_sendevent_without_a_response_says_why_and_links_the_delivery():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    make_subscription(name="Gone", endpoint_url=closed)
    code, out, _ = _run("identify", "--to", "Gone")
    assert code == 1
    assert any(line.startswith("No response: ") for line in out.splitlines())
    assert out.splitlines()[-1] == (
        f"Delivery: {_delivery_page(Delivery.objects.get())}"
    )


@pytest.mark.django_db(transaction=True)
def test_sendevent_green_prints_no_response_body(receiver):
    make_subscription(name="Partner", endpoint_url=receiver.url("/ok"))
    code, out, _ = _run("track", "--to", "Partner")
    assert code == 0
    assert "Response:" not in out
    assert "Delivery:" not in out


@pytest.mark.django_db(transaction=True)
def test_sendevent_verbosity_2_prints_the_whole_request_and_response(
    failing_endpoint,
):
    make_subscription(
        name="Partner", endpoint_url=failing_endpoint, api_key="secret-key-1234"
    )
    code, out, _ = _run("track", "--to", "Partner", "-v", "2")
    assert code == 1
    delivery = Delivery.objects.get()
    request_at = out.index(f"\nPOST {failing_endpoint}\n")
    response_at = out.index("\n500 Internal Server Error\n")
    request = out[request_at:response_at]
    assert "\nUser-Agent: Segment.io/1.0\n" in request
    assert "\nContent-Type: application/json\n" in request
    # The API key stays masked, as on every page.
    assert "\nAuthorization: Basic ••••••••\n" in request
    assert "secret-key-1234" not in out
    assert base64.b64encode(b"secret-key-1234:").decode() not in out
    body = request.split("\n\n", 1)[1].strip()
    assert json.loads(body)["messageId"] == delivery.message_id
    response = out[response_at:]
    assert "\nX-Trace-Id: trace-42\n" in response
    assert "\n".join(TRACE_LINES) in response
    assert "more lines" not in out
    assert out.splitlines()[-1] == f"Delivery: {_delivery_page(delivery)}"


@pytest.mark.django_db(transaction=True)
def test_sendevent_verbosity_2_prints_the_exchange_when_delivered_too(receiver):
    make_subscription(name="Partner", endpoint_url=receiver.url("/ok"))
    code, out, _ = _run("identify", "--to", "Partner", "-v", "2")
    assert code == 0
    assert "\n200 OK\n" in out
    assert '{"success": true}' in out


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("source", "library"),
    [
        ("analytics.js-npm", "analytics.js"),
        ("ios", "analytics-swift"),
        ("android", "analytics-kotlin"),
        ("server", "analytics-python"),
        ("node", "@segment/analytics-node"),
        ("node-classic", "analytics-node"),
    ],
)
def test_sendevent_generates_each_sources_sample(receiver, source, library):
    make_subscription(name="Partner", endpoint_url=receiver.url("/ok"))
    code, _, _ = _run("Order Completed", "--to", "Partner", "--source", source)
    assert code == 0
    sent = receiver.received[0].json
    assert sent["context"]["library"]["name"] == library
    assert sent["messageId"] == Delivery.objects.get().message_id


@pytest.mark.django_db
def test_sendevent_a_page_from_an_app_is_bad_input():
    make_subscription(name="Partner")
    code, _, err = _run("page", "--to", "Partner", "--source", "ios")
    assert code == 2
    assert "analytics-swift has no page call" in err
    assert Delivery.objects.count() == 0
