"""Building suites in the pages: a suite's own page, editing a stored suite's
steps, duplicating, renaming, deleting, and "Add to suite" from the composer and
from history. Every edit is all or nothing and leaves a valid suite file."""

import html
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from sandbox.subscriptions.services import subscription_update
from sandbox.suites import editing, fileformat, services
from sandbox.suites.builtin import SEGMENT_TEST_SUITE
from sandbox.suites.models import Suite, SuiteRun
from sandbox.suites.views import STEP_ADDED
from tests.factories import make_delivery, make_subscription
from tests.hostile.corpus import EVENTS, TOO_DEEP

HTMX = {"HTTP_HX_REQUEST": "true"}
EVENT_IDS = [case.name for case in EVENTS]
# Fine as an event, too deep inside a suite file (its event starts 3 levels down).
TOO_DEEP_IN_A_FILE = {"depth-98-is-fine": TOO_DEEP}


def _page(response) -> str:
    return html.unescape(response.content.decode())


def _store(name="Checkout", steps=None, **fields) -> Suite:
    document = {
        "format": fileformat.FORMAT,
        "name": name,
        "steps": steps
        or [
            {"type": "identify", "name": "Sign up"},
            {"template": "Order Completed"},
            {
                "event": {"type": "track", "event": "Plan Upgraded", "userId": "u1"},
                "expect": {"status": 200},
            },
        ],
        **fields,
    }
    return services.suite_import(text=json.dumps(document))


def _labels(stored: Suite) -> list[str]:
    stored.refresh_from_db()
    suite = fileformat.suite_from_document(stored.definition)
    return [step.label() for step in suite.steps]


def _detail(stored: Suite) -> str:
    return reverse("suites:detail", args=[stored.pk])


# The suite's page


@pytest.mark.django_db
def test_a_stored_suite_has_a_page_with_its_steps_and_variables(client):
    stored = _store(variables={"plan": "pro"}, description="<b>ours</b>")
    response = client.get(_detail(stored))
    assert response.status_code == 200
    page = _page(response)
    assert "Sign up" in page
    assert "track sample: Order Completed" in page
    assert "status 200" in page
    assert "green or yellow" in page
    assert 'id="suite-variables"' in page
    assert '"pro"' in page
    assert "Stored" in page
    # What the user wrote is text, never markup.
    assert "<b>ours</b>" not in response.content.decode()
    assert 'id="move-down-1"' in page
    assert 'id="rename-form"' in page
    assert 'id="delete-suite"' in page
    # Run reuses the run form, the suite chosen.
    assert f'<input type="hidden" name="suite" value="{stored.name}">' in page


@pytest.mark.django_db
def test_the_list_links_each_suite_to_its_page(client, tmp_path, settings):
    settings.SUITES_DIR = tmp_path
    (tmp_path / "repo.suite.json").write_text(
        json.dumps(
            {
                "format": fileformat.FORMAT,
                "name": "From the repo & co",
                "steps": [{"type": "page"}],
            }
        )
    )
    stored = _store(name="Café / été")
    listed = client.get(reverse("suites:list")).content.decode()
    assert f'href="{_detail(stored)}"' in listed
    assert "/suites/named/?name=From%20the%20repo%20%26%20co" in listed
    response = client.get(reverse("suites:named"), {"name": "From the repo & co"})
    page = _page(response)
    assert response.status_code == 200
    assert "File" in page
    assert "repo.suite.json" in page
    assert 'id="move-down-1"' not in page
    assert 'id="delete-suite"' not in page
    # A stored suite asked by name is at its own address.
    by_name = client.get(reverse("suites:named"), {"name": "Café / été"})
    assert by_name.status_code == 302
    assert by_name["Location"] == _detail(stored)


@pytest.mark.django_db
def test_the_built_in_suite_is_read_only_on_its_page(client):
    response = client.get(reverse("suites:named"), {"name": SEGMENT_TEST_SUITE})
    page = _page(response)
    assert response.status_code == 200
    assert "Built in" in page
    assert "Read-only here" in page
    assert 'id="duplicate-form"' in page
    for control in ('id="move-up-2"', 'id="edit-step-1"', 'id="rename-form"'):
        assert control not in page


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", "nope", "\x00", "x" * 10_000, "<script>"])
def test_an_unknown_suite_name_is_a_404(client, name):
    assert client.get(reverse("suites:named"), {"name": name}).status_code == 404


@pytest.mark.django_db
def test_unknown_stored_suites_and_steps_are_404s(client):
    stored = _store()
    assert client.get(reverse("suites:detail", args=[999])).status_code == 404
    edit = reverse("suites:step-edit", args=[stored.pk, 4])
    assert client.get(edit).status_code == 404
    move = reverse("suites:step-move", args=[999, 1])
    assert client.post(move, {"direction": "up"}).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_page_lists_its_runs_with_the_last_good_one_and_what_changed(
    client, receiver
):
    _store(name="Checkout", steps=[{"type": "identify", "name": "Sign up"}])
    partner = make_subscription(name="Partner", endpoint_url=receiver.url("/ok"))
    out = StringIO()
    call_command("runsuite", "Checkout", "--to", "Partner", stdout=out)
    # The partner's endpoint changes behaviour: the same subscription, compared.
    subscription_update(subscription=partner, endpoint_url=receiver.url("/status/400"))
    with pytest.raises(CommandError):
        call_command("runsuite", "Checkout", "--to", "Partner", stdout=out)
    good, bad = SuiteRun.objects.order_by("pk")
    assert good.passed and not bad.passed
    stored = Suite.objects.get()
    page = _page(client.get(_detail(stored)))
    rows = page.split('id="suite-runs"')[1]
    # Newest first; the good one marked; the failing one says what changed.
    assert rows.index(f'data-run="{bad.pk}"') < rows.index(f'data-run="{good.pk}"')
    assert 'id="last-good-run"' in rows
    assert f'compared with <a href="/suites/runs/{good.pk}/">#{good.pk}</a>' in rows
    assert "step 1 (Sign up) was 200 in the last good run, now 400" in rows


# Reordering, editing and deleting steps


@pytest.mark.django_db
def test_moving_a_step_reorders_the_stored_suite(client):
    stored = _store()
    move = reverse("suites:step-move", args=[stored.pk, 3])
    response = client.post(move, {"direction": "up"})
    assert response.status_code == 302
    assert _labels(stored) == ["Sign up", "Plan Upgraded", "Order Completed"]
    fileformat.suite_from_document(stored.definition)
    move_second = reverse("suites:step-move", args=[stored.pk, 2])
    response = client.post(move_second, {"direction": "down"}, **HTMX)
    assert response.status_code == 200
    assert _labels(stored) == ["Sign up", "Order Completed", "Plan Upgraded"]


@pytest.mark.django_db
def test_an_htmx_move_answers_the_steps_with_the_moved_step_focused(client):
    stored = _store()
    move = reverse("suites:step-move", args=[stored.pk, 2])
    response = client.post(move, {"direction": "up"}, **HTMX)
    body = response.content.decode()
    assert body.lstrip().startswith('<div class="card" id="suite-steps">')
    assert "<html" not in body
    assert (
        'id="move-up-1" aria-label="Move step 1 (Order Completed) up" disabled' in body
    )
    # The moved step is first now: its up button is off, so down keeps the focus.
    assert 'id="move-down-1"' in body.split("autofocus")[0].rsplit("<button", 1)[1]
    assert "Moved step 2 up." in body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("number", "direction", "words"),
    [
        (1, "up", "steps[0]: step 1 is already the first step"),
        (3, "down", "steps[2]: step 3 is already the last step"),
        (9, "up", "steps[8]: there is no step 9; the suite has 3"),
    ],
)
def test_a_move_past_the_ends_is_refused_in_words(client, number, direction, words):
    stored = _store()
    before = stored.definition
    move = reverse("suites:step-move", args=[stored.pk, number])
    response = client.post(move, {"direction": direction})
    assert response.status_code == 400
    assert words in _page(response)
    stored.refresh_from_db()
    assert stored.definition == before


@pytest.mark.django_db
@pytest.mark.parametrize("direction", ["", "sideways", "\x00", "up" * 5000])
def test_a_move_in_no_direction_is_a_400(client, direction):
    stored = _store()
    move = reverse("suites:step-move", args=[stored.pk, 2])
    assert client.post(move, {"direction": direction}).status_code == 400


@pytest.mark.django_db
def test_a_move_that_breaks_a_repeat_is_refused_with_its_path(client):
    stored = _store(
        steps=[
            {"id": "first", "event": {"type": "track", "event": "A", "userId": "u"}},
            {
                "event": {
                    "type": "track",
                    "event": "A again",
                    "userId": "u",
                    "messageId": "{{messageId:first}}",
                },
                "expect": {"deduplicated": True},
            },
        ]
    )
    before = stored.definition
    move = reverse("suites:step-move", args=[stored.pk, 2])
    response = client.post(move, {"direction": "up"}, **HTMX)
    page = _page(response)
    assert "Nothing was changed" in page
    assert (
        "steps[0].event.messageId: {{messageId:first}} must name an earlier step"
        in (page)
    )
    stored.refresh_from_db()
    assert stored.definition == before


def _step_data(**overrides) -> dict:
    data = {
        "name": "",
        "step_id": "",
        "event": (
            '{"type": "track", "event": "Plan Downgraded", "userId": "{{userId}}"}'
        ),
        "statuses": "",
        "body_path": "",
        "body_equals": "",
        "deduplicated": "",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_editing_a_step_saves_its_event_and_expectation(client):
    stored = _store()
    edit = reverse("suites:step-edit", args=[stored.pk, 3])
    form = client.get(edit)
    assert form.status_code == 200
    page = _page(form)
    assert 'data-json-editor="1"' in page
    assert "vendor/codemirror/codemirror.min.js" in page
    assert "Plan Upgraded" in page
    assert 'value="200"' in page
    response = client.post(
        edit,
        _step_data(
            name="Downgrade",
            outcomes=["green", "red"],
            statuses="200, 201",
            body_path="errors[0].code",
            body_equals='"E1"',
            deduplicated="false",
        ),
    )
    assert response.status_code == 302
    assert response["Location"] == _detail(stored)
    stored.refresh_from_db()
    assert stored.definition["steps"][2] == {
        "name": "Downgrade",
        "event": {"type": "track", "event": "Plan Downgraded", "userId": "{{userId}}"},
        "expect": {
            "outcome": ["green", "red"],
            "status": [200, 201],
            "body": {"path": "errors[0].code", "equals": "E1"},
            "deduplicated": False,
        },
    }


@pytest.mark.django_db
def test_editing_a_sample_step_changes_its_template_and_source(client):
    stored = _store()
    edit = reverse("suites:step-edit", args=[stored.pk, 2])
    page = _page(client.get(edit))
    assert 'data-json-editor="1"' not in page
    response = client.post(
        edit, {"template": "Product Viewed", "source": "ios", "statuses": "201"}
    )
    assert response.status_code == 302
    stored.refresh_from_db()
    assert stored.definition["steps"][1] == {
        "template": "Product Viewed",
        "source": "ios",
        "expect": {"status": 201},
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"event": "{type: track}"}, "steps[2].event: Invalid JSON at line 1"),
        ({"event": ""}, "steps[2].event: "),
        ({"event": "[1, 2]"}, "steps[2].event: must be a JSON object"),
        ({"statuses": "abc"}, "steps[2].expect.status: must be an integer 100-599"),
        ({"statuses": "99"}, "steps[2].expect.status: must be an integer 100-599"),
        ({"statuses": "9" * 5000}, "steps[2].expect.status: must be an integer"),
        ({"body_path": "a..b", "body_equals": "1"}, "steps[2].expect.body.path"),
        ({"body_path": "ok"}, "steps[2].expect.body.equals: required"),
        ({"body_path": "ok", "body_equals": "NaN"}, "steps[2].expect.body.equals"),
        ({"step_id": "1 bad"}, "steps[2].id: must be an identifier"),
        ({"name": "n" * 300}, "steps[2].name: must be text of at most 200"),
        (
            {"event": '{"type": "track", "event": "{{nope}}", "userId": "u"}'},
            "steps[2].event.event: unknown placeholder {{nope}}",
        ),
    ],
)
def test_a_step_edit_lists_each_problem_with_its_path_and_saves_nothing(
    client, overrides, words
):
    stored = _store()
    before = stored.definition
    edit = reverse("suites:step-edit", args=[stored.pk, 3])
    response = client.post(edit, _step_data(**overrides))
    assert response.status_code == 400
    page = _page(response)
    assert "Not saved" in page
    assert words in page
    stored.refresh_from_db()
    assert stored.definition == before


@pytest.mark.django_db
@pytest.mark.parametrize("case", EVENTS, ids=EVENT_IDS)
def test_a_step_edit_answers_every_hostile_event(client, case):
    stored = _store()
    before = stored.definition
    edit = reverse("suites:step-edit", args=[stored.pk, 3])
    response = client.post(edit, _step_data(event=case.text))
    assert "Traceback" not in response.content.decode()
    assert "<img src=x" not in response.content.decode()
    stored.refresh_from_db()
    refused = case.refused or TOO_DEEP_IN_A_FILE.get(case.name, "")
    if refused:
        assert response.status_code == 400
        assert refused in _page(response)
        assert stored.definition == before
    else:
        assert response.status_code == 302
        fileformat.suite_from_document(stored.definition)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field", ["outcomes", "deduplicated", "template", "source", "body_equals"]
)
def test_a_step_edit_answers_nonsense_in_any_field(client, field):
    stored = _store()
    for number in (2, 3):
        edit = reverse("suites:step-edit", args=[stored.pk, number])
        data = {**_step_data(template="Order Completed"), field: "<x>\x00" * 3000}
        response = client.post(edit, data)
        assert response.status_code == 400
        assert "<x>" not in response.content.decode()
        assert "Not saved" in _page(response)


@pytest.mark.django_db
def test_deleting_a_step_and_never_the_last(client):
    stored = _store()
    response = client.post(reverse("suites:step-delete", args=[stored.pk, 2]), **HTMX)
    assert response.status_code == 200
    assert "Deleted step 2." in response.content.decode()
    assert _labels(stored) == ["Sign up", "Plan Upgraded"]
    client.post(reverse("suites:step-delete", args=[stored.pk, 1]))
    assert _labels(stored) == ["Plan Upgraded"]
    response = client.post(reverse("suites:step-delete", args=[stored.pk, 1]))
    assert response.status_code == 400
    assert editing.LAST_STEP in _page(response)
    assert _labels(stored) == ["Plan Upgraded"]


# Rename, duplicate, delete


@pytest.mark.django_db
def test_renaming_keeps_the_address_and_the_runs(client):
    stored = _store()
    SuiteRun.objects.create(
        suite_name="Checkout",
        source="stored",
        suite=stored,
        definition=stored.definition,
        target_name="P",
        endpoint_url="http://127.0.0.1:9/",
    )
    response = client.post(
        reverse("suites:rename", args=[stored.pk]), {"name": "  Paiement 💳 "}
    )
    assert response.status_code == 302
    assert response["Location"] == _detail(stored)
    stored.refresh_from_db()
    assert stored.name == stored.definition["name"] == "Paiement 💳"
    assert SuiteRun.objects.get().suite_name == "Paiement 💳"
    assert 'data-run="' in _page(client.get(_detail(stored)))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "name: must be a name of 1 to 120 characters"),
        ("   ", "name: must be a name of 1 to 120 characters"),
        ("x" * 10_000, "name: must be a name of 1 to 120 characters"),
        (SEGMENT_TEST_SUITE, f"A suite named “{SEGMENT_TEST_SUITE}” already exists"),
        ("Other", "A suite named “Other” already exists; choose another name."),
    ],
)
def test_a_rename_to_a_taken_or_bad_name_is_refused(client, name, words):
    stored = _store()
    _store(name="Other")
    response = client.post(reverse("suites:rename", args=[stored.pk]), {"name": name})
    assert response.status_code == 400
    assert words in _page(response)
    stored.refresh_from_db()
    assert stored.name == "Checkout"


@pytest.mark.django_db
def test_duplicating_the_built_in_suite_gives_an_editable_copy(client):
    response = client.post(
        reverse("suites:duplicate"), {"suite": SEGMENT_TEST_SUITE, "name": "Mine"}
    )
    copy = Suite.objects.get(name="Mine")
    assert response.status_code == 302
    assert response["Location"] == _detail(copy)
    assert len(copy.definition["steps"]) == 18
    page = _page(client.get(_detail(copy)))
    assert 'id="move-down-1"' in page
    assert "Duplicated as “Mine”" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "words"),
    [
        (SEGMENT_TEST_SUITE, "already exists; choose another name"),
        ("Checkout", "A suite named “Checkout” already exists"),
        ("", "name: must be a name of 1 to 120 characters"),
        ("é" * 10_000, "name: must be a name of 1 to 120 characters"),
        ("a\x00b", "name: Null characters are not allowed."),
    ],
)
def test_a_duplicate_refuses_a_taken_or_bad_name_clearly(client, name, words):
    _store()
    response = client.post(
        reverse("suites:duplicate"), {"suite": SEGMENT_TEST_SUITE, "name": name}
    )
    assert response.status_code == 400
    assert words in _page(response)
    assert Suite.objects.count() == 1


@pytest.mark.django_db
def test_a_duplicate_refuses_the_name_of_a_suite_file(client, tmp_path, settings):
    settings.SUITES_DIR = tmp_path
    (tmp_path / "a.suite.json").write_text(
        json.dumps(
            {"format": fileformat.FORMAT, "name": "Shared", "steps": [{"type": "page"}]}
        )
    )
    response = client.post(
        reverse("suites:duplicate"), {"suite": SEGMENT_TEST_SUITE, "name": "Shared"}
    )
    assert response.status_code == 400
    assert "A suite named “Shared” already exists" in _page(response)


@pytest.mark.django_db
def test_deleting_a_suite_asks_first_without_scripts(client):
    stored = _store()
    delete = reverse("suites:delete", args=[stored.pk])
    asked = client.post(delete)
    assert asked.status_code == 200
    assert "Delete the suite “Checkout”?" in _page(asked)
    assert Suite.objects.exists()
    response = client.post(delete, {"confirm": "on"})
    assert response.status_code == 302
    assert not Suite.objects.exists()
    assert client.post(delete, {"confirm": "on"}).status_code == 404


@pytest.mark.django_db
def test_an_htmx_delete_confirmed_in_the_page_goes_to_the_list(client):
    stored = _store()
    response = client.post(
        reverse("suites:delete", args=[stored.pk]), {"confirm": "on"}, **HTMX
    )
    assert response["HX-Redirect"] == reverse("suites:list")
    assert not Suite.objects.exists()


@pytest.mark.django_db
def test_every_form_on_the_page_carries_csrf(client):
    stored = _store()
    page = client.get(_detail(stored)).content.decode()
    forms = page.count("<form")
    assert forms >= 8
    assert page.count('name="csrfmiddlewaretoken"') == forms


def test_edits_refuse_a_post_without_csrf():
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("suites:step-move", args=[1, 1]), {"x": "1"})
    assert response.status_code == 403


# Add to suite


COMPOSED = json.dumps(
    {
        "type": "track",
        "event": "Order Completed",
        "userId": "u-1",
        "messageId": "m-composed-1",
        "properties": {"total": 10},
    },
    indent=2,
)


@pytest.mark.django_db
def test_add_to_suite_from_the_composer_asks_which_suite_then_adds(client):
    _store(name="Existing")
    add = reverse("suites:add-step")
    asked = client.post(add, {"payload": COMPOSED}, **HTMX)
    assert asked.status_code == 200
    chooser = _page(asked)
    assert chooser.lstrip().startswith('<div id="add-to-suite"')
    assert '<option value="Existing">Existing</option>' in chooser
    assert 'hx-post="/suites/add/step/"' in chooser
    added = client.post(
        add, {"payload": COMPOSED, "new_suite_name": "From the tester", "add": "1"},
        **HTMX,
    )  # fmt: skip
    stored = Suite.objects.get(name="From the tester")
    assert (
        STEP_ADDED.format(
            number=1, link=f'<a href="{_detail(stored)}">“From the tester”</a>'
        )
        in added.content.decode()
    )
    assert stored.definition["steps"] == [
        {
            "event": {
                "type": "track",
                "event": "Order Completed",
                "userId": "u-1",
                "properties": {"total": 10},
            },
            "expect": {"outcome": ["green", "yellow"]},
        }
    ]
    client.post(add, {"payload": COMPOSED, "suite": "Existing", "add": "1"})
    existing = Suite.objects.get(name="Existing")
    assert len(existing.definition["steps"]) == 4
    assert "messageId" not in existing.definition["steps"][3]["event"]


@pytest.mark.django_db
def test_add_to_suite_without_scripts_is_a_page_then_the_suite(client):
    add = reverse("suites:add-step")
    asked = client.post(add, {"payload": COMPOSED})
    page = _page(asked)
    assert asked.status_code == 200
    assert '<textarea name="payload" hidden aria-hidden="true">' in page
    assert '"event": "Order Completed"' in page
    response = client.post(
        add, {"payload": COMPOSED, "new_suite_name": "Plain", "add": "1"}
    )
    stored = Suite.objects.get(name="Plain")
    assert response.status_code == 302
    assert response["Location"] == _detail(stored)
    shown = client.get(response["Location"]).content.decode()
    assert f'Added step 1 to <a href="{_detail(stored)}">“Plain”</a>.' in shown


@pytest.mark.django_db
def test_add_to_suite_from_a_history_row_and_the_delivery_pane(client):
    subscription = make_subscription()
    delivery = make_delivery(subscription=subscription)
    link = f"{reverse('suites:add')}?delivery={delivery.pk}"
    assert link in client.get(reverse("delivery:history")).content.decode()
    pane = client.get(reverse("delivery:detail", args=[delivery.pk]))
    assert link in pane.content.decode()
    page = _page(client.get(link))
    assert f'<input type="hidden" name="delivery" value="{delivery.pk}">' in page
    assert delivery.message_id in page
    response = client.post(
        reverse("suites:add-step"),
        {"delivery": delivery.pk, "new_suite_name": "From history", "add": "1"},
    )
    assert response.status_code == 302
    step = Suite.objects.get().definition["steps"][0]
    assert "messageId" not in step["event"]
    assert "receivedAt" not in step["event"]
    assert step["event"]["type"] == delivery.payload["type"]


@pytest.mark.django_db
def test_the_composer_offers_add_to_suite(client):
    page = client.get(reverse("tester:home")).content.decode()
    assert 'id="add-to-suite-button" formaction="/suites/add/step/"' in page
    assert '<div id="add-to-suite"' in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"payload": "", "add": "1"}, "The event is empty"),
        ({"payload": "{nope", "add": "1"}, "Invalid JSON at line 1"),
        ({"payload": "[]", "add": "1"}, "The event must be a JSON object"),
        ({"payload": COMPOSED, "add": "1"}, "Choose a suite, or give a new one a name"),
        (
            {"payload": COMPOSED, "suite": "Nope", "add": "1"},
            "No stored suite named “Nope”",
        ),
        (
            {"payload": COMPOSED, "new_suite_name": SEGMENT_TEST_SUITE, "add": "1"},
            f"“{SEGMENT_TEST_SUITE}” is built in and read-only; duplicate it",
        ),
        (
            {"payload": COMPOSED, "new_suite_name": "Existing", "add": "1"},
            "choose it from the list to add to it",
        ),
        (
            {"payload": COMPOSED, "new_suite_name": "x" * 10_000, "add": "1"},
            "name: must be a name of 1 to 120 characters",
        ),
        ({"delivery": "999", "add": "1"}, "Delivery #999 is no longer in history."),
        ({"delivery": "9" * 5000, "add": "1"}, "Delivery: Enter a whole number."),
        ({"delivery": "-1", "add": "1"}, "Delivery: Ensure this value is greater"),
        (
            {"payload": COMPOSED, "new_suite_name": "a\x00b", "add": "1"},
            "or a new suite named: Null characters are not allowed.",
        ),
        (
            {"payload": '{"type": "track", "event": "{{x}}"}', "new_suite_name": "N",
             "add": "1"},
            "steps[0].event.event: unknown placeholder {{x}}",
        ),
    ],
)  # fmt: skip
def test_add_to_suite_refuses_in_words_and_stores_nothing(client, data, words):
    _store(name="Existing")
    before = Suite.objects.get().definition
    for headers in ({}, HTMX):
        response = client.post(reverse("suites:add-step"), data, **headers)
        assert response.status_code == (200 if headers else 400)
        assert words in _page(response)
    assert Suite.objects.count() == 1
    assert Suite.objects.get().definition == before


@pytest.mark.django_db
def test_add_to_a_file_suite_name_is_refused(client, tmp_path, settings):
    settings.SUITES_DIR = tmp_path
    (tmp_path / "a.suite.json").write_text(
        json.dumps(
            {"format": fileformat.FORMAT, "name": "Shared", "steps": [{"type": "page"}]}
        )
    )
    response = client.post(
        reverse("suites:add-step"),
        {"payload": COMPOSED, "new_suite_name": "Shared", "add": "1"},
    )
    assert "“Shared” is file and read-only" not in _page(response)
    assert "“Shared” is a file and read-only" in _page(response)
    assert not Suite.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("case", EVENTS, ids=EVENT_IDS)
def test_add_to_suite_answers_every_hostile_event(client, case):
    response = client.post(
        reverse("suites:add-step"),
        {"payload": case.text, "new_suite_name": "Hostile", "add": "1"},
    )
    body = response.content.decode()
    assert "Traceback" not in body
    assert "<img src=x" not in body
    assert "<script>alert" not in body
    refused = case.refused or TOO_DEEP_IN_A_FILE.get(case.name, "")
    if refused:
        assert response.status_code == 400
        assert refused in html.unescape(body)
        assert not Suite.objects.exists()
    else:
        assert response.status_code == 302
        stored = Suite.objects.get()
        fileformat.suite_from_document(stored.definition)


@pytest.mark.django_db
def test_oversized_forms_and_ids_are_answered_not_failed(client):
    huge = {"payload": "x" * 3_000_000, "new_suite_name": "n", "add": "1"}
    assert client.post(reverse("suites:add-step"), huge).status_code == 413
    far = "9" * 23
    assert client.get(f"/suites/{far}/").status_code == 404
    assert client.get(f"/suites/{far}/steps/1/").status_code == 404
    move = f"/suites/{far}/steps/1/move/"
    assert client.post(move, {"direction": "up"}).status_code == 404
    assert not Suite.objects.exists()
