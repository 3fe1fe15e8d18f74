"""`manage.py runsuite`: a suite through the pipeline from CI, with exit codes,
JUnit XML, a JSON result and an HTML report."""

import json
import xml.etree.ElementTree as ET
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from sandbox.delivery.models import Delivery, Door, Run
from sandbox.spec import EVENT_TYPES
from sandbox.suites import fileformat
from sandbox.suites.builtin import SEGMENT_TEST_SUITE
from sandbox.suites.models import SuiteRun
from tests.factories import make_subscription

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "partner-secret-key-9876"


def _run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("runsuite", *args, stdout=out, stderr=err)
    except CommandError as error:
        err.write(f"CommandError: {error}\n")
        return error.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _suite_file(tmp_path, steps, name="Partner checks") -> str:
    path = tmp_path / "partner.suite.json"
    document = {"format": fileformat.FORMAT, "name": name, "steps": steps}
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


@pytest.mark.django_db(transaction=True)
def test_the_segment_test_suite_passes_against_a_good_endpoint(receiver, tmp_path):
    junit, result, report = (tmp_path / n for n in ("j.xml", "r.json", "r.html"))
    code, out, err = _run(
        SEGMENT_TEST_SUITE,
        "--endpoint",
        receiver.url("/ok"),
        "--api-key",
        API_KEY,
        "--junit",
        str(junit),
        "--json",
        str(result),
        "--report",
        str(report),
    )
    assert code == 0, err
    assert "\nReady for review\n" in out
    suite_run = SuiteRun.objects.get()
    count = len(suite_run.steps)
    assert count == 18
    # Every step is a delivery of one Run, in history, door "suite".
    assert Delivery.objects.filter(run=suite_run.run, door=Door.SUITE).count() == count
    assert suite_run.run.strict_order
    # The built-in suite sends one event of every type first, in the Spec's order.
    assert [r.json["type"] for r in receiver.received][:7] == list(EVENT_TYPES)
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    [testsuite] = root.findall("testsuite")
    assert testsuite.get("name") == SEGMENT_TEST_SUITE
    assert testsuite.get("tests") == str(count)
    assert testsuite.get("failures") == "0"
    assert testsuite.get("errors") == "0"
    float(testsuite.get("time"))
    cases = testsuite.findall("testcase")
    assert [c.get("name") for c in cases][:2] == ["1. identify", "2. track"]
    assert all(c.find("failure") is None for c in cases)
    document = json.loads(result.read_text())
    assert document["format"] == "subscription-sandbox/suite-result@1"
    assert document["passed"] is True
    assert len(document["steps"]) == count
    html = report.read_text()
    assert "<script" not in html
    assert "Ready for review" in html
    assert "X-Segment-Settings" in html
    # The key never reaches a file, not even base64 in the Authorization header.
    for text in (junit.read_text(), result.read_text(), html):
        assert API_KEY not in text
        assert "cGFydG5lci1zZWNyZXQ" not in text


@pytest.mark.django_db(transaction=True)
def test_failures_exit_1_with_reasons_in_junit(receiver, tmp_path):
    make_subscription(name="Partner", endpoint_url=receiver.url("/status/400"))
    junit = tmp_path / "out.xml"
    suite = _suite_file(
        tmp_path,
        [
            {"type": "identify"},
            {"template": "Order Completed", "expect": {"status": 400}},
        ],
    )
    code, out, err = _run(suite, "--to", "Partner", "--junit", str(junit))
    assert code == 1
    assert "1 of 2 steps failed" in err
    assert (
        "step 1 (identify): expected green or yellow, got red: not retried: the "
        "endpoint says the event is malformed (400): answered 400 on purpose"
    ) in out
    testsuite = ET.parse(junit).getroot().find("testsuite")
    assert testsuite.get("tests") == "2"
    assert testsuite.get("failures") == "1"
    first, second = testsuite.findall("testcase")
    failure = first.find("failure")
    assert failure is not None
    assert failure.get("message").startswith("expected green or yellow, got red:")
    assert second.find("failure") is None


@pytest.mark.django_db(transaction=True)
def test_a_step_waiting_for_its_retry_says_so_while_the_run_goes_on(receiver, tmp_path):
    # Segment's schedule 40 times faster: the retry comes about 0.7 s later.
    make_subscription(
        name="Partner", endpoint_url=receiver.url("/flaky/1/503"), time_scale=40
    )
    suite = _suite_file(tmp_path, [{"type": "identify"}])
    code, out, _ = _run(suite, "--to", "Partner")
    assert code == 0
    lines = out.splitlines()
    retrying = next(line for line in lines if "attempt 1" in line)
    assert retrying.startswith("  1/1 identify: attempt 1 answered 503: ")
    assert "retry 1 of 9 at" in retrying
    settled = next(line for line in lines if line.startswith("  1/1 identify: 200"))
    assert lines.index(retrying) < lines.index(settled)


@pytest.mark.django_db(transaction=True)
def test_no_response_is_a_junit_error(tmp_path):
    junit = tmp_path / "out.xml"
    suite = _suite_file(tmp_path, [{"type": "track"}])
    make_subscription(
        name="Nowhere", endpoint_url="http://127.0.0.1:9/hook", retry_policy="none"
    )
    code, _, _ = _run(suite, "--to", "Nowhere", "--junit", str(junit))
    assert code == 1
    testsuite = ET.parse(junit).getroot().find("testsuite")
    assert testsuite.get("errors") == "1"
    assert testsuite.find("testcase").find("error") is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["No such suite", "--endpoint", "http://127.0.0.1:9/"], "No suite named"),
        ([SEGMENT_TEST_SUITE], "Give --to SUBSCRIPTION_NAME"),
        ([SEGMENT_TEST_SUITE, "--to", "Ghost"], "No subscription named 'Ghost'"),
        ([SEGMENT_TEST_SUITE, "--endpoint", "ftp://x"], "--endpoint 'ftp://x'"),
        ([SEGMENT_TEST_SUITE, "--endpoint", "http://127.0.0.1:9/"], "--api-key"),
        (
            [SEGMENT_TEST_SUITE, "--to", "P", "--concurrency", "0"],
            "--concurrency '0': Concurrency must be between 1 and 100.",
        ),
        ([SEGMENT_TEST_SUITE, "--to", "P", "--timeout", "nan"], "--timeout 'nan'"),
        (
            [SEGMENT_TEST_SUITE, "--to", "P", "--junit", "/no/such/dir/x.xml"],
            "the directory /no/such/dir does not exist",
        ),
        (["/no/such/file.suite.json", "--to", "P"], "Cannot read /no/such/file"),
    ],
)
def test_bad_arguments_exit_2(args, words):
    make_subscription(name="P")
    code, _, err = _run(*args)
    assert code == 2
    assert words in err
    assert not Delivery.objects.exists()
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_broken_suite_file_exits_2_listing_each_problem(tmp_path):
    make_subscription(name="P")
    suite = _suite_file(
        tmp_path, [{"type": "track", "expect": {"status": 42}}, {"template": "Nope"}]
    )
    code, _, err = _run(suite, "--to", "P")
    assert code == 2
    assert f"{suite}: steps[0].expect.status: must be an integer 100-599" in err
    assert f"{suite}: steps[1].template: unknown semantic event 'Nope'" in err
    assert not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_suite_is_found_by_name_in_the_suites_directory(receiver, tmp_path, settings):
    settings.SUITES_DIR = tmp_path
    _suite_file(tmp_path, [{"type": "page"}], name="From the repo")
    (tmp_path / "broken.suite.json").write_text("{", encoding="utf-8")
    code, _, err = _run(
        "From the repo", "--endpoint", receiver.url("/ok"), "--api-key", "k"
    )
    assert code == 0, err
    assert SuiteRun.objects.get().source == "file"


@pytest.mark.django_db(transaction=True)
def test_concurrency_and_shuffle_are_applied(receiver, tmp_path):
    suite = _suite_file(tmp_path, [{"type": "track"} for _ in range(6)])
    code, _, err = _run(
        suite,
        "--endpoint",
        receiver.url("/slow"),
        "--api-key",
        "k",
        "--concurrency",
        "3",
        "--shuffle",
    )
    assert code == 0, err
    run = SuiteRun.objects.get().run
    assert run.concurrency == 3
    assert not run.strict_order
    assert "shuffled" in run.applied
    assert receiver.max_in_flight >= 2


def _readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The suite file", 1)[1]
    return section.split("```json\n", 1)[1].split("```", 1)[0]


@pytest.mark.django_db(transaction=True)
def test_the_readme_example_runs_and_repeats_a_message_id_on_purpose(
    receiver, tmp_path
):
    path = tmp_path / "checkout.suite.json"
    path.write_text(_readme_example(), encoding="utf-8")
    make_subscription(name="Partner", endpoint_url=receiver.url("/ok"))
    code, out, err = _run(str(path), "--to", "Partner")
    assert code == 0, out + err
    suite_run = SuiteRun.objects.get()
    states = [r["state"] for r in suite_run.results]
    assert states == ["delivered", "delivered", "delivered", "deduplicated"]
    upgrade, repeat = suite_run.results[2:]
    assert upgrade["message_id"] == repeat["message_id"]
    # The repeat never reached the endpoint; the rest did, each once.
    sent = [r.json["messageId"] for r in receiver.received]
    assert len(sent) == len(set(sent)) == 3
    assert receiver.received[2].json["properties"] == {"plan": "pro"}
