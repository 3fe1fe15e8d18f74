"""A function subscription made and coded in a real browser against a real
server: the form's kind switch, the code editor, Ctrl+S, a refused save marked at
its line, the version history and the script-less page."""

import re
import uuid

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EDITOR = "#code-form .cm-content"
NEW_CODE = """async function onTrack(event, settings) {
  return `tracked ${event.event}`;
}

async function onBatch(events, settings) {
  return events.length;
}
"""
BROKEN = "async function onTrack(event) {\n  const x = ;\n}\n"


def _type_in_editor(page, text: str) -> None:
    """Replace the editor's text as a person would: select all, then type."""
    page.click(EDITOR)
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)


def _versions(server, pk: int) -> list[tuple]:
    return server.query(
        "SELECT number, source FROM functions_functionversion"
        " WHERE subscription_id = ? ORDER BY number",
        pk,
    )


def _create_function(page, server) -> tuple[int, str]:
    name = f"fn-{uuid.uuid4().hex[:8]}"
    page.goto(server.url + "/subscriptions/new/")
    endpoint = page.locator("#id_endpoint_url")
    memory = page.locator("#id_memory_mb")
    # A webhook asks for its URL; the function's limits are out of sight.
    expect(endpoint).to_be_visible()
    expect(memory).to_be_hidden()
    expect(page.locator("label[for=id_timeout_seconds]")).to_have_text(
        "Timeout (seconds)"
    )
    page.fill("#id_name", name)
    # The kind is a radio group, chosen from the keyboard.
    page.get_by_label("Webhook").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_label("Function")).to_be_checked()
    expect(endpoint).to_be_hidden()
    expect(endpoint).to_be_disabled()
    expect(memory).to_be_visible()
    expect(page.locator("label[for=id_timeout_seconds]")).to_have_text(
        "Time limit (seconds)"
    )
    page.fill("#id_batch_size", "7")
    page.get_by_role("button", name="Create subscription").click()
    expect(page).to_have_url(re.compile(r"/subscriptions/\d+/code/$"))
    pk = int(re.search(r"/subscriptions/(\d+)/code/", page.url).group(1))
    return pk, name


def test_a_function_is_created_edited_and_saved_with_ctrl_s(server, page):
    pk, name = _create_function(page, server)
    expect(page.locator(".flash")).to_contain_text(
        f"Created function subscription “{name}”"
    )
    expect(page.locator(EDITOR)).to_be_visible()
    expect(page.locator("#code-form .cm-lineNumbers")).to_be_visible()
    expect(page.locator(EDITOR)).to_contain_text("async function onTrack")
    expect(page.locator("#current-version")).to_have_text("v1")
    [(number, source)] = _versions(server, pk)
    assert number == 1
    assert f"{server.url}/mock/demo/" in source

    _type_in_editor(page, NEW_CODE)
    page.keyboard.press("Control+s")
    expect(page.locator(".flash")).to_contain_text("Saved v2.")
    expect(page.locator("#current-version")).to_have_text("v2")
    assert _versions(server, pk)[-1] == (2, NEW_CODE)
    # The editor opens on what was saved, indentation and all.
    assert page.input_value("#id_source") == NEW_CODE
    handlers = page.locator("#function-handlers")
    expect(handlers).to_contain_text("onTrack")
    expect(handlers).to_contain_text("onBatch")
    expect(page.locator("#batch-hint")).to_contain_text("batches of up to 7 events")
    expect(page.locator("#function-versions tbody tr")).to_have_count(2)

    # Saving the same code again makes no new version.
    page.click(EDITOR)
    page.keyboard.press("Control+s")
    expect(page.locator(".flash")).to_contain_text("Unchanged: still v2.")
    assert len(_versions(server, pk)) == 2

    # The subscription's page shows the function, not a URL.
    page.get_by_role("link", name="Back to the subscription").click()
    settings = page.locator("#subscription-settings")
    expect(settings).to_contain_text("Function")
    expect(settings).to_contain_text("v2")
    expect(settings).to_contain_text("onTrack, onBatch")
    expect(settings).not_to_contain_text("Endpoint URL")
    page.get_by_role("link", name="Edit code").first.click()
    expect(page).to_have_url(f"{server.url}/subscriptions/{pk}/code/")


def test_a_syntax_error_is_refused_and_marked_at_its_line(server, page):
    pk, _ = _create_function(page, server)
    _type_in_editor(page, BROKEN)
    page.keyboard.press("Control+s")
    problem = page.locator("[data-code-problem]")
    expect(problem).to_contain_text("Not saved: SyntaxError")
    expect(problem).to_contain_text(re.compile(r"\(line 2, column \d+\)"))
    assert len(_versions(server, pk)) == 1
    # What was typed is still there, marked where Node stopped, cursor on it.
    assert page.input_value("#id_source") == BROKEN
    expect(page.locator("#code-form .cm-lintRange-error")).to_have_count(1)
    marked_line = page.locator(
        "#code-form .cm-line", has=page.locator(".cm-lintRange-error")
    )
    expect(marked_line).to_have_text("  const x = ;")
    expect(page.locator("#code-form .cm-activeLine")).to_have_text("  const x = ;")
    expect(page.locator("#code-form .cm-editor")).to_have_class(
        re.compile("cm-focused")
    )

    # Fixed and saved with the button.
    page.keyboard.press("End")
    page.keyboard.press("Backspace")
    page.keyboard.insert_text("1;")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Saved v2.")
    assert "const x = 1;" in _versions(server, pk)[-1][1]


def test_an_older_version_is_viewed_and_restored_and_reset_asks(server, page):
    pk, _ = _create_function(page, server)
    _type_in_editor(page, NEW_CODE)
    page.keyboard.press("Control+s")
    expect(page.locator("#current-version")).to_have_text("v2")

    page.get_by_role("link", name="View v1").click()
    expect(page.locator("#version-source")).to_contain_text("const ENDPOINT")
    page.get_by_role("button", name="Restore v1").click()
    expect(page.locator(".flash")).to_contain_text("Restored v1 as v3.")
    expect(page.locator(EDITOR)).to_contain_text("const ENDPOINT")

    dialogs: list[str] = []

    def decline(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", decline)
    page.get_by_role("button", name="Reset to boilerplate").click()
    page.wait_for_timeout(300)
    assert dialogs and dialogs[0].startswith("Replace the code of")
    assert len(_versions(server, pk)) == 3


def test_the_code_page_saves_without_scripts(server, chromium):
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        name = f"fn-{uuid.uuid4().hex[:8]}"
        page.goto(server.url + "/subscriptions/new/")
        # Without scripts every field shows and the server picks by kind.
        expect(page.locator("#id_endpoint_url")).to_be_visible()
        expect(page.locator("#id_memory_mb")).to_be_visible()
        page.fill("#id_name", name)
        page.get_by_label("Function").check()
        page.get_by_role("button", name="Create subscription").click()
        expect(page).to_have_url(re.compile(r"/code/$"))
        pk = int(re.search(r"/subscriptions/(\d+)/code/", page.url).group(1))
        textarea = page.locator("#id_source")
        expect(textarea).to_be_visible()
        page.fill("#id_source", NEW_CODE)
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".flash")).to_contain_text("Saved v2.")
        assert _versions(server, pk)[-1] == (2, NEW_CODE)
        assert page.input_value("#id_source") == NEW_CODE
    finally:
        context.close()
