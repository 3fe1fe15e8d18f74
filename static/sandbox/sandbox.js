// Small behaviours htmx does not cover: copying, shortcuts, countdowns.
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

// Ctrl/Cmd+Enter sends from anywhere in the composer.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  const form = event.target.closest("form[data-submit-shortcut]");
  if (!form) return;
  event.preventDefault();
  form.requestSubmit();
});

// Tab in the JSON editor indents instead of leaving the field; Esc then Tab leaves.
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
