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
from sandbox.subscriptions.services import subscription_update
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


LONG_KEY = "sk_live_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def _partial_forms(key: str) -> list[str]:
    """Pieces of the key long enough to matter (a cut may leave its start)."""
    return [key[:12], key[-12:]]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["long", "redirect", "huge"])
def test_a_key_cut_short_or_in_a_redirect_is_masked_too(
    receiver, client, how, settings
):
    url = receiver.url(f"/echo-key/{how}")
    if how == "huge":
        url += f"?limit={settings.RESPONSE_BODY_LIMIT}"
    make_subscription(
        name="Quoting", endpoint_url=url, api_key=LONG_KEY, retry_policy="none"
    )
    out = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "runsuite", "Segment test suite", "--to", "Quoting", stdout=out,
            stderr=out,
        )  # fmt: skip
    delivery = Delivery.objects.order_by("pk").first()
    attempt = delivery.attempts.get()
    if how == "huge":
        # The key straddles the body limit: only its start was kept.
        assert attempt.response_truncated
        assert LONG_KEY[:20] in attempt.response_body
    texts = [
        (out.getvalue(), "the terminal"),
        (delivery.reason, "the delivery's reason"),
        (json.dumps(SuiteRun.objects.get().results), "the results"),
        (
            client.get(reverse("delivery:detail", args=[delivery.pk])).content.decode(),
            "the delivery's page",
        ),
        (
            client.get(
                reverse("suites:run-report", args=[SuiteRun.objects.get().pk])
                + "?download=1"
            ).content.decode(),
            "the report",
        ),
    ]
    for text, where in texts:
        for piece in [*_partial_forms(LONG_KEY), *_forms(LONG_KEY)]:
            assert piece not in text, f"{where} shows {piece!r}"


@pytest.mark.django_db(transaction=True)
def test_an_unchanged_message_quoting_the_key_is_no_change(receiver):
    partner = make_subscription(
        name="Polite", endpoint_url=receiver.url("/echo-key/ok"), api_key=LONG_KEY
    )
    for _ in range(2):
        call_command(
            "runsuite", "Segment test suite", "--to", "Polite", stdout=StringIO()
        )
    first, second = SuiteRun.objects.order_by("pk")
    assert second.compared_with == first
    assert all(result["changes"] == [] for result in second.results)
    # Renamed, it is still the same subscription to compare with.
    subscription_update(subscription=partner, name="Polite, renamed")
    call_command(
        "runsuite", "Segment test suite", "--to", "Polite, renamed", stdout=StringIO()
    )
    assert SuiteRun.objects.order_by("-pk").first().compared_with == second
