"""Runs "with variations": each step's variants sent right after it through the
same Run, and the endpoint's different handling of them in the results, the
reports and the command line."""

import asyncio
import json
import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from io import StringIO

import pytest
from aiohttp import web
from django.core.management import CommandError, call_command
from django.urls import reverse

from sandbox.delivery.models import Delivery
from sandbox.delivery.services import Target
from sandbox.suites import fileformat, selectors, services
from sandbox.suites.models import SuiteRun, SuiteSource
from tests.factories import make_subscription
from tests.receiver import Receiver

API_KEY = "variations-secret-key-4321"
SNAKE_TRAITS = ("first_name", "last_name", "created_at")
MISSING = "Missing firstName"
SNAKE_DIFFERS = f"answered 400 instead of 200: {MISSING}"
STEPS = [
    {
        "name": "Sign up",
        "event": {
            "type": "identify",
            "userId": "{{userId}}",
            "traits": {
                "email": "ada@example.com",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "createdAt": "2025-01-02T03:04:05.000Z",
            },
        },
    },
    {"id": "order", "event": {"type": "track", "event": "Order", "userId": "u-1"}},
    {
        "name": "Order again",
        "event": {
            "type": "track",
            "event": "Order",
            "userId": "u-1",
            "messageId": "{{messageId:order}}",
        },
        "expect": {"deduplicated": True},
    },
]


@dataclass
class CamelCaseOnly(Receiver):
    """A partner's endpoint that reads traits.firstName and refuses an
    identify whose reserved traits come in snake_case, as some do."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path != "/camel-only":
            return await super()._handle(request)
        await self._record(request)
        event = self.received[-1].json
        traits = event.get("traits") if isinstance(event, dict) else None
        if isinstance(traits, dict) and any(name in traits for name in SNAKE_TRAITS):
            return web.json_response({"message": MISSING}, status=400)
        return web.json_response({"success": True})


@pytest.fixture
def camel_only():
    server = CamelCaseOnly().start()
    yield server
    server.stop()


def _found(steps=STEPS) -> selectors.FoundSuite:
    document = {"format": fileformat.FORMAT, "name": "Partner checks", "steps": steps}
    suite = fileformat.suite_from_document(document)
    return selectors.FoundSuite(suite=suite, source=SuiteSource.FILE)


def _suite_file(tmp_path) -> str:
    path = tmp_path / "partner.suite.json"
    document = {"format": fileformat.FORMAT, "name": "Partner checks", "steps": STEPS}
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def _run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("runsuite", *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), err.getvalue() + str(error)
    return 0, out.getvalue(), err.getvalue()


def _differing(result: dict) -> dict[str, list[str]]:
    return {v["name"]: v["differences"] for v in result["variants"] if v["differences"]}


@pytest.mark.django_db(transaction=True)
def test_each_steps_variants_follow_it_in_order_with_their_own_message_ids(
    camel_only,
):
    subscription = make_subscription(endpoint_url=camel_only.url("/camel-only"))
    suite_run = services.suite_run_start(
        found=_found(), target=Target.of(subscription), variations=True
    )
    assert suite_run.options["variations"] is True
    assert isinstance(suite_run.options["variations_seed"], int)
    first, second, repeat = suite_run.steps
    assert "snake-case-traits" in [v["name"] for v in first["variants"]]
    assert second["variants"]
    # A step that repeats a messageId on purpose tests dedupe: no variants.
    assert repeat["variants"] == []
    assert "with" in suite_run.run.applied and "variants" in suite_run.run.applied

    settled = asyncio.run(services.suite_run_deliver(suite_run=suite_run, timeout=60))
    assert settled
    # One Run, strict order: each step, then its variants, then the next step.
    planned = [
        (step["delivery_id"], step["message_id"])
        for step in suite_run.steps[:2]
        for step in [step, *step["variants"]]
    ]
    assert [pk for pk, _ in planned] == sorted(pk for pk, _ in planned)
    run_ids = set(
        Delivery.objects.filter(run=suite_run.run).values_list("pk", flat=True)
    )
    assert run_ids == {pk for pk, _ in planned} | {repeat["delivery_id"]}
    sent = [r.json["messageId"] for r in camel_only.received]
    assert sent == [message_id for _, message_id in planned]
    # Every variant its own messageId: none was dropped as a repeat.
    assert len(set(sent)) == len(sent)
    assert not Delivery.objects.filter(
        pk__in=[pk for pk, _ in planned], state="deduplicated"
    ).exists()

    suite_run = services.suite_run_finish(suite_run=suite_run)
    # The snake_case variants got a 400, but variants never fail the run.
    assert suite_run.passed
    assert suite_run.verdict == "Every expectation held (3 steps)"
    first, second, repeat = suite_run.results
    assert first["status"] == 200
    differing = _differing(first)
    assert set(differing) == {"snake-case-traits", "casing-of-keys"}
    assert differing["snake-case-traits"] == [SNAKE_DIFFERS, "red instead of green"]
    snake = next(v for v in first["variants"] if v["name"] == "snake-case-traits")
    assert snake["status"] == 400
    assert snake["message"] == MISSING
    assert snake["description"].startswith("Reserved traits in snake_case")
    assert _differing(second) == {}
    assert repeat["state"] == "deduplicated" and repeat["variants"] == []


@pytest.mark.django_db(transaction=True)
def test_variants_are_made_from_the_event_as_the_step_sent_it(camel_only):
    subscription = make_subscription(endpoint_url=camel_only.url("/camel-only"))
    suite_run = services.suite_run_start(
        found=_found(STEPS[:1]), target=Target.of(subscription), variations=True
    )
    step = suite_run.steps[0]
    original = Delivery.objects.get(pk=step["delivery_id"]).payload
    stored = {
        variant["name"]: Delivery.objects.get(pk=variant["delivery_id"]).payload
        for variant in step["variants"]
    }
    # The run's {{userId}} was filled once, for the step: its variants carry the
    # same value rather than placeholders filled again.
    user_id = original["userId"]
    assert user_id and "{{" not in user_id
    for name, payload in stored.items():
        if name != "python-nulls":
            assert payload["userId"] == user_id, name
    assert stored["snake-case-traits"]["traits"] == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "created_at": "2025-01-02T03:04:05.000Z",
    }


@pytest.mark.django_db(transaction=True)
def test_a_run_without_variations_sends_only_the_steps(camel_only):
    subscription = make_subscription(endpoint_url=camel_only.url("/camel-only"))
    suite_run = services.suite_run_start(found=_found(), target=Target.of(subscription))
    assert suite_run.options["variations"] is False
    assert all("variants" not in step for step in suite_run.steps)
    assert Delivery.objects.filter(run=suite_run.run).count() == 3


@pytest.mark.django_db(transaction=True)
def test_runsuite_with_variations_reports_the_variant_handled_differently(
    camel_only, tmp_path
):
    junit, result, report = (tmp_path / n for n in ("j.xml", "r.json", "r.html"))
    code, out, err = _run(
        _suite_file(tmp_path),
        "--endpoint",
        camel_only.url("/camel-only"),
        "--api-key",
        API_KEY,
        "--variations",
        "--junit",
        str(junit),
        "--json",
        str(result),
        "--report",
        str(report),
    )
    # The variants' 400s are reported, but only the steps' expectations decide.
    assert code == 0, out + err
    assert (
        f"step 1 (Sign up) variant snake-case-traits: {SNAKE_DIFFERS}; "
        "red instead of green\n"
    ) in out
    assert "step 1 (Sign up) variant casing-of-keys: " in out
    assert "step 2 (Order) variant" not in out
    suite_run = SuiteRun.objects.get()
    sent = sum(len(step["variants"]) for step in suite_run.steps)
    assert (
        f"Variations: 2 of {sent} variants handled differently from their step "
        "(in 1 step)\n"
    ) in out
    assert "\nEvery expectation held (3 steps)\n" in out

    document = json.loads(result.read_text())
    assert document["options"]["variations"] is True
    assert document["variations"] == {
        "sent": sent,
        "handled_differently": 2,
        "summary": f"2 of {sent} variants handled differently from their step "
        "(in 1 step)",
    }
    first = document["steps"][0]
    snake = next(v for v in first["variants"] if v["name"] == "snake-case-traits")
    assert snake["status"] == 400
    assert snake["outcome"] == "red"
    assert snake["differences"] == [SNAKE_DIFFERS, "red instead of green"]
    assert {"delivery_id", "message_id", "latency_ms", "message"} <= snake.keys()
    assert document["steps"][2]["variants"] == []

    testsuite = ET.parse(junit).getroot().find("testsuite")
    # Still one testcase per step, none failed; the variants are told beside.
    cases = testsuite.findall("testcase")
    assert len(cases) == 3
    assert testsuite.get("failures") == "0"
    assert f"variant snake-case-traits: {SNAKE_DIFFERS}" in (
        cases[0].findtext("system-out")
    )
    assert cases[1].find("system-out") is None
    properties = {p.get("name"): p.get("value") for p in testsuite.iter("property")}
    assert properties["variations"].startswith("2 of ")

    html = report.read_text()
    assert "<script" not in html
    assert "Variations: 2 of" in html
    assert f"snake-case-traits: {SNAKE_DIFFERS}" in html
    # A variant handled differently shows what was sent.
    assert "&quot;first_name&quot;: &quot;Ada&quot;" in html
    for text in (junit.read_text(), result.read_text(), html):
        assert API_KEY not in text


@pytest.mark.django_db(transaction=True)
def test_runsuite_with_variations_still_exits_1_when_a_step_fails(receiver, tmp_path):
    code, out, err = _run(
        _suite_file(tmp_path),
        "--endpoint",
        receiver.url("/status/400"),
        "--api-key",
        API_KEY,
        "--variations",
    )
    assert code == 1
    assert "2 of 3 steps failed" in err
    # Every variant got the same 400 as its step: nothing differed.
    assert "Variations: every variant of 2 steps handled like its step (" in out
    assert ") variant " not in out


@pytest.mark.django_db(transaction=True)
def test_runsuite_variations_shows_each_variant_at_verbosity_2(camel_only, tmp_path):
    code, out, _ = _run(
        _suite_file(tmp_path),
        "--endpoint",
        camel_only.url("/camel-only"),
        "--api-key",
        API_KEY,
        "--variations",
        "-v",
        "2",
    )
    assert code == 0
    assert "    variant snake-case-traits: 400 red" in out
    code, out, _ = _run(
        _suite_file(tmp_path),
        "--endpoint",
        camel_only.url("/camel-only"),
        "--api-key",
        API_KEY,
        "--variations",
    )
    assert code == 0
    assert "    variant snake-case-traits:" not in out


@pytest.mark.django_db
def test_runsuite_variations_with_bad_input_exits_2(tmp_path):
    code, _, err = _run("No such suite", "--endpoint", "http://x", "--variations")
    assert code == 2
    assert "No suite named 'No such suite'" in err


@pytest.mark.django_db(transaction=True)
def test_the_run_form_offers_variations_and_the_report_shows_them(
    client, camel_only, deliver_due
):
    listed = client.get(reverse("suites:list")).content.decode()
    assert "With variations" in listed
    assert 'name="variations"' in listed
    subscription = make_subscription(
        name="P", endpoint_url=camel_only.url("/camel-only"), api_key=API_KEY
    )
    services.suite_import(
        text=json.dumps(
            {"format": fileformat.FORMAT, "name": "Partner checks", "steps": STEPS}
        )
    )
    response = client.post(
        reverse("suites:run"),
        {"suite": "Partner checks", "subscription": subscription.pk,
         "concurrency": "1", "variations": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    suite_run = SuiteRun.objects.get()
    assert suite_run.options["variations"] is True
    while deliver_due():
        pass
    page = client.get(response["Location"]).content.decode()
    assert "with variations" in page
    assert "<th>Variants</th>" in page
    assert f"snake-case-traits: {SNAKE_DIFFERS}" in page
    assert 'id="variations-summary"' in page
    assert API_KEY not in page


@pytest.mark.django_db(transaction=True)
def test_shuffled_steps_keep_their_variants_right_behind_them(camel_only):
    subscription = make_subscription(endpoint_url=camel_only.url("/camel-only"))
    steps = [
        {"name": f"Step {n}", "event": {"type": "track", "event": f"E{n}"}}
        for n in range(1, 6)
    ]
    suite_run = services.suite_run_start(
        found=_found(steps),
        target=Target.of(subscription),
        shuffle=True,
        variations=True,
        rng=random.Random(7),
    )
    by_id = sorted(
        (pk, step["number"])
        for step in suite_run.steps
        for pk in [step["delivery_id"], *(v["delivery_id"] for v in step["variants"])]
    )
    numbers = [number for _, number in by_id]
    # Shuffled, yet each step's deliveries are one block: the step, its variants.
    blocks = [n for i, n in enumerate(numbers) if i == 0 or numbers[i - 1] != n]
    assert sorted(blocks) == [1, 2, 3, 4, 5]
    assert blocks != [1, 2, 3, 4, 5]
    for step in suite_run.steps:
        ids = [step["delivery_id"], *(v["delivery_id"] for v in step["variants"])]
        assert ids == sorted(ids)
