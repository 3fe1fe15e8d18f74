"""Functions from a terminal: `sendevent --function FILE.js`, `--to` a function
subscription, and `subscription create --function`."""

import base64
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from sandbox.delivery.models import Delivery
from sandbox.functions.models import FunctionVersion
from sandbox.functions.services import boilerplate
from sandbox.subscriptions.models import Subscription

ROOT = Path(__file__).resolve().parents[2]

PARTNER_FUNCTION = """\
// What a partner runs on Segment: POST each track event to their API.
async function onTrack(event, settings) {
  console.log('forwarding', event.event);
  let response;
  try {
    response = await fetch(settings.endpoint, {
      method: 'POST',
      headers: {
        Authorization: `Basic ${btoa(settings.apiKey + ':')}`,
        'Content-Type': 'application/json'
      },
      body: JSON.stringify(event)
    });
  } catch (error) {
    throw new RetryError(error.message);
  }
  if (response.status >= 500 || response.status === 429) {
    throw new RetryError(`Failed with ${response.status}`);
  }
  return response.status;
}
"""


def _call(command: str, *args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), f"{err.getvalue()}{error}"
    return 0, out.getvalue(), err.getvalue()


def _file(tmp_path: Path, source: str, name: str = "function.js") -> str:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_sendevent_runs_a_function_file_from_a_real_terminal(receiver, tmp_path):
    env = {**os.environ, "SANDBOX_DATA_DIR": str(tmp_path)}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    result = subprocess.run(
        [
            *manage,
            "sendevent",
            "Order Completed",
            "--function",
            _file(tmp_path, PARTNER_FUNCTION),
            "--api-key",
            "partner-key",
            "--settings",
            f'{{"endpoint": "{receiver.url("/ok")}"}}',
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("onTrack · v1 · ") and lines[0].endswith(" · green")
    assert "Callback Return:" in lines
    assert lines[lines.index("Callback Return:") + 1] == "  200"
    assert "  [log] forwarding Order Completed" in lines
    assert f"  POST {receiver.url('/ok')} → 200" in "\n".join(lines)
    [received] = receiver.received
    expected = base64.b64encode(b"partner-key:").decode()
    assert received.header("Authorization") == f"Basic {expected}"
    assert received.json["event"] == "Order Completed"


@pytest.mark.django_db(transaction=True)
def test_a_red_function_exits_1_and_says_why(tmp_path):
    path = _file(tmp_path, "async function onTrack() { throw new Error('nope') }")
    code, out, err = _call("sendevent", "track", "--function", path)
    assert code == 1
    assert "Bad Request: Error: nope" in out
    assert "Not delivered" in err


@pytest.mark.django_db(transaction=True)
def test_a_yellow_function_exits_0(tmp_path):
    path = _file(tmp_path, "async function onIdentify() {}")
    code, out, _ = _call("sendevent", "track", "--function", path)
    assert code == 0, out
    assert "Unsupported Event Type" in out


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("async function onTrack( {\n", "Unexpected end of input (line 2, column 1)"),
        ("\n\nasync function onTrack() { return }}\n", "line 3"),
        ("   \n", "empty"),
    ],
)
def test_a_function_that_cannot_run_exits_2_before_anything_is_sent(
    tmp_path, source, says
):
    path = _file(tmp_path, source)
    code, _, err = _call("sendevent", "track", "--function", path)
    assert code == 2
    assert says in err
    assert not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_bad_function_arguments_exit_2(tmp_path):
    code, _, err = _call("sendevent", "track", "--function", str(tmp_path / "no.js"))
    assert code == 2
    assert "cannot read it" in err
    binary = tmp_path / "binary.js"
    binary.write_bytes(b"\xff\xfe\x00")
    assert _call("sendevent", "track", "--function", str(binary))[0] == 2
    path = _file(tmp_path, "async function onTrack() {}")
    code, _, err = _call("sendevent", "track", "--function", path, "--to", "Anything")
    assert code == 2
    assert "not two" in err


@pytest.mark.django_db(transaction=True)
def test_subscription_create_with_a_function_keeps_versions(receiver, tmp_path):
    path = _file(tmp_path, PARTNER_FUNCTION)
    settings = f'{{"endpoint": "{receiver.url("/ok")}"}}'
    code, out, err = _call(
        "subscription",
        "create",
        "Partner function",
        "--function",
        path,
        "--api-key",
        "k",
        "--custom-settings",
        settings,
    )
    assert code == 0, err
    assert "function function.js (v1)" in out
    subscription = Subscription.objects.get(name="Partner function")
    assert subscription.kind == "function"
    assert subscription.current_function.number == 1

    # The same file again makes no version; a changed one does.
    assert (
        _call(
            "subscription",
            "create",
            "Partner function",
            "--function",
            path,
            "--api-key",
            "k",
        )[0]
        == 0
    )
    assert FunctionVersion.objects.filter(subscription=subscription).count() == 1
    Path(path).write_text(PARTNER_FUNCTION.replace("forwarding", "sending"))
    assert (
        _call(
            "subscription",
            "create",
            "Partner function",
            "--function",
            path,
            "--api-key",
            "k",
        )[0]
        == 0
    )
    assert subscription.current_function.number == 2

    # A syntax error saves nothing.
    Path(path).write_text("async function onTrack( {")
    code, _, err = _call(
        "subscription",
        "create",
        "Partner function",
        "--function",
        path,
        "--api-key",
        "k",
    )
    assert code == 2
    assert "line 1" in err
    assert subscription.current_function.number == 2

    # --to runs the stored function's newest version.
    code, out, err = _call("sendevent", "track", "--to", "Partner function")
    assert code == 0, out + err
    assert "onTrack · v2" in out
    assert "[log] sending" in out
    assert len(receiver.received) == 1


@pytest.mark.django_db(transaction=True)
def test_subscription_create_needs_an_endpoint_or_a_function(tmp_path):
    code, _, err = _call("subscription", "create", "X", "--api-key", "k")
    assert code == 2
    assert "--endpoint URL or --function" in err
    path = _file(tmp_path, "async function onTrack() {}")
    code, _, err = _call(
        "subscription",
        "create",
        "X",
        "--api-key",
        "k",
        "--function",
        path,
        "--endpoint",
        "http://127.0.0.1:9/",
    )
    assert code == 2
    assert not Subscription.objects.filter(name="X").exists()


@pytest.mark.django_db(transaction=True)
def test_segment_test_suite_against_the_boilerplate(receiver, tmp_path):
    """Segment's starting function, pointed at a real endpoint, passes the
    suite Segment's reviewers run: sent events green, the rest yellow."""
    path = _file(tmp_path, boilerplate(receiver.url("/ok")))
    assert (
        _call(
            "subscription",
            "create",
            "Boilerplate",
            "--function",
            path,
            "--api-key",
            "k",
        )[0]
        == 0
    )
    code, out, err = _call("runsuite", "Segment test suite", "--to", "Boilerplate")
    assert code == 0, out + err
    types = sorted(r.json["type"] for r in receiver.received)
    # Only onTrack and onIdentify send; every other type is EventNotSupported.
    assert set(types) == {"identify", "track"}
    expected = base64.b64encode(b"k:").decode()
    assert {r.header("Authorization") for r in receiver.received} == {
        f"Basic {expected}"
    }
    assert "yellow" in out


@pytest.mark.django_db(transaction=True)
def test_a_function_that_throws_is_a_junit_failure_not_an_error(tmp_path):
    path = _file(tmp_path, "async function onTrack() { throw new Error('no') }")
    _call("subscription", "create", "Thrower", "--function", path, "--api-key", "k")
    out_xml = tmp_path / "junit.xml"
    code, _, _ = _call(
        "runsuite", "Segment test suite", "--to", "Thrower", "--junit", str(out_xml)
    )
    assert code == 1
    text = out_xml.read_text()
    assert 'errors="0"' in text
    assert "<failure" in text and "Bad Request: Error: no" in text
