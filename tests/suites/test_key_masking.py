"""An endpoint that echoes the API key it refuses, in every form it can: the key
shows nowhere a suite run's results go (terminal, JUnit, JSON, HTML report,
pages), nor in the delivery's reason and response pane."""

import base64
import html
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from sandbox.delivery.models import Delivery
from sandbox.display import mask_secret_everywhere, mask_secret_in
from sandbox.suites import fileformat
from sandbox.suites.models import SuiteRun
from tests.factories import make_subscription

# Quotes and an ampersand: escaped differently in HTML, JSON and a URL.
API_KEY = 'sk_live_S3CRET&<"key">_0042'


def _forms(key: str) -> list[str]:
    return [
        key,
        html.escape(key),
        json.dumps(key)[1:-1],
        base64.b64encode(f"{key}:".encode()).decode(),
        base64.b64encode(f"{key}:".encode()).decode().rstrip("="),
    ]


def _assert_hidden(text: str, where: str) -> None:
    for form in _forms(API_KEY):
        assert form not in text, f"{where} shows the key as {form!r}"


def test_every_written_form_of_a_secret_is_masked():
    text = " | ".join(_forms(API_KEY)) + " | keep this"
    shown = mask_secret_in(text, API_KEY)
    _assert_hidden(shown, "mask_secret_in")
    assert shown.endswith("| keep this")
    assert shown.count("••••••••") == 5
    # Short secrets are not looked for: "k" would mask every k.
    assert mask_secret_in("keep kk", "k") == "keep kk"
    assert mask_secret_everywhere(
        {"a": [API_KEY, 3, None], "b": {"c": f"x{API_KEY}y"}}, API_KEY
    ) == {"a": ["••••••••0042", 3, None], "b": {"c": "x••••••••0042y"}}


@pytest.mark.django_db(transaction=True)
def test_an_echoed_key_shows_nowhere_a_suite_run_goes(
    receiver, tmp_path, client, settings
):
    settings.SUITES_DIR = tmp_path
    make_subscription(
        name="Echoing partner",
        endpoint_url=receiver.url("/echo-key"),
        api_key=API_KEY,
        retry_policy="none",
    )
    suite = tmp_path / "echo.suite.json"
    suite.write_text(
        json.dumps(
            {
                "format": fileformat.FORMAT,
                "name": "Echo checks",
                "steps": [
                    {
                        "name": "Order Completed",
                        "event": {
                            "type": "track",
                            "event": "Order Completed",
                            "userId": "{{userId}}",
                        },
                        "expect": {"status": 200},
                    }
                ],
            }
        )
    )
    junit, result, report = (tmp_path / n for n in ("j.xml", "r.json", "r.html"))
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as failed:
        call_command(
            "runsuite",
            "Echo checks",
            "--to",
            "Echoing partner",
            "--junit",
            str(junit),
            "--json",
            str(result),
            "--report",
            str(report),
            "-v",
            "2",
            stdout=out,
            stderr=err,
        )
    assert failed.value.returncode == 1
    # The endpoint did echo it: the raw response is kept as it came.
    delivery = Delivery.objects.get()
    assert json.dumps(API_KEY)[1:-1] in delivery.attempts.get().response_body
    assert "Invalid API key" in out.getvalue()
    for text, where in (
        (out.getvalue() + err.getvalue(), "the terminal"),
        (junit.read_text(), "JUnit"),
        (result.read_text(), "the JSON result"),
        (report.read_text(), "the HTML report"),
        (delivery.reason, "the delivery's reason"),
    ):
        _assert_hidden(text, where)
    suite_run = SuiteRun.objects.get()
    _assert_hidden(json.dumps(suite_run.results), "the stored results")
    for url in (
        reverse("suites:run-report", args=[suite_run.pk]),
        reverse("suites:run-report", args=[suite_run.pk]) + "?download=1",
        reverse("suites:named") + "?name=Echo+checks",
        reverse("delivery:detail", args=[delivery.pk]),
        reverse("delivery:history"),
    ):
        page = client.get(url)
        assert page.status_code == 200, url
        _assert_hidden(page.content.decode(), url)
