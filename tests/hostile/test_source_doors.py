"""The hostile corpus through the source pages' doors: the source form, the
settings analytics.js loads, the debugger's filters and the composer's "Load
event from source". A specific answer each time, never a 500."""

import pytest
from django.urls import reverse
from django.utils import timezone

from sandbox.sources import services
from sandbox.sources.models import IngestedEvent, Source
from tests.factories import make_subscription

HUGE = "9" * 40
# Superscript two, Arabic-Indic one, fullwidth eight: str.isdigit() says yes.
OTHER_DIGITS = ["\u00b2", "\u0661", "\uff18"]
TEXTS = [
    "",
    "   ",
    "x" * 10_000,
    "<script>alert(1)</script>",
    "nul\x00inside",
    "emoji 😀 and ünïcödé",
    "line\nbreak",
    '"; DROP TABLE sources_source; --',
]


@pytest.fixture
def source(db):
    subscription = make_subscription(name="Hostile receiver")
    made, _ = services.source_save(
        name="Hostile", subscriptions=[subscription], write_key="hostile-key-0001"
    )
    return made


@pytest.mark.django_db
@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
@pytest.mark.parametrize("field", ["name", "write_key"])
def test_the_source_form_answers_every_text_without_a_500(client, source, field, text):
    data = {"name": "New one", "write_key": "", "subscriptions": []}
    data[field] = text
    before = list(Source.objects.values_list("name", "write_key"))
    response = client.post(reverse("sources:create"), data)
    assert response.status_code in {302, 400}, response.content[:500]
    if response.status_code == 400:
        assert list(Source.objects.values_list("name", "write_key")) == before
        assert b"errorlist" in response.content
        assert b"<script>alert(1)</script>" not in response.content
    else:
        stored = Source.objects.exclude(pk=source.pk).get()
        assert stored.write_key.strip() and stored.name.strip()


@pytest.mark.django_db
def test_a_taken_name_or_key_is_refused_with_its_reason(client, source):
    response = client.post(
        reverse("sources:create"),
        {"name": "Hostile", "write_key": "", "subscriptions": []},
    )
    assert response.status_code == 400
    assert "A source with this name already exists." in response.content.decode()
    response = client.post(
        reverse("sources:edit", args=[source.pk]),
        {"name": "Renamed", "write_key": "", "subscriptions": []},
    )
    assert response.status_code == 302
    source.refresh_from_db()
    assert (source.name, source.write_key) == ("Renamed", "hostile-key-0001")
    other, _ = services.source_save(name="Other", subscriptions=[])
    response = client.post(
        reverse("sources:edit", args=[other.pk]),
        {"name": "Other", "write_key": "hostile-key-0001", "subscriptions": []},
    )
    assert response.status_code == 400
    assert "Another source already has this write key." in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key",
    ["%00", "%ED%A0%80", "a" * 5000, "%3Cscript%3E", "..", " ", "%FF%FE"],
)
def test_the_settings_of_any_write_key_answer_json(client, source, key):
    response = client.get(f"/v1/projects/{key}/settings")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "python manage.py source create" in response.json()["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"status": "<script>"},
        {"status": "dropped"},
        {"before": "abc"},
        {"before": HUGE},
        {"before": "-" + HUGE},
        {"before": "1", "status": "accepted"},
    ],
)
def test_the_debugger_answers_any_filter(client, source, query):
    for url in (reverse("sources:detail", args=[source.pk]), "/sources/unknown/"):
        response = client.get(url, query)
        assert response.status_code == 200
        assert b"<script>" not in response.content.split(b"</head>")[1]


@pytest.mark.django_db
@pytest.mark.parametrize("pk", ["0", HUGE, "abc", "-1", "1.5", "%00", *OTHER_DIGITS])
def test_a_missing_event_is_a_404_or_the_plain_composer(client, source, pk):
    response = client.get(f"/sources/events/{pk}/")
    assert response.status_code == 404
    response = client.get(reverse("tester:home"), {"from_event": pk})
    assert response.status_code == 200
    assert b'id="loaded-from"' not in response.content
    # Said, not silently replaced by the sample.
    assert b'id="not-loaded"' in response.content
    assert b"the sample is shown instead" in response.content


@pytest.mark.django_db
def test_pages_of_a_missing_source_are_404s(client):
    # An id past any row's, as a typed address (no link of ours can hold it).
    for path in ("", "edit/", "key/"):
        assert client.get(f"/sources/{10**30}/{path}").status_code == 404
    assert client.post(f"/sources/{10**30}/delete/").status_code == 404
    for name in ("detail", "edit", "reveal-key"):
        assert client.get(reverse(f"sources:{name}", args=[999])).status_code == 404
    assert client.get(reverse("sources:delete", args=[1])).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["ab/cd", "ab:cd", "k?x", "a b"])
def test_the_source_form_refuses_a_key_no_sdk_could_send(client, source, key):
    data = {"name": "Keyed", "write_key": key, "subscriptions": []}
    response = client.post(reverse("sources:create"), data)
    assert response.status_code == 400
    assert b"may hold only letters, digits" in response.content
    assert not Source.objects.filter(name="Keyed").exists()


@pytest.mark.django_db
def test_try_the_sdk_serves_a_source_whose_stored_key_holds_a_slash(client, source):
    # Stored before keys were checked: the page still opens, for every source.
    Source.objects.create(name="AAA legacy", write_key="ab/cd")
    response = client.get(reverse("sources:try-sdk"))
    assert response.status_code == 200
    assert b"/v1/projects/ab/cd/settings" in response.content
    assert b'id="key-not-sendable"' in response.content
    assert client.get("/v1/projects/ab/cd/settings").status_code == 200


@pytest.mark.django_db
def test_a_dropped_event_loads_into_the_composer(client, source):
    event = IngestedEvent.objects.create(
        source=source,
        write_key=source.write_key,
        endpoint="batch",
        request_number=1,
        status=IngestedEvent.Status.DROPPED,
        reason="Unknown type 'explode'",
        event_type="explode",
        payload={"type": "explode", "userId": "loaded-dropped-user"},
        received_at=timezone.now(),
    )
    page = client.get(reverse("sources:event", args=[event.pk]))
    assert f"?from_event={event.pk}".encode() in page.content
    # The composer's "Load event from source" offers it too.
    picker = client.get(reverse("tester:home"))
    assert f"?from_event={event.pk}".encode() in picker.content
    response = client.get(reverse("tester:home"), {"from_event": event.pk})
    assert response.status_code == 200
    assert b'id="loaded-from"' in response.content
    assert b"it was dropped" in response.content
    assert b"loaded-dropped-user" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("value", [*OTHER_DIGITS, HUGE])
@pytest.mark.parametrize("name", ["from", "sent"])
def test_the_composer_answers_any_id_it_is_asked_to_open(client, name, value):
    # Digits that are not ASCII: str.isdigit() says yes, int() may not.
    response = client.get(reverse("tester:home"), {name: value})
    assert response.status_code == 200
