"""A suite run's delivery conditions beyond concurrency: duplicates injected on
purpose, jitter between steps, and a shuffle that keeps a deliberate repeat
after the step it repeats."""

import asyncio
import itertools
import json
import random
import xml.etree.ElementTree as ET
from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from sandbox.delivery.models import Delivery
from sandbox.suites import fileformat, selectors, services
from sandbox.suites.models import SuiteRun, SuiteSource
from tests.factories import ad_hoc_target, make_subscription


def _document(count: int, *, repeat: bool = False) -> dict:
    steps = [
        {"event": {"type": "track", "event": f"Step {n}", "userId": "u"}}
        for n in range(1, count + 1)
    ]
    if repeat:
        steps.append(
            {
                "name": "Step 1 again",
                "event": {
                    "type": "track",
                    "event": "Step 1",
                    "userId": "u",
                    "messageId": "{{messageId:step1}}",
                },
                "expect": {"deduplicated": True},
            }
        )
    return {"format": fileformat.FORMAT, "name": "Conditions", "steps": steps}


def _found(document: dict) -> selectors.FoundSuite:
    return selectors.FoundSuite(
        suite=fileformat.suite_from_document(document), source=SuiteSource.FILE
    )


def _run(*args: str) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("runsuite", *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue() + err.getvalue() + str(error)
    return 0, out.getvalue() + err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_every_step_duplicated_is_delivered_twice_and_told_beside_it(
    receiver, tmp_path
):
    path = tmp_path / "c.suite.json"
    path.write_text(json.dumps(_document(4)))
    junit = tmp_path / "j.xml"
    code, out = _run(
        str(path),
        "--endpoint",
        receiver.url("/ok"),
        "--api-key",
        "k",
        "--duplicate-rate",
        "1",
        "--junit",
        str(junit),
    )
    assert code == 0, out
    counts = Counter(r.json["messageId"] for r in receiver.received)
    assert len(counts) == 4
    assert set(counts.values()) == {2}
    suite_run = SuiteRun.objects.get()
    assert "4 duplicates injected (rate 1)" in suite_run.run.applied
    assert suite_run.options["duplicate_rate"] == 1.0
    for result in suite_run.results:
        assert result["passed"]
        assert result["duplicate"]["sentence"] == (
            "delivered again with the same messageId (a duplicate on purpose): "
            "answered 200 (green)"
        )
    # The copies are the injected duplicates of the steps' deliveries.
    copies = Delivery.objects.filter(injected_duplicate=True)
    assert {d.duplicate_of_id for d in copies} == {
        r["delivery_id"] for r in suite_run.results
    }
    assert out.count("a duplicate on purpose") == 4
    cases = ET.parse(junit).getroot().find("testsuite").findall("testcase")
    assert all("a duplicate on purpose" in c.find("system-out").text for c in cases)


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_the_endpoint_refuses_never_changes_the_verdict(receiver):
    # The endpoint fails every second request of a messageId: the repeat.
    suite_run = services.suite_run_start(
        found=_found(_document(2)),
        target=ad_hoc_target(receiver.url("/flaky/0/200"), dedupe_window_hours=24),
        duplicate_rate=1.0,
    )
    assert asyncio.run(services.suite_run_deliver(suite_run=suite_run, timeout=30))
    suite_run = services.suite_run_finish(suite_run=suite_run)
    assert suite_run.passed
    assert all(r["duplicate"]["status"] == 200 for r in suite_run.results)


@pytest.mark.django_db(transaction=True)
def test_jitter_spaces_the_steps_due_times():
    suite_run = services.suite_run_start(
        found=_found(_document(6)),
        target=ad_hoc_target("http://127.0.0.1:9/never", dedupe_window_hours=24),
        jitter_ms=5_000,
        rng=random.Random(3),
    )
    assert "jitter up to 5000 ms between steps" in suite_run.run.applied
    due = [
        d.next_attempt_at
        for d in Delivery.objects.filter(run=suite_run.run).order_by("pk")
    ]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(due)]
    assert all(0 <= gap <= 5.0 for gap in gaps)
    assert sum(gaps) > 2.0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("seed", range(12))
def test_a_shuffle_keeps_a_deliberate_repeat_after_the_step_it_repeats(seed):
    suite_run = services.suite_run_start(
        found=_found(_document(5, repeat=True)),
        target=ad_hoc_target("http://127.0.0.1:9/never", dedupe_window_hours=24),
        shuffle=True,
        concurrency=2,
        duplicate_rate=0.5,
        rng=random.Random(seed),
    )
    deliveries = {d.pk: d for d in Delivery.objects.filter(run=suite_run.run)}
    first, repeat = suite_run.steps[0], suite_run.steps[-1]
    assert repeat["message_id"] == first["message_id"]
    # The repeat is stored after step 1, so step 1 is the original and the
    # repeat is the one Segment drops.
    original = deliveries[first["delivery_id"]]
    again = deliveries[repeat["delivery_id"]]
    assert again.pk > original.pk
    assert again.state == "deduplicated"
    assert original.state == "pending"
    # Each duplicate still follows its own step.
    for step in suite_run.steps:
        if step.get("duplicate_id"):
            copy = deliveries[step["duplicate_id"]]
            assert (
                copy.next_attempt_at > deliveries[step["delivery_id"]].next_attempt_at
            )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--duplicate-rate", "2", "--duplicate-rate '2': The duplicate rate"),
        ("--duplicate-rate", "nan", "--duplicate-rate 'nan'"),
        ("--duplicate-rate", "half", "--duplicate-rate 'half'"),
        ("--jitter", "-1", "--jitter '-1': Jitter must be"),
        ("--jitter", "1.5", "--jitter '1.5'"),
        ("--jitter", "60001", "--jitter '60001'"),
    ],
)
def test_bad_condition_options_exit_2(option, value, says):
    code, out = _run(
        "Segment test suite",
        "--endpoint",
        "http://127.0.0.1:9/x",
        "--api-key",
        "k",
        option,
        value,
    )
    assert code == 2
    assert says in out
    assert "Traceback" not in out
    assert not SuiteRun.objects.exists()


@pytest.mark.django_db
def test_the_page_run_form_takes_duplicates_and_jitter(client):
    subscription = make_subscription(endpoint_url="http://127.0.0.1:9/x")
    page = client.get(reverse("suites:list"))
    assert b'name="duplicate_rate"' in page.content
    assert b'name="jitter_ms"' in page.content
    refused = client.post(
        reverse("suites:run"),
        {
            "suite": "Segment test suite",
            "subscription": subscription.pk,
            "concurrency": 1,
            "duplicate_rate": "1.5",
            "jitter_ms": "-3",
        },
    )
    assert refused.status_code == 400
    assert b"The duplicate rate must be between 0 and 1." in refused.content
    assert b"Jitter must be between 0 and 60000 ms." in refused.content
    assert not SuiteRun.objects.exists()
    started = client.post(
        reverse("suites:run"),
        {
            "suite": "Segment test suite",
            "subscription": subscription.pk,
            "concurrency": 1,
            "duplicate_rate": "0.5",
            "jitter_ms": "20",
        },
    )
    assert started.status_code == 302
    suite_run = SuiteRun.objects.get()
    assert suite_run.options["duplicate_rate"] == 0.5
    assert suite_run.options["jitter_ms"] == 20
    assert "jitter up to 20 ms between steps" in suite_run.run.applied
