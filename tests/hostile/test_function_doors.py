"""The hostile corpus through the function doors: the code page's save, and the
subscription form's kind and function fields on create and on edit. No 500 (the
test client raises whatever a view lets escape), a message for what is refused,
and nothing half-saved: a refused post leaves every row as it was."""

import html

import pytest
from django.urls import reverse

from sandbox.functions import services
from sandbox.functions.models import FunctionVersion
from sandbox.subscriptions.models import Subscription
from tests.factories import subscription_form_data
from tests.hostile.corpus import EVENTS, SETTINGS, SUITE_FILES, URLS, Case

pytestmark = pytest.mark.django_db

# Code a partner could paste that is hostile to the checker or the page rather
# than to a JSON reader.
JAVASCRIPT = [
    Case("js-parens-100000", "(" * 100_000 + ")" * 100_000, "Maximum call stack"),
    Case("js-import", "import fs from 'fs';\n", "outside a module"),
    Case("js-unterminated", "async function onTrack(event) {\n", "SyntaxError"),
    Case("js-top-level-loop", "while (true) {}\nasync function onTrack() {}\n"),
    Case("js-exit", "process.exit(3);\nasync function onTrack() {}\n"),
    Case("js-html", "// </textarea><script>alert(1)</script>\nconst a = '<b>';\n"),
    Case("js-bom", "\ufeffasync function onTrack(event) { return 1; }\n"),
    Case("js-cr-only", "const a = 1;\rasync function onTrack() { return a; }\r"),
    Case("js-nul", "const a = '\x00';\n", "NUL character"),
    Case("js-blank", " \n\t\r\n", services.SOURCE_EMPTY_ERROR),
    Case("js-one-long-line", "const a = '" + "x" * 400_000 + "';\n"),
    Case(
        "js-over-the-limit",
        "const a = '" + "é" * (services.MAX_SOURCE_BYTES // 2) + "';\n",
        "the sandbox accepts at most 524,288",
    ),
]
SOURCES = [*JAVASCRIPT, *EVENTS, *SETTINGS, *URLS, *SUITE_FILES]
SOURCE_IDS = [case.name for case in SOURCES]

# Values typed into a number field, and every corpus text.
NUMBERS = [
    "NaN",
    "-inf",
    "1e400",
    "-0",
    "0x10",
    " 64 ",
    "64.5",
    "\u0666\u0664",
    "9" * 5000,
    "<script>",
    "",
]
FIELD_TEXTS = [*NUMBERS, *(case.text for case in [*EVENTS, *SETTINGS, *URLS])]
FIELD_IDS = [f"numbers-{i}" for i in range(len(NUMBERS))] + [
    case.name for case in [*EVENTS, *SETTINGS, *URLS]
]
FUNCTION_FIELDS = [
    "kind",
    "timeout_seconds",
    "memory_mb",
    "batch_size",
    "batch_window_seconds",
]


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _function_data(**overrides: str) -> dict[str, str]:
    data = subscription_form_data(
        **({"name": "Hostile function", "kind": "function"} | overrides)
    )
    del data["endpoint_url"]
    return data


def _versions(subscription) -> list[tuple[int, str]]:
    return list(
        FunctionVersion.objects.filter(subscription=subscription)
        .order_by("number")
        .values_list("number", "source_sha256")
    )


@pytest.fixture
def function(client) -> Subscription:
    client.post(reverse("subscriptions:create"), _function_data())
    return Subscription.objects.get()


@pytest.mark.parametrize("case", SOURCES, ids=SOURCE_IDS)
def test_the_code_page_refuses_or_saves_every_text(client, function, case):
    before = _versions(function)
    url = reverse("subscriptions:code", args=[function.pk])
    response = client.post(url, {"source": case.text})
    source = services.normalize(case.text)
    # The JSON corpus' `refused` speaks of JSON; only the JavaScript cases say
    # what the code page must answer.
    expected = case.refused if case in JAVASCRIPT else None
    if response.status_code == 302:
        assert not expected, f"saved what should be refused: {case.name}"
        after = _versions(function)
        if FunctionVersion.hash_of(source) == before[-1][1]:
            assert after == before
        else:
            assert after[:-1] == before
            assert function.current_function.source == source
        # The saved code's page renders too.
        page = client.get(url)
        assert page.status_code == 200
        assert "<script>alert" not in page.content.decode()
        return
    assert response.status_code == 200
    text = _text(response)
    assert "Not saved:" in text
    assert expected != "", f"refused what should be saved: {case.name}"
    assert (expected or "") in text
    assert _versions(function) == before
    assert "<script>alert" not in response.content.decode()


@pytest.mark.parametrize("value", FIELD_TEXTS, ids=FIELD_IDS)
@pytest.mark.parametrize("field", FUNCTION_FIELDS)
def test_the_form_creates_a_function_only_from_sound_fields(client, field, value):
    response = client.post(
        reverse("subscriptions:create"), _function_data(**{field: value})
    )
    if response.status_code == 302:
        subscription = Subscription.objects.get()
        assert [number for number, _ in _versions(subscription)] == [1]
        assert subscription.kind in Subscription.Kind.values
        return
    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode()
    assert not Subscription.objects.exists()
    assert not FunctionVersion.objects.exists()
    assert "<script>" not in response.content.decode().split("<main>", 1)[1]


@pytest.mark.parametrize("value", FIELD_TEXTS, ids=FIELD_IDS)
@pytest.mark.parametrize("field", FUNCTION_FIELDS)
def test_editing_a_function_leaves_it_whole_when_a_field_is_refused(
    client, function, field, value
):
    before = Subscription.objects.values().get(pk=function.pk)
    versions = _versions(function)
    edit = reverse("subscriptions:edit", args=[function.pk])
    response = client.post(edit, _function_data(api_key="", **{field: value}))
    assert _versions(function) == versions
    if response.status_code == 302:
        return
    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode()
    assert Subscription.objects.values().get(pk=function.pk) == before
