"""`manage.py sendevent`: the same pipeline from a terminal, with clear exit codes."""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from manage import segment_settings_flag
from sandbox import spec
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
        (["track"], "Give --to SUBSCRIPTION_NAME, or --endpoint URL"),
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
