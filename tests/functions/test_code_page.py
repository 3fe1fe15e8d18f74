"""The subscription form's function kind and a function's code page, through the
Django test client against the real SQLite file and the real syntax check."""

import html
import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from sandbox.functions import services
from sandbox.functions.forms import SOURCE_NUL_ERROR, FunctionSourceForm
from sandbox.functions.models import FunctionVersion
from sandbox.functions.views import (
    BODY_TOO_LARGE,
    NOT_A_FUNCTION,
    RESET,
    RESTORE_UNCHANGED,
    RESTORED,
    SAVED,
    UNCHANGED,
)
from sandbox.subscriptions.forms import FUNCTION_FIELD_REQUIRED_ERROR
from sandbox.subscriptions.models import BATCH_SIZE_RANGE_ERROR, Subscription
from tests.factories import make_subscription, subscription_form_data

pytestmark = pytest.mark.django_db

DEMO_ENDPOINT = f"{settings.BASE_URL}/mock/demo/"
TRACK_ONLY = """async function onTrack(event, settings) {
\treturn event.event;
}
"""
WITH_BATCH = (
    TRACK_ONLY
    + """
async function onBatch(events, settings) {
  return events.length;
}
"""
)
# The `}` on line 3 is where Node stops reading.
BROKEN = "async function onTrack(event) {\n  const x = ;\n}\n"


def _text(response) -> str:
    return html.unescape(response.content.decode())


def function_form_data(**overrides: str) -> dict[str, str]:
    """What the subscription form posts for a new function (no endpoint URL)."""
    function = {
        "name": "Partner function",
        "kind": "function",
        "memory_mb": "256",
        "batch_size": "50",
        "batch_window_seconds": "2.5",
    }
    data = subscription_form_data(**(function | overrides))
    if "endpoint_url" not in overrides:
        del data["endpoint_url"]
    return data


def _create_function(client) -> Subscription:
    response = client.post(reverse("subscriptions:create"), function_form_data())
    subscription = Subscription.objects.get(name="Partner function")
    assert response.status_code == 302
    assert response.url == reverse("subscriptions:code", args=[subscription.pk])
    return subscription


def _save(client, subscription, source: str, **extra):
    url = reverse("subscriptions:code", args=[subscription.pk])
    return client.post(url, {"source": source}, **extra)


def _numbers(subscription) -> list[int]:
    return list(
        FunctionVersion.objects.filter(subscription=subscription)
        .order_by("number")
        .values_list("number", flat=True)
    )


@pytest.fixture
def function(client) -> Subscription:
    return _create_function(client)


def test_the_form_creates_a_function_with_the_boilerplate_as_v1(client):
    response = client.post(
        reverse("subscriptions:create"), function_form_data(), follow=True
    )
    subscription = Subscription.objects.get()
    assert subscription.kind == Subscription.Kind.FUNCTION
    assert subscription.endpoint_url == ""
    assert (subscription.memory_mb, subscription.batch_size) == (256, 50)
    assert subscription.batch_window_seconds == 2.5
    [version] = subscription.function_versions.all()
    assert version.number == 1
    assert version.source == services.boilerplate(DEMO_ENDPOINT)
    assert DEMO_ENDPOINT in version.source
    # The code page opens on it, in the editor's textarea.
    text = _text(response)
    assert "Created function subscription “Partner function”" in text
    assert 'data-code-editor="javascript"' in text
    assert "const ENDPOINT = '" + DEMO_ENDPOINT in text
    assert "onTrack" in text and "onDelete" in text


def test_a_webhook_needs_its_url_and_a_function_does_not(client):
    webhook = subscription_form_data(endpoint_url="", kind="webhook")
    response = client.post(reverse("subscriptions:create"), webhook)
    assert response.status_code == 200
    assert "A webhook subscription needs an endpoint URL." in _text(response)
    assert not Subscription.objects.exists()


def test_a_function_ignores_a_url_typed_without_scripts(client):
    data = function_form_data(endpoint_url="ftp://not a url")
    response = client.post(reverse("subscriptions:create"), data)
    assert response.status_code == 302
    assert Subscription.objects.get().endpoint_url == ""


def test_a_function_field_is_checked_for_a_function_only(client):
    data = function_form_data(batch_size="0")
    response = client.post(reverse("subscriptions:create"), data)
    assert BATCH_SIZE_RANGE_ERROR in _text(response)
    assert not Subscription.objects.exists()
    data = function_form_data(memory_mb="")
    response = client.post(reverse("subscriptions:create"), data)
    assert FUNCTION_FIELD_REQUIRED_ERROR in _text(response)
    # One message per problem.
    response = client.post(reverse("subscriptions:create"), {**data, "memory_mb": "x"})
    assert "Enter a whole number." in _text(response)
    assert FUNCTION_FIELD_REQUIRED_ERROR not in _text(response)
    assert not FunctionVersion.objects.exists()
    # A webhook keeps the defaults, whatever its hidden function fields say.
    webhook = subscription_form_data(kind="webhook", batch_size="0", memory_mb="x")
    response = client.post(reverse("subscriptions:create"), webhook)
    assert response.status_code == 302
    subscription = Subscription.objects.get()
    assert (subscription.batch_size, subscription.memory_mb) == (20, 128)
    assert not subscription.function_versions.exists()


def test_the_form_labels_the_timeout_for_the_kind(client, function):
    response = client.get(reverse("subscriptions:edit", args=[function.pk]))
    text = _text(response)
    assert ">Time limit (seconds)</label>" in text
    assert 'data-text-webhook="Timeout (seconds)"' in text
    assert 'data-kind-only="function"' in text
    assert 'value="function" id="id_kind_1" checked' in text
    response = client.get(reverse("subscriptions:create"))
    assert ">Timeout (seconds)</label>" in _text(response)


def test_a_webhook_turned_function_starts_from_the_boilerplate_and_back(client):
    webhook = make_subscription(name="Turncoat", endpoint_url="http://127.0.0.1:9/h")
    edit = reverse("subscriptions:edit", args=[webhook.pk])
    data = subscription_form_data(name="Turncoat", kind="function", api_key="")
    del data["endpoint_url"]
    assert client.post(edit, data).status_code == 302
    webhook.refresh_from_db()
    assert webhook.kind == Subscription.Kind.FUNCTION
    # The URL is kept for a way back.
    assert webhook.endpoint_url == "http://127.0.0.1:9/h"
    assert _numbers(webhook) == [1]
    _save(client, webhook, TRACK_ONLY)
    data = subscription_form_data(name="Turncoat", kind="webhook", api_key="")
    del data["endpoint_url"]
    assert client.post(edit, data).status_code == 302
    # Back to a webhook and to a function again: its code is still there.
    data["kind"] = "function"
    assert client.post(edit, data).status_code == 302
    assert _numbers(webhook) == [1, 2]


def test_detail_and_list_show_a_function(client, function):
    _save(client, function, WITH_BATCH)
    detail = _text(client.get(reverse("subscriptions:detail", args=[function.pk])))
    assert 'id="subscription-kind">Function<' in detail
    assert "<strong>v2</strong>" in detail
    assert reverse("subscriptions:code", args=[function.pk]) in detail
    assert "<code>onTrack</code>, <code>onBatch</code>" in detail
    assert "256 MB" in detail
    assert "up to 50 events or 2.5 s" in detail
    assert "Endpoint URL" not in detail
    listing = _text(client.get(reverse("subscriptions:list")))
    assert "code v2" in listing
    assert "<td>Function</td>" in listing


def test_saving_new_source_makes_v2_and_the_same_source_no_v3(client, function):
    response = _save(client, function, TRACK_ONLY, follow=True)
    assert SAVED.format(version="v2") in _text(response)
    assert function.current_function.source == TRACK_ONLY
    response = _save(client, function, TRACK_ONLY, follow=True)
    assert UNCHANGED.format(version="v2") in _text(response)
    assert _numbers(function) == [1, 2]


def test_the_page_shows_handlers_history_and_the_batch_hint(client, function):
    _save(client, function, WITH_BATCH)
    text = _text(client.get(reverse("subscriptions:code", args=[function.pk])))
    assert re.search(r"<li><code>onTrack</code></li>\s*<li><code>onBatch</code>", text)
    assert 'id="batch-hint"' in text
    assert "batches of up to 50 events, or after 2.5 s" in text
    assert 'id="version-2"' in text and 'id="version-1"' in text
    assert reverse("subscriptions:code-version", args=[function.pk, 1]) in text
    assert reverse("subscriptions:code-restore", args=[function.pk, 1]) in text
    # Size in bytes, as the limit counts them.
    size = len(WITH_BATCH.encode())
    assert f"{size}\xa0bytes" in text
    assert reverse("tester:home") in text
    _save(client, function, TRACK_ONLY)
    text = _text(client.get(reverse("subscriptions:code", args=[function.pk])))
    assert 'id="batch-hint"' not in text


def test_a_syntax_error_is_not_saved_and_says_where(client, function):
    response = _save(client, function, BROKEN)
    assert response.status_code == 200
    text = _text(response)
    assert "Not saved:" in text
    assert 'data-line="2"' in text
    assert re.search(r"\(line 2, column \d+\)", text)
    # What was sent stays in the editor.
    assert "const x = ;" in text
    assert _numbers(function) == [1]


def test_an_empty_source_is_refused(client, function):
    response = _save(client, function, "  \n\t\n")
    assert services.SOURCE_EMPTY_ERROR in _text(response)
    assert _numbers(function) == [1]


def test_an_oversized_source_is_refused_in_words(client, function):
    source = "// " + "x" * services.MAX_SOURCE_BYTES + "\n" + TRACK_ONLY
    response = _save(client, function, source)
    assert response.status_code == 200
    size = len(source.encode())
    assert f"The function is {size:,} bytes" in _text(response)
    assert _numbers(function) == [1]


def test_a_body_over_the_upload_limit_is_refused_unread(client, function):
    source = "/" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
    response = _save(client, function, source)
    assert response.status_code == 413
    text = _text(response)
    assert BODY_TOO_LARGE.format(limit="2.5 MB", source_limit=524_288) in text
    assert _numbers(function) == [1]


def test_a_form_in_another_charset_is_refused(client, function):
    url = reverse("subscriptions:code", args=[function.pk])
    body = "source=" + TRACK_ONLY.replace("event.event", "'café'")
    response = client.post(
        url,
        body,
        content_type="application/x-www-form-urlencoded; charset=latin-1",
    )
    assert response.status_code == 400
    assert "Forms must be sent as UTF-8" in _text(response)
    assert _numbers(function) == [1]


def test_crlf_is_saved_as_lf_and_counts_as_the_same_source(client, function):
    _save(client, function, TRACK_ONLY.replace("\n", "\r\n"))
    assert function.current_function.source == TRACK_ONLY
    _save(client, function, TRACK_ONLY)
    assert _numbers(function) == [1, 2]
    # Indentation and the trailing line are kept exactly.
    assert function.current_function.source.startswith("async function")
    assert "\n\treturn" in function.current_function.source


def test_a_nul_is_refused_with_its_place(client, function):
    response = _save(client, function, "// ok\nconst a = 'x\x00';\n")
    text = _text(response)
    assert f"Not saved: {SOURCE_NUL_ERROR} <strong>(line 2, column 13)" in text
    assert _numbers(function) == [1]


def test_a_lone_surrogate_is_refused_before_it_reaches_storage():
    # A browser cannot send one (UTF-8 has none); the form refuses it anyway.
    form = FunctionSourceForm({"source": "// a\nconst s = '\ud800';\n"})
    assert not form.is_valid()
    assert form.problem.message == services.SOURCE_UNENCODABLE_ERROR.format(line=2)


def test_surrogate_bytes_in_a_post_arrive_replaced_and_save(client, function):
    url = reverse("subscriptions:code", args=[function.pk])
    body = b"source=" + b"const s = '%ED%A0%80';\n" + TRACK_ONLY.encode()
    response = client.post(url, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 302
    assert "\ufffd" in function.current_function.source


def test_restore_saves_an_older_version_again(client, function):
    _save(client, function, TRACK_ONLY)
    restore = reverse("subscriptions:code-restore", args=[function.pk, 1])
    response = client.post(restore, follow=True)
    assert RESTORED.format(old="v1", version="v3") in _text(response)
    assert _numbers(function) == [1, 2, 3]
    assert function.current_function.source == services.boilerplate(DEMO_ENDPOINT)
    response = client.post(
        reverse("subscriptions:code-restore", args=[function.pk, 3]), follow=True
    )
    assert RESTORE_UNCHANGED.format(old="v3") in _text(response)
    assert _numbers(function) == [1, 2, 3]


def test_an_older_version_is_shown_read_only(client, function):
    _save(client, function, TRACK_ONLY.replace("event.event", "'<b>&'"))
    page = client.get(reverse("subscriptions:code-version", args=[function.pk, 2]))
    assert "&#x27;&lt;b&gt;&amp;&#x27;" in page.content.decode()
    assert "<b>&" not in page.content.decode()
    assert "This is the version that runs." in _text(page)
    older = client.get(reverse("subscriptions:code-version", args=[function.pk, 1]))
    assert "Restore v1" in _text(older)
    assert "<textarea" not in older.content.decode()
    missing = client.get(reverse("subscriptions:code-version", args=[function.pk, 9]))
    assert missing.status_code == 404
    assert "has no version v9" in _text(missing)


def test_reset_saves_the_boilerplate_as_a_new_version(client, function):
    _save(client, function, TRACK_ONLY)
    response = client.post(
        reverse("subscriptions:code-reset", args=[function.pk]), follow=True
    )
    assert RESET.format(version="v3") in _text(response)
    assert function.current_function.source == services.boilerplate(DEMO_ENDPOINT)


def test_a_webhooks_code_page_is_404(client):
    webhook = make_subscription(name="Just a <hook>")
    for name, args in [
        ("code", [webhook.pk]),
        ("code-reset", [webhook.pk]),
        ("code-version", [webhook.pk, 1]),
        ("code-restore", [webhook.pk, 1]),
    ]:
        url = reverse(f"subscriptions:{name}", args=args)
        response = client.post(url) if "re" in name else client.get(url)
        assert response.status_code == 404, name
    response = client.get(reverse("subscriptions:code", args=[webhook.pk]))
    assert NOT_A_FUNCTION.format(name="Just a <hook>") in _text(response)
    assert "<hook>" not in response.content.decode()
    assert not FunctionVersion.objects.exists()
    assert client.get(reverse("subscriptions:code", args=[999])).status_code == 404


def test_every_code_form_enforces_csrf(client, function):
    strict = Client(enforce_csrf_checks=True)
    for response in [
        _save(strict, function, TRACK_ONLY),
        strict.post(reverse("subscriptions:code-reset", args=[function.pk])),
        strict.post(reverse("subscriptions:code-restore", args=[function.pk, 1])),
        strict.post(reverse("subscriptions:create"), function_form_data(name="x")),
    ]:
        assert response.status_code == 403
    assert _numbers(function) == [1]
    page = client.get(reverse("subscriptions:code", args=[function.pk])).text
    # Save and reset (one version: nothing to restore).
    assert page.count('name="csrfmiddlewaretoken"') == 2


def test_the_code_page_escapes_the_name_and_the_source(client):
    data = function_form_data(name="<script>alert(1)</script>")
    client.post(reverse("subscriptions:create"), data)
    subscription = Subscription.objects.get()
    _save(
        client, subscription, "// </textarea><script>alert(2)</script>\n" + TRACK_ONLY
    )
    page = client.get(reverse("subscriptions:code", args=[subscription.pk])).text
    assert "<script>alert" not in page
    assert "&lt;/textarea&gt;&lt;script&gt;alert(2)" in page
