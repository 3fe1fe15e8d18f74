// Small behaviours htmx does not cover: copying, shortcuts, the composer's editor,
// countdowns.
"use strict";

// The live indicator follows the websocket's state.
function setLive(on) {
  const dot = document.getElementById("live-dot");
  if (!dot) return;
  dot.classList.toggle("on", on);
  dot.title = on ? "Live: updates arrive as they happen" : "Reconnecting…";
}
// Whatever changed while the socket was down (or still connecting) is fetched
// once it is open, so the feed never stays stale.
// Only the page's own socket (the feed, a mock's requests) drives the dot; a
// delivery pane's or a run's socket inside the Event Tester does not.
function isPageSocket(event) {
  const url = event.target.getAttribute && event.target.getAttribute("ws-connect");
  return !url || !/^\/ws\/(deliveries\/\d+|runs\/\d+)\//.test(url) ||
    !document.querySelector('[ws-connect="/ws/deliveries/"]');
}
document.addEventListener("htmx:wsOpen", (event) => {
  if (!isPageSocket(event)) return;
  setLive(true);
  htmx.trigger(document.body, "feed-resync");
});
document.addEventListener("htmx:wsClose", (event) => isPageSocket(event) && setLive(false));
document.addEventListener("htmx:wsError", (event) => isPageSocket(event) && setLive(false));

// "Copy as cURL": fetched on demand so the API key is never sitting in the page.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-url]");
  if (!button) return;
  const response = await fetch(button.dataset.copyUrl, { credentials: "same-origin" });
  const text = await response.text();
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    window.prompt("Copy the command:", text);
  }
  setTimeout(() => { button.textContent = label; }, 1500);
});

// Show/hide toggles for masked inputs.
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-toggle-secret]");
  if (!toggle) return;
  const input = document.getElementById(toggle.dataset.toggleSecret);
  if (!input) return;
  const hidden = input.type === "password";
  input.type = hidden ? "text" : "password";
  toggle.textContent = hidden ? "Hide" : "Show";
  toggle.setAttribute("aria-pressed", String(hidden));
});

// The composer: the code editor over its textarea, the send shortcut, samples
// that follow the selects, and the server's problems marked in the editor.
const COMPOSER = "form[data-submit-shortcut]";
const REPLACE_EDITED =
  "Replace the event you edited with a new sample? " +
  "(In the editor, Ctrl+Z brings your version back.)";

function composerForm() {
  return document.querySelector(COMPOSER);
}

function payloadArea() {
  return document.getElementById("id_payload");
}

// The code editor of a textarea (see static/vendor/codemirror), or null when the
// editor's bundle did not load and the textarea is the editor.
function editorOf(textarea) {
  return (textarea && textarea.sandboxEditor) || null;
}

function sendComposer(form) {
  form.requestSubmit(form.querySelector("#send-button") || undefined);
}

function enhanceEditors(root) {
  if (!window.SandboxEditor || !root.querySelectorAll) return;
  const areas = root.matches && root.matches("textarea[data-json-editor]")
    ? [root]
    : root.querySelectorAll("textarea[data-json-editor]");
  for (const textarea of areas) {
    if (textarea.dataset.editor) continue;
    const form = textarea.closest(COMPOSER);
    textarea.sandboxEditor = window.SandboxEditor.json(textarea, {
      onSubmit: form ? () => sendComposer(form) : undefined,
    });
  }
}

// The text of the generated sample the editor holds, or null when it holds an
// event from elsewhere (a stored event to edit, a paste): replacing anything but
// an untouched sample asks first.
let sampleText = null;

function rememberSample(textarea) {
  sampleText = textarea && textarea.hasAttribute("data-sample") ? textarea.value : null;
}

function editedByHand() {
  const textarea = payloadArea();
  return Boolean(textarea && textarea.value.trim() && textarea.value !== sampleText);
}

// A select shows `value` as its own: also what it goes back to if the user
// declines to replace an edited event.
function showInSelect(select, value) {
  if (!select || value === undefined) return;
  const option = Array.from(select.options).find((item) => item.value === value);
  if (!option) return;
  for (const item of select.options) item.defaultSelected = item === option;
  select.value = value;
}

function revertSelect(select) {
  const shown = Array.from(select.options).find((item) => item.defaultSelected);
  select.value = shown ? shown.value : select.options[0].value;
}

// The validator's answer, marked in the editor, and the selects follow the event.
function applyProblems(list) {
  const editor = editorOf(payloadArea());
  if (editor) {
    editor.setProblems(
      Array.from(list.querySelectorAll("li[data-severity]"), (item) => ({
        message: item.textContent.trim(),
        severity: item.dataset.severity,
        line: item.dataset.line ? Number(item.dataset.line) : undefined,
        column: item.dataset.column ? Number(item.dataset.column) : undefined,
        path: item.dataset.path || "",
        key: "key" in item.dataset ? item.dataset.key : undefined,
      })),
    );
  }
  showInSelect(document.getElementById("id_event_type"), list.dataset.eventType);
  showInSelect(document.getElementById("id_source"), list.dataset.source);
  showInSelect(document.getElementById("id_template"), list.dataset.template);
}

// What a send answered is brought into view; a confirmation takes the focus, so
// Enter confirms and Esc goes back to the editor.
function showResult(result) {
  result.scrollIntoView({ block: "nearest" });
  const confirm = result.querySelector("#send-anyway");
  if (confirm) confirm.focus({ preventScroll: true });
}

function onLoaded(element) {
  enhanceEditors(element);
  if (element.id === "event-problems") applyProblems(element);
  if (element.id === "composer-result") showResult(element);
}

document.addEventListener("htmx:load", (event) => onLoaded(event.detail.elt));
document.addEventListener("DOMContentLoaded", () => {
  enhanceEditors(document);
  rememberSample(payloadArea());
});

// A new sample replaces the editor's text as one undoable change, keeping the
// editor (its history, focus and scroll) rather than a fresh textarea.
document.addEventListener("htmx:oobBeforeSwap", (event) => {
  const { target, fragment } = event.detail;
  if (!target || target.id !== "id_payload") return;
  const incoming = fragment.querySelector("#id_payload");
  if (!incoming) return;
  rememberSample(incoming);
  const editor = editorOf(target);
  if (!editor) return;
  event.detail.shouldSwap = false;
  target.toggleAttribute("data-sample", incoming.hasAttribute("data-sample"));
  editor.setText(incoming.value);
});

// Changing the type, source or semantic event regenerates the sample, after
// asking when that would throw away an edited event.
document.addEventListener("htmx:confirm", (event) => {
  const control = event.detail.elt;
  if (!control.matches || !control.matches("[data-regenerates]")) return;
  if (!editedByHand()) return;
  event.preventDefault();
  if (window.confirm(REPLACE_EDITED)) {
    event.detail.issueRequest(true);
    return;
  }
  const select = control.querySelector("select");
  if (select) revertSelect(select);
});

// Ctrl/Cmd+Enter sends the composer from anywhere on the page (the editor binds
// it itself and marks the key press handled).
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  if (event.defaultPrevented) return;
  const form = (event.target.closest && event.target.closest(COMPOSER)) || composerForm();
  if (!form) return;
  event.preventDefault();
  sendComposer(form);
});

// Enter in "Add to suite"'s name adds the step: the composer's own default
// button would send the event instead.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || event.ctrlKey || event.metaKey) return;
  const chooser = event.target.closest && event.target.closest("[data-add-to-suite]");
  const add = chooser && chooser.querySelector("#add-to-suite-confirm");
  if (!add || event.target.tagName !== "INPUT") return;
  event.preventDefault();
  add.click();
});

// Esc on "Send anyway" goes back to the event.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.target.id !== "send-anyway") return;
  const textarea = payloadArea();
  const editor = editorOf(textarea);
  if (editor) editor.focus();
  else if (textarea) textarea.focus();
});

// The editor's label focuses the editor (its textarea is hidden).
document.addEventListener("click", (event) => {
  const label = event.target.closest && event.target.closest("label[for]");
  const editor = label && editorOf(document.getElementById(label.htmlFor));
  if (!editor) return;
  event.preventDefault();
  editor.focus();
});

// Without the code editor, Tab in the JSON textarea indents instead of leaving
// the field; Esc then Tab leaves.
document.addEventListener("keydown", (event) => {
  const editor = event.target;
  if (!(editor instanceof HTMLTextAreaElement) || !editor.dataset.jsonEditor) return;
  if (event.key === "Escape") { editor.dataset.tabOut = "1"; return; }
  if (event.key !== "Tab" || event.shiftKey || editor.dataset.tabOut) {
    delete editor.dataset.tabOut;
    return;
  }
  event.preventDefault();
  editor.setRangeText("  ", editor.selectionStart, editor.selectionEnd, "end");
});

// Live countdowns to the next attempt; elements come and go with swaps, so each
// tick looks them up afresh.
function humanSeconds(seconds) {
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 90) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 90) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function tickCountdowns() {
  const now = Date.now();
  for (const element of document.querySelectorAll("[data-countdown]")) {
    const seconds = (Date.parse(element.dataset.countdown) - now) / 1000;
    element.textContent = seconds > 0.05
      ? `next attempt in ${humanSeconds(seconds)}`
      : "next attempt due now";
  }
}
setInterval(tickCountdowns, 200);
document.addEventListener("htmx:afterSettle", tickCountdowns);

// A failed htmx request is told in the banner at the top. htmx does not swap error
// answers, so the page (and anything being composed in it) stays as it was.
const ERROR_TEXT_LIMIT = 400;

// The sentence the sandbox put in its answer, as plain text, or "" when the answer
// is not a short message of ours.
function errorMessage(xhr) {
  const type = (xhr.getResponseHeader("Content-Type") || "").toLowerCase();
  const body = xhr.responseText || "";
  let text = "";
  if (type.startsWith("text/plain")) {
    text = body;
  } else if (type.startsWith("text/html")) {
    // A parsed document is inert: no scripts run, nothing loads. Error pages mark
    // their sentence, other pages say what happened in their heading, and a bare
    // sentence is its own message.
    const page = new DOMParser().parseFromString(body, "text/html");
    const said =
      page.querySelector("[data-error-message]") ||
      page.querySelector("main h1") ||
      (page.body.children.length === 0 ? page.body : null);
    text = said?.textContent || "";
  } else if (type.startsWith("application/json")) {
    try {
      text = String(JSON.parse(body).message || "");
    } catch {
      text = "";
    }
  }
  text = text.replace(/\s+/g, " ").trim();
  return text.length <= ERROR_TEXT_LIMIT ? text : "";
}

function showRequestError(message) {
  const banner = document.getElementById("request-error");
  if (!banner) return;
  banner.querySelector("[data-request-error-text]").textContent = message;
  banner.hidden = false;
}

document.addEventListener("htmx:responseError", (event) => {
  const { xhr } = event.detail;
  showRequestError(
    errorMessage(xhr) ||
      `The request failed (status ${xhr.status}). Nothing you composed was lost.`,
  );
});
document.addEventListener("htmx:sendError", () => {
  showRequestError(
    "The sandbox could not be reached. Nothing you composed was lost; " +
      "try again once it is running.",
  );
});
document.addEventListener("click", (event) => {
  if (!event.target.closest("[data-dismiss-request-error]")) return;
  document.getElementById("request-error").hidden = true;
});

// The replay form: choosing history or received events opens their filters.
document.addEventListener("change", (event) => {
  const radio = event.target;
  if (!radio.matches || !radio.matches('.replay-form input[name="source"]')) return;
  const filters = radio.form.querySelector("details[data-history-filters]");
  if (filters) filters.open = radio.value !== "file";
});
