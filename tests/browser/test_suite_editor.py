"""Building a suite in a real browser: Add to suite from the composer, then the
suite's page (reorder with the keyboard, edit a step in the code editor, delete
a step), and a duplicate of the built-in suite."""

import json
import re
import uuid

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EDITOR = "#composer .cm-content"


def _compose(page, server, event: dict) -> None:
    page.goto(server.url + "/")
    expect(page.locator(EDITOR)).to_be_visible()
    page.click(EDITOR)
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(json.dumps(event, indent=2))


def _step_labels(page) -> list[str]:
    return page.locator("#suite-steps .step-label").all_inner_texts()


def test_a_suite_is_built_from_the_composer_and_edited_on_its_page(server, page):
    name = f"Built in the browser {uuid.uuid4().hex[:6]}"
    _compose(
        page,
        server,
        {"type": "track", "event": "First Step", "userId": "u1", "messageId": "m-1"},
    )
    page.click("#add-to-suite-button")
    expect(page.locator("#add-new-suite-name")).to_be_visible()
    page.fill("#add-new-suite-name", name)
    # Enter in the name adds the step; it never sends the event.
    page.press("#add-new-suite-name", "Enter")
    expect(page.locator("#added-to-suite")).to_contain_text(
        f"Added step 1 to “{name}”."
    )
    expect(page.locator("#send-outcome")).to_have_count(0)

    _compose(page, server, {"type": "track", "event": "Second Step", "userId": "u1"})
    page.click("#add-to-suite-button")
    page.select_option("#add-suite", name)
    page.click("#add-to-suite-confirm")
    expect(page.locator("#added-to-suite")).to_contain_text(
        f"Added step 2 to “{name}”."
    )
    page.click("#added-to-suite a")
    expect(page.locator("#suite-name")).to_have_text(name)
    assert _step_labels(page) == ["First Step", "Second Step"]

    # Reorder from the keyboard: the moved step's button keeps the focus.
    page.focus("#move-up-2")
    page.keyboard.press("Enter")
    expect(page.locator("#step-notice")).to_have_text("Moved step 2 up.")
    assert _step_labels(page) == ["Second Step", "First Step"]
    expect(page.locator("#move-down-1")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#step-notice")).to_have_text("Moved step 1 down.")
    assert _step_labels(page) == ["First Step", "Second Step"]
    page.reload()
    assert _step_labels(page) == ["First Step", "Second Step"]

    # Edit a step in the code editor: a bad event is refused with its path.
    page.click("#edit-step-2")
    step_editor = "#step-form .cm-content"
    expect(page.locator(step_editor)).to_be_visible()
    page.click(step_editor)
    page.keyboard.press("Control+A")
    page.keyboard.insert_text('{"type": "track", "event": ')
    page.click("#save-step")
    expect(page.locator("#step-problems")).to_contain_text(
        "steps[1].event: Invalid JSON"
    )
    page.click(step_editor)
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(
        json.dumps({"type": "track", "event": "Edited Step", "userId": "{{userId}}"})
    )
    # It came from the composer expecting green or yellow: green only now.
    expect(page.locator("#id_outcomes_1")).to_be_checked()
    page.uncheck("#id_outcomes_1")
    page.fill("#id_statuses", "200, 202")
    page.click("#save-step")
    expect(page).to_have_url(re.compile(r"/suites/\d+/$"))
    expect(page.locator(".flash")).to_contain_text("Saved step 2.")
    assert _step_labels(page) == ["First Step", "Edited Step"]
    expect(page.locator("#step-2 .step-expected")).to_have_text(
        "green, status 200 or 202"
    )

    # Delete a step, in place.
    page.click("#delete-step-1")
    expect(page.locator("#step-notice")).to_have_text("Deleted step 1.")
    expect(page.locator("#step-notice")).to_be_focused()
    assert _step_labels(page) == ["Edited Step"]
    expect(page.locator("#delete-step-1")).to_be_disabled()


def test_the_built_in_suite_is_duplicated_into_an_editable_copy(server, page):
    copy_name = f"My Segment suite {uuid.uuid4().hex[:6]}"
    page.goto(server.url + "/suites/")
    page.click("a.suite-link:has-text('Segment test suite')")
    expect(page.locator("#suite-source")).to_have_text("Built in")
    expect(page.locator("#move-up-2")).to_have_count(0)
    page.fill("#duplicate-name", "Segment test suite")
    page.click("#duplicate-suite")
    expect(page.locator("#duplicate-problems")).to_contain_text(
        "A suite named “Segment test suite” already exists"
    )
    page.fill("#duplicate-name", copy_name)
    page.click("#duplicate-suite")
    expect(page.locator("#suite-name")).to_have_text(copy_name)
    expect(page.locator("#suite-source")).to_have_text("Stored")
    expect(page.locator("#suite-steps .suite-step")).to_have_count(18)
    page.click("#delete-step-18")
    expect(page.locator("#suite-steps .suite-step")).to_have_count(17)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-suite")
    expect(page).to_have_url(re.compile(r"/suites/$"))
    expect(page.locator(".flash")).to_contain_text(f"Deleted suite “{copy_name}”.")
