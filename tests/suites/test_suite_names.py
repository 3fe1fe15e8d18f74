"""Suite names: a stored suite never hides a teammate's file, a file hidden by
another suite's name says so, and a bad variable name is named with its path.
Importing from a chosen file as well as from pasted text."""

import html
import json
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from sandbox.suites import fileformat, selectors, services
from sandbox.suites.builtin import SEGMENT_TEST_SUITE
from sandbox.suites.models import Suite, SuiteRun


def _text(name: str, **extra) -> str:
    return json.dumps(
        {
            "format": fileformat.FORMAT,
            "name": name,
            "steps": [{"type": "identify"}],
            **extra,
        }
    )


def _page(response) -> str:
    return html.unescape(response.content.decode())


@pytest.mark.django_db
def test_an_import_never_hides_a_file_of_the_same_name(client, tmp_path, settings):
    settings.SUITES_DIR = tmp_path
    (tmp_path / "checkout.suite.json").write_text(_text("Checkout"))
    with pytest.raises(services.SuiteRefused) as refused:
        services.suite_import(text=_text("Checkout"))
    assert str(refused.value) == (
        "The suite file checkout.suite.json is already named 'Checkout' (teammates "
        "share it); give this suite another name, or edit that file instead."
    )
    response = client.post(
        reverse("suites:import"), {"text": _text("Checkout"), "replace": "on"}
    )
    assert response.status_code == 400
    assert "The suite file checkout.suite.json is already named" in _page(response)
    assert not Suite.objects.exists()
    # The file is still the suite of that name.
    assert (
        selectors.suite_find(name="Checkout").path == tmp_path / "checkout.suite.json"
    )


@pytest.mark.django_db
def test_a_file_whose_name_is_taken_is_listed_with_why(client, tmp_path, settings):
    settings.SUITES_DIR = tmp_path
    services.suite_import(text=_text("Stored first"))
    (tmp_path / "a.suite.json").write_text(_text("Twice"))
    (tmp_path / "b.suite.json").write_text(_text("Twice"))
    (tmp_path / "c.suite.json").write_text(_text("Stored first"))
    (tmp_path / "d.suite.json").write_text(_text(SEGMENT_TEST_SUITE))
    (tmp_path / "e.suite.json").write_text(_text("Alone"))
    found, broken = selectors.suite_directory()
    # Two files of one name: neither, since a run by name could not choose.
    assert list(found) == ["Alone"]
    assert broken[tmp_path / "a.suite.json"] == [
        "name: 'Twice' is also the name of the suite in b.suite.json, so neither "
        "is listed (a run by that name could not tell them apart); give one "
        "another name"
    ]
    assert "in a.suite.json, so neither" in broken[tmp_path / "b.suite.json"][0]
    assert broken[tmp_path / "c.suite.json"] == [
        "name: a stored suite is already named 'Stored first', so this file is not "
        "listed; give the suite in this file another name"
    ]
    assert "a built-in suite is already named" in broken[tmp_path / "d.suite.json"][0]
    page = _page(client.get(reverse("suites:list")))
    assert "b.suite.json is not listed: name: 'Twice' is also the name" in page
    assert "c.suite.json is not listed: name: a stored suite" in page


@pytest.mark.django_db(transaction=True)
def test_runsuite_by_a_name_two_files_hold_or_a_hidden_file_says_so(
    tmp_path, settings, receiver
):
    settings.SUITES_DIR = tmp_path
    (tmp_path / "a.suite.json").write_text(_text("Twice"))
    (tmp_path / "b.suite.json").write_text(_text("Twice"))
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("runsuite", "Twice", "--endpoint", receiver.url("/ok"),
                     "--api-key", "k", stdout=out, stderr=err)  # fmt: skip
    assert refused.value.returncode == 2
    assert "a.suite.json: name: 'Twice' is also the name of the suite in " in str(
        refused.value
    )
    assert not SuiteRun.objects.exists()
    services.suite_import(text=_text("Stored"))
    (tmp_path / "later.suite.json").write_text(_text("Stored"))
    call_command("runsuite", "Stored", "--endpoint", receiver.url("/ok"),
                 "--api-key", "k", stdout=out, stderr=err)  # fmt: skip
    assert SuiteRun.objects.get().source == "stored"
    assert (
        f"Note: {tmp_path / 'later.suite.json'} is not run: name: a stored suite is "
        "already named 'Stored'"
    ) in err.getvalue()


def test_a_bad_variable_name_is_named_with_its_path():
    with pytest.raises(fileformat.SuiteFileError) as refused:
        fileformat.parse_suite(_text("V", variables={"1x": 1, "bad-name": 2, "ok": 3}))
    assert refused.value.problems == [
        "variables.1x: the name '1x' must be an identifier (letters, digits and _, "
        "not starting with a digit)",
        "variables.bad-name: the name 'bad-name' must be an identifier (letters, "
        "digits and _, not starting with a digit)",
    ]


@pytest.mark.django_db
def test_a_suite_file_can_be_chosen_instead_of_pasted(client):
    page = _page(client.get(reverse("suites:list")))
    assert 'enctype="multipart/form-data"' in page
    assert 'name="upload"' in page
    chosen = SimpleUploadedFile(
        "team.suite.json", _text("From a file").encode(), "application/json"
    )
    response = client.post(reverse("suites:import"), {"upload": chosen})
    assert response.status_code == 302
    assert Suite.objects.get().name == "From a file"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "text", "says"),
    [
        (b"\xff\xfe{}", "", "team.suite.json is not UTF-8 text (byte 0)"),
        (b"{", "", "Invalid JSON at line 1, column 2"),
        (_text("Both").encode(), _text("Both"), "not both"),
    ],
)
def test_a_chosen_file_that_cannot_be_a_suite_is_refused(client, content, text, says):
    chosen = SimpleUploadedFile("team.suite.json", content, "application/json")
    response = client.post(reverse("suites:import"), {"upload": chosen, "text": text})
    assert response.status_code == 400
    assert says in _page(response)
    assert not Suite.objects.exists()


@pytest.mark.django_db
def test_a_chosen_file_too_large_is_refused_before_it_is_read(client):
    chosen = SimpleUploadedFile("big.suite.json", b"x" * (6 * 1024 * 1024))
    response = client.post(reverse("suites:import"), {"upload": chosen})
    assert response.status_code == 413
    assert "the sandbox accepts at most" in _page(response)
    assert not Suite.objects.exists()


def test_a_key_inside_a_step_event_is_refused_but_a_push_token_is_not():
    event = {
        "type": "track",
        "event": "E",
        "userId": "u",
        "properties": {"apiKey": "sk_live_x", "nested": [{"write_key": "w"}]},
        "context": {"device": {"token": "a push token"}},
    }
    text = json.dumps(
        {"format": fileformat.FORMAT, "name": "K", "steps": [{"event": event}]}
    )
    with pytest.raises(fileformat.SuiteFileError) as refused:
        fileformat.parse_suite(text)
    assert [p.split(":")[0] for p in refused.value.problems] == [
        "steps[0].event.properties.apiKey",
        "steps[0].event.properties.nested[0].write_key",
    ]
    assert "a suite file never holds API keys" in refused.value.problems[0]
    del event["properties"]
    fileformat.parse_suite(
        json.dumps(
            {"format": fileformat.FORMAT, "name": "K", "steps": [{"event": event}]}
        )
    )


def test_key_names_are_refused_in_variables_and_by_their_ending_in_events():
    event = {
        "type": "track",
        "event": "E",
        "userId": "u",
        "properties": {"x_api_key": "a", "segmentWriteKey": "b", "monkey": "c"},
    }
    text = json.dumps(
        {
            "format": fileformat.FORMAT,
            "name": "K",
            "variables": {"apiKey": "sk_live_123456789"},
            "steps": [{"event": event}],
        }
    )
    with pytest.raises(fileformat.SuiteFileError) as refused:
        fileformat.parse_suite(text)
    assert [p.split(":")[0] for p in refused.value.problems] == [
        "variables.apiKey",
        "steps[0].event.properties.x_api_key",
        "steps[0].event.properties.segmentWriteKey",
    ]
