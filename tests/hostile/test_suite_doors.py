"""The hostile corpus through the suite doors: a suite file imported, and given to
`runsuite`. No traceback, a specific message, and nothing stored or sent for
what is refused."""

import html
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from sandbox.delivery.models import Delivery, Run
from sandbox.suites import fileformat, services
from sandbox.suites.models import Suite, SuiteRun
from tests.hostile.corpus import SUITE_FILES

IDS = [case.name for case in SUITE_FILES]
AD_HOC = ["--endpoint", "http://127.0.0.1:9/", "--api-key", "k"]


@pytest.mark.django_db
@pytest.mark.parametrize("case", SUITE_FILES, ids=IDS)
def test_a_suite_import_refuses_or_stores_every_text(case):
    try:
        stored = services.suite_import(text=case.text)
    except fileformat.SuiteFileError as error:
        assert case.refused, error.problems
        assert case.refused in str(error)
        assert all(problem.strip() for problem in error.problems)
        assert not Suite.objects.exists()
        return
    assert not case.refused
    assert stored.name == "Hostile"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", SUITE_FILES, ids=IDS)
def test_runsuite_refuses_or_runs_every_file(tmp_path, receiver, case):
    path = tmp_path / "hostile.suite.json"
    path.write_text(case.text, encoding="utf-8")
    err = io.StringIO()
    try:
        call_command(
            "runsuite",
            str(path),
            "--endpoint",
            receiver.url("/ok"),
            "--api-key",
            "k",
            stdout=io.StringIO(),
            stderr=err,
        )
        code, said = 0, err.getvalue()
    except CommandError as error:
        code, said = error.returncode, err.getvalue() + str(error)
    assert "Traceback" not in said
    if case.refused:
        assert code == 2
        assert case.refused in said
        assert str(path) in said
        assert not Delivery.objects.exists()
        assert not Run.objects.exists()
    else:
        assert code == 0, said
        assert SuiteRun.objects.get().passed


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    ["x" * 5000, "a\x00b", "\ud800", "<script>", "", "a/" * 3000, "x" * 5000 + ".json"],
    ids=["long", "nul", "surrogate", "html", "empty", "deep-path", "long-file"],
)
def test_runsuite_answers_any_suite_name_with_exit_2(name):
    err = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(
            "runsuite", name, "--endpoint", "http://127.0.0.1:9/", "--api-key", "k",
            stdout=io.StringIO(), stderr=err,
        )  # fmt: skip
    assert raised.value.returncode == 2
    assert "No suite named" in str(raised.value) or "Cannot read" in str(raised.value)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["--to", "\ud800"],
        ["--to", "x" * 5000],
        ["--endpoint", "http://127.0.0.1:9/\ud800", "--api-key", "k"],
        ["--endpoint", "http://127.0.0.1:9/", "--api-key", "k\udfff"],
        [*AD_HOC, "--custom-settings", "[" * 5000],
        [*AD_HOC, "--concurrency", "1e9"],
        [*AD_HOC, "--timeout", "-1"],
    ],
    ids=["to-surrogate", "to-long", "url-surrogate", "key-surrogate", "settings-deep",
         "concurrency-float", "timeout-negative"],
)  # fmt: skip
def test_runsuite_answers_any_target_arguments_with_exit_2(args):
    with pytest.raises(CommandError) as raised:
        call_command(
            "runsuite", "Segment test suite", *args, stdout=io.StringIO(),
            stderr=io.StringIO(),
        )  # fmt: skip
    assert raised.value.returncode == 2
    assert not Delivery.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("case", SUITE_FILES, ids=IDS)
def test_the_import_page_refuses_or_stores_every_text(client, case):
    response = client.post(reverse("suites:import"), {"text": case.text})
    if case.refused:
        assert response.status_code == 400
        assert case.refused in html.unescape(response.content.decode())
        assert not Suite.objects.exists()
    else:
        assert response.status_code == 302
        assert Suite.objects.get().name == "Hostile"


@pytest.mark.django_db
@pytest.mark.parametrize("case", SUITE_FILES, ids=IDS)
def test_the_import_page_refuses_or_stores_every_chosen_file(client, case):
    chosen = SimpleUploadedFile(
        "hostile.suite.json",
        case.text.encode("utf-8", "surrogatepass"),
        "application/json",
    )
    response = client.post(reverse("suites:import"), {"upload": chosen})
    page = html.unescape(response.content.decode())
    if case.refused:
        assert response.status_code == 400
        # A lone surrogate in the file is not UTF-8: refused as such.
        assert case.refused in page or "is not UTF-8 text" in page
        assert not Suite.objects.exists()
    else:
        assert response.status_code == 302
        assert Suite.objects.get().name == "Hostile"
