"""Stored suites: import all or nothing, export, the directory, the built-in one."""

import json

import pytest

from sandbox.suites import fileformat, selectors, services
from sandbox.suites.builtin import SEGMENT_TEST_SUITE, segment_test_suite
from sandbox.suites.models import Suite as StoredSuite

pytestmark = pytest.mark.django_db


def _text(name="Checkout", steps=None) -> str:
    return json.dumps(
        {
            "format": fileformat.FORMAT,
            "name": name,
            "variables": {"plan": "pro"},
            "steps": steps or [{"type": "identify"}, {"template": "Order Completed"}],
        }
    )


def test_import_then_export_round_trips():
    stored = services.suite_import(text=_text())
    found = selectors.suite_find(name="Checkout")
    assert found.stored == stored
    exported = services.suite_export(suite=found.suite)
    assert fileformat.parse_suite(exported) == fileformat.parse_suite(_text())
    again = services.suite_import(text=exported, replace=True)
    assert again.pk == stored.pk
    assert StoredSuite.objects.count() == 1


def test_a_broken_import_stores_nothing():
    with pytest.raises(fileformat.SuiteFileError) as raised:
        services.suite_import(text=_text(steps=[{"type": "identify"}, {"type": "x"}]))
    assert raised.value.problems[0].startswith("steps[1].type: must be one of")
    assert not StoredSuite.objects.exists()


def test_an_import_never_overwrites_by_accident():
    services.suite_import(text=_text())
    with pytest.raises(services.SuiteRefused) as raised:
        services.suite_import(text=_text(steps=[{"type": "page"}]))
    assert str(raised.value) == services.SUITE_EXISTS.format(name="Checkout")
    assert len(selectors.suite_find(name="Checkout").suite.steps) == 2


def test_the_built_in_suite_is_read_only():
    text = services.suite_export(suite=segment_test_suite())
    with pytest.raises(services.SuiteRefused) as raised:
        services.suite_import(text=text)
    assert "built in and read-only" in str(raised.value)
    assert selectors.suite_find(name=SEGMENT_TEST_SUITE).source == "built_in"


def test_suite_files_in_the_directory_appear_by_name(tmp_path, settings):
    settings.SUITES_DIR = tmp_path
    (tmp_path / "a.suite.json").write_text(_text(name="From a file"))
    (tmp_path / "broken.suite.json").write_text('{"format": 3}')
    (tmp_path / "ignored.json").write_text(_text(name="Not a suite file"))
    services.suite_import(text=_text(name="Stored"))
    names = [found.suite.name for found in selectors.suite_list()]
    assert names == [SEGMENT_TEST_SUITE, "Stored", "From a file"]
    assert selectors.suite_find(name="From a file").path == tmp_path / "a.suite.json"
    _, broken = selectors.suite_directory()
    assert broken[tmp_path / "broken.suite.json"][0].endswith(
        'format: must be "subscription-sandbox/suite@1", not 3'
    )
    with pytest.raises(selectors.SuiteNotFound) as raised:
        selectors.suite_find(name="Not a suite file")
    assert "Known: 'Segment test suite', 'Stored', 'From a file'." in str(raised.value)


def test_the_built_in_suite_has_every_type_and_semantic_events():
    suite = segment_test_suite()
    types = [step.type for step in suite.steps if step.type]
    assert types == ["identify", "track", "page", "screen", "group", "alias", "delete"]
    assert "Order Completed" in [step.template for step in suite.steps]
    assert all(step.expect.outcomes == ("green", "yellow") for step in suite.steps)
