"""The suite pages: the list, import all or nothing, export, a run's report."""

import html
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from sandbox.suites import fileformat
from sandbox.suites.builtin import SEGMENT_TEST_SUITE
from sandbox.suites.models import Suite, SuiteRun
from tests.factories import make_subscription

API_KEY = "views-secret-key-5555"


def _text(name="Checkout", steps=None) -> str:
    return json.dumps(
        {
            "format": fileformat.FORMAT,
            "name": name,
            "steps": steps or [{"type": "identify"}],
        }
    )


@pytest.mark.django_db
def test_the_list_shows_every_suite(client, tmp_path, settings):
    settings.SUITES_DIR = tmp_path
    (tmp_path / "repo.suite.json").write_text(_text(name="From the repo"))
    (tmp_path / "bad.suite.json").write_text("{")
    response = client.get(reverse("suites:list"))
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert SEGMENT_TEST_SUITE in page
    assert "From the repo" in page
    assert "bad.suite.json is not listed: " in page


@pytest.mark.django_db
def test_import_stores_a_valid_file_and_redirects(client):
    response = client.post(reverse("suites:import"), {"text": _text()})
    assert response.status_code == 302
    assert Suite.objects.get().name == "Checkout"


@pytest.mark.django_db
def test_import_lists_each_problem_and_stores_nothing(client):
    text = _text(steps=[{"type": "track", "expect": {"status": 42}}, {"type": "x"}])
    response = client.post(reverse("suites:import"), {"text": text})
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "steps[0].expect.status: must be an integer 100-599" in page
    assert "steps[1].type: must be one of" in page
    # What was pasted stays in the form.
    assert '"expect": {"status": 42}' in page
    assert not Suite.objects.exists()


@pytest.mark.django_db
def test_export_gives_the_file(client):
    response = client.get(reverse("suites:export"), {"name": SEGMENT_TEST_SUITE})
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        'attachment; filename="Segment-test-suite.suite.json"'
    )
    suite = fileformat.parse_suite(response.content.decode())
    assert suite.name == SEGMENT_TEST_SUITE
    assert client.get(reverse("suites:export"), {"name": "nope"}).status_code == 404


def _report_body(html: str) -> str:
    return html.split('<article class="suite-report"', 1)[1].split("</article>")[0]


@pytest.mark.django_db(transaction=True)
def test_a_run_has_a_report_page_with_keys_masked(client, receiver):
    make_subscription(name="P", endpoint_url=receiver.url("/ok"), api_key=API_KEY)
    call_command("runsuite", SEGMENT_TEST_SUITE, "--to", "P", stdout=StringIO())
    suite_run = SuiteRun.objects.get()
    response = client.get(reverse("suites:run-report", args=[suite_run.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Ready for review" in page
    # The permalink is a page of the app: its layout and nav, printable.
    assert "<nav>" in page
    assert 'class="suite-report"' in page
    assert "/static/sandbox/report.css" in page
    assert API_KEY not in page
    listed = client.get(reverse("suites:list")).content.decode()
    assert reverse("suites:run-report", args=[suite_run.pk]) in listed
    assert client.get(reverse("suites:run-report", args=[999])).status_code == 404
    download = reverse("suites:run-report", args=[suite_run.pk]) + "?download=1"
    assert download in listed
    downloaded = client.get(download)
    assert downloaded["Content-Disposition"] == (
        f'attachment; filename="Segment-test-suite-run-{suite_run.pk}.html"'
    )
    # The download is one self-contained file: the same report body, the
    # stylesheet inline, no scripts and no links to the app's assets.
    file = downloaded.content.decode()
    assert "<script" not in file
    assert "<nav>" not in file
    assert "/static/" not in file
    assert ".suite-report .verdict" in file
    assert API_KEY not in file
    assert _report_body(file) == _report_body(page)


@pytest.mark.django_db(transaction=True)
def test_a_run_started_from_the_page_is_read_once_it_settles(
    client, receiver, deliver_due
):
    subscription = make_subscription(name="P", endpoint_url=receiver.url("/ok"))
    response = client.post(
        reverse("suites:run"),
        {"suite": SEGMENT_TEST_SUITE, "subscription": subscription.pk,
         "concurrency": "1"},
    )  # fmt: skip
    suite_run = SuiteRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("suites:run-report", args=[suite_run.pk])
    running = client.get(response["Location"]).content.decode()
    # While it runs, the page follows the run's progress live and reloads into
    # the report once the progress it is pushed says the run has settled.
    assert "Running Segment test suite" in running
    assert 'id="run-progress"' in running
    assert "data-reload-when-settled" in running
    assert " data-settled" not in running
    deliver_due()
    page = client.get(response["Location"]).content.decode()
    assert "Ready for review" in page
    suite_run.refresh_from_db()
    assert suite_run.passed


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"suite": "nope", "concurrency": "1"}, "No suite named 'nope'"),
        ({"suite": SEGMENT_TEST_SUITE, "concurrency": "0"}, "Concurrency must be"),
    ],
)
def test_a_run_that_cannot_start_says_why(client, data, words):
    subscription = make_subscription(name="P")
    response = client.post(
        reverse("suites:run"), {"subscription": subscription.pk, **data}
    )
    assert response.status_code == 400
    assert words in html.unescape(response.content.decode())
    assert not SuiteRun.objects.exists()
