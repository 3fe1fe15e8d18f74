// Live pages: every push is HTML a reload renders, and every push, send result or
// catch-up is applied so that the page converges on what is stored.
"use strict";

// Lists whose rows arrive one at a time (a push, a send's own result, a catch-up):
// each row is upserted (replaced if shown, else inserted at its place by id,
// newest first, never giving way to an older copy of itself) and the list is
// trimmed to the window the page shows.
const FEED = { list: "delivery-feed", row: "delivery-row", empty: "delivery-feed-empty" };
const LISTS = [
  FEED,
  { list: "mock-request-list", row: "mock-request", empty: "mock-requests-empty" },
  { list: "source-event-list", row: "source-event", empty: "source-events-empty" },
];

function isRowOf(spec, element) {
  return element.id.startsWith(`${spec.row}-`) && element.classList.contains(spec.row);
}

function listOf(element) {
  return LISTS.find((spec) => isRowOf(spec, element));
}

function rowNumber(spec, row) {
  return Number(row.id.slice(spec.row.length + 1));
}

function listRows(spec, list) {
  return Array.from(list.children).filter((element) => isRowOf(spec, element));
}

// Rows may carry their stored version (updated_at as a fixed-width digit string).
function isOlder(incoming, shown) {
  return (incoming.dataset.version || "") < (shown.dataset.version || "");
}

function trim(spec, list) {
  const size = Number(list.dataset.window);
  if (!size) return;
  for (const row of listRows(spec, list).slice(size)) row.remove();
}

function upsertRows(spec, rows) {
  const list = document.getElementById(spec.list);
  if (!list) return;
  const placed = [];
  // A row being replaced keeps the keyboard's focus (the feed's arrow keys).
  let focused = null;
  for (const row of rows) {
    // A list filtered by status (the source debugger's "Dropped") takes its own.
    if (list.dataset.status && row.dataset.status !== list.dataset.status) continue;
    const shown = document.getElementById(row.id);
    if (shown && shown.parentElement === list) {
      if (isOlder(row, shown)) continue;
      if (shown.contains(document.activeElement)) focused = row;
      shown.replaceWith(row);
    } else {
      const number = rowNumber(spec, row);
      const before = listRows(spec, list).find((other) => rowNumber(spec, other) < number);
      list.insertBefore(row, before || null);
    }
    placed.push(row);
  }
  if (listRows(spec, list).length) document.getElementById(spec.empty)?.remove();
  trim(spec, list);
  for (const row of placed) if (row.isConnected) htmx.process(row);
  if (focused?.isConnected) focused.querySelector("a, button")?.focus({ preventScroll: true });
  if (spec === FEED) markSelectedRow();
}

function parseElements(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return Array.from(template.content.children);
}

// A push is a list of elements, each aimed by its id. A list's rows are upserted.
// The element that holds the socket the push came by (a delivery pane) gets the
// new content but stays itself: replacing it would close its socket and open
// another. Any other element shown is replaced.
document.addEventListener("htmx:wsBeforeMessage", (event) => {
  event.preventDefault();
  const socketHolder = event.target;
  const rowsByList = new Map();
  for (const element of parseElements(event.detail.message)) {
    const spec = listOf(element);
    if (spec) {
      if (!rowsByList.has(spec)) rowsByList.set(spec, []);
      rowsByList.get(spec).push(element);
      continue;
    }
    const shown = element.id ? document.getElementById(element.id) : null;
    if (!shown) continue;
    if (shown === socketHolder) {
      if (shown.querySelector(".htmx-request")) {
        // A request from inside (Resend, Retry now) is on its way: replacing the
        // pane now would detach the button its answer is aimed from, and htmx
        // could not place that answer. The push waits for it.
        heldPushes.set(shown, element);
        continue;
      }
      fillSocketHolder(shown, element);
    } else {
      shown.replaceWith(element);
      htmx.process(element);
    }
  }
  for (const [spec, rows] of rowsByList) upsertRows(spec, rows);
  reloadIfSettled();
});

const heldPushes = new WeakMap();

function fillSocketHolder(holder, element) {
  const opened = holder.querySelector(`#${ATTEMPT_VIEW}`);
  holder.replaceChildren(...element.childNodes);
  for (const child of holder.children) htmx.process(child);
  if (holder.id === PANE) keepChosenAttempt(holder, opened);
}

// Once the request is answered, a push held for it is shown, unless the answer
// replaced the pane (a new delivery's pane has a socket of its own).
function showHeldPushes() {
  for (const holder of document.querySelectorAll("[ws-connect]")) {
    const held = heldPushes.get(holder);
    if (!held || holder.querySelector(".htmx-request")) continue;
    heldPushes.delete(holder);
    fillSocketHolder(holder, held);
  }
}
document.addEventListener("htmx:afterSettle", showHeldPushes);
// A request that failed swaps nothing, so nothing settles.
document.addEventListener("htmx:afterRequest", (event) => {
  if (!event.detail.successful) setTimeout(showHeldPushes);
});

// A page that waits for a run (a suite's report) reloads once the run's pushed
// progress says it has settled.
function reloadIfSettled() {
  const progress = document.getElementById("run-progress");
  if (!progress || !progress.hasAttribute("data-settled")) return;
  if (progress.closest("[data-reload-when-settled]")) window.location.reload();
}

// A section that lists what arrived (a mock's requests) fetches itself once when
// its socket (re)opens: what came while the socket was down or still opening is
// then shown too. Its trigger is "live-resync from:closest [ws-connect]".
document.addEventListener("htmx:wsOpen", (event) => {
  htmx.trigger(event.target, "live-resync");
});

// A send's own result carries its row out of band, aimed at the top of the feed.
document.addEventListener("htmx:oobBeforeSwap", (event) => {
  const { fragment, target } = event.detail;
  if (!target || target.id !== FEED.list) return;
  event.detail.shouldSwap = false;
  upsertRows(FEED, Array.from(fragment.children).filter((element) => isRowOf(FEED, element)));
});

// The catch-up after (re)connecting is the feed as stored when it was read: its
// rows are upserted, newer rows pushed meanwhile stay, and shown rows the stored
// window no longer holds go.
document.addEventListener("htmx:beforeSwap", (event) => {
  const { target, serverResponse } = event.detail;
  if (!target || target.id !== FEED.list || event.detail.isError) return;
  const stored = parseElements(serverResponse).find((element) => element.id === FEED.list);
  if (!stored) return;
  event.detail.shouldSwap = false;
  const rows = listRows(FEED, stored);
  const newest = rows.length ? rowNumber(FEED, rows[0]) : 0;
  const keep = new Set(rows.map((row) => row.id));
  for (const shown of listRows(FEED, target)) {
    if (rowNumber(FEED, shown) <= newest && !keep.has(shown.id)) shown.remove();
  }
  upsertRows(FEED, rows);
});

// A delivery's pane opens one attempt at a time, the latest unless the user
// chose another in its timeline. A chosen attempt stays open while pushes bring
// new ones; choosing the latest again follows the latest.
const PANE = "delivery-detail";
const ATTEMPT_VIEW = "attempt-view";

function markOpenedAttempt(pane) {
  const opened = pane.querySelector(`#${ATTEMPT_VIEW}`)?.dataset.attempt;
  for (const row of pane.querySelectorAll("#attempt-timeline tr[data-attempt]")) {
    const on = row.dataset.attempt === opened;
    row.classList.toggle("chosen", on);
    if (on) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
}

// After a push: the pushed pane opens the latest attempt; a chosen one is put
// back (as it was shown if it had ended, else as stored now).
function keepChosenAttempt(pane, previous) {
  const chosen = pane.dataset.chosenAttempt;
  const view = pane.querySelector(`#${ATTEMPT_VIEW}`);
  if (chosen && view && view.dataset.attempt !== chosen) {
    const link = pane.querySelector(`[data-attempt-link="${chosen}"]`);
    if (!link) {
      delete pane.dataset.chosenAttempt;
    } else if (previous?.dataset.attempt === chosen && previous.hasAttribute("data-settled")) {
      view.replaceWith(previous);
    } else {
      htmx.ajax("GET", link.getAttribute("hx-get"), { target: view, swap: "outerHTML" });
    }
  }
  markOpenedAttempt(pane);
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("[data-attempt-link]");
  const pane = link?.closest(`#${PANE}`);
  if (!pane) return;
  if (link.dataset.attemptLink === "latest" || link.hasAttribute("data-latest")) {
    delete pane.dataset.chosenAttempt;
  } else {
    pane.dataset.chosenAttempt = link.dataset.attemptLink;
  }
});

// The feed's selected row: the delivery the pane shows, until the arrow keys
// move the selection (Enter then opens it).
let paneShows = null;

function deliveryOf(row) {
  return String(rowNumber(FEED, row));
}

function markSelectedRow() {
  const feed = document.getElementById(FEED.list);
  if (!feed) return;
  const shows = document.getElementById(PANE)?.dataset.delivery || null;
  if (shows !== paneShows) {
    paneShows = shows;
    if (shows) feed.dataset.selected = shows;
  }
  for (const row of listRows(FEED, feed)) {
    const on = deliveryOf(row) === feed.dataset.selected;
    row.classList.toggle("selected", on);
    if (on) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
}

function selectRow(feed, row) {
  feed.dataset.selected = deliveryOf(row);
  markSelectedRow();
  row.scrollIntoView({ block: "nearest" });
  row.querySelector(".row-link")?.focus({ preventScroll: true });
}

document.addEventListener("keydown", (event) => {
  const feed = document.getElementById(FEED.list);
  if (!feed || !feed.contains(event.target)) return;
  if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
  const rows = listRows(FEED, feed);
  if (!rows.length) return;
  const at = rows.findIndex((row) => deliveryOf(row) === feed.dataset.selected);
  const moves = {
    ArrowDown: at < 0 ? 0 : Math.min(at + 1, rows.length - 1),
    ArrowUp: at < 0 ? 0 : Math.max(at - 1, 0),
    Home: 0,
    End: rows.length - 1,
  };
  if (event.key in moves) {
    event.preventDefault();
    selectRow(feed, rows[moves[event.key]]);
  } else if (event.key === "Enter" && event.target === feed && at >= 0) {
    event.preventDefault();
    rows[at].querySelector(".row-link").click();
  }
});

// A row clicked or reached with Tab is selected too.
for (const type of ["click", "focusin"]) {
  document.addEventListener(type, (event) => {
    const row = event.target.closest(".row-link")?.closest(".delivery-row");
    const feed = row?.parentElement;
    if (!feed || feed.id !== FEED.list || feed.dataset.selected === deliveryOf(row)) {
      return;
    }
    feed.dataset.selected = deliveryOf(row);
    markSelectedRow();
  });
}

document.addEventListener("htmx:afterSettle", () => {
  const pane = document.getElementById(PANE);
  if (pane) markOpenedAttempt(pane);
  markSelectedRow();
});
markSelectedRow();

// The banner says when the page's live connection is lost, when it tries again,
// and that it is back. The delay is the websocket extension's own full jitter,
// noted here so that the banner can tell it; the extension asks for it just
// before it announces the close.
let reconnectDelayMs = null;
htmx.config.wsReconnectDelay = (retryCount) => {
  reconnectDelayMs = 1000 * 2 ** Math.min(retryCount, 6) * Math.random();
  return reconnectDelayMs;
};

// isPageSocket (sandbox.js) tells the page's own socket from a pane's or a run's.
const connection = { lost: false, retryAt: null, ticking: null, hiding: null };

function showConnection(text) {
  const banner = document.getElementById("connection-banner");
  if (!banner) return;
  banner.querySelector("[data-connection-text]").textContent = text;
  banner.hidden = text === "";
}

function tellLost() {
  if (connection.retryAt === null) {
    showConnection(
      "Live updates stopped: the connection to the sandbox was closed. " +
        "Reload the page to reconnect.",
    );
    return;
  }
  const seconds = Math.ceil((connection.retryAt - Date.now()) / 1000);
  showConnection(
    "Live updates paused: the connection to the sandbox was lost. " +
      (seconds > 0 ? `Reconnecting in ${seconds} s…` : "Reconnecting…"),
  );
}

document.addEventListener("htmx:wsClose", (event) => {
  const delay = reconnectDelayMs;
  reconnectDelayMs = null;
  if (!isPageSocket(event)) return;
  connection.lost = true;
  connection.retryAt = delay === null ? null : Date.now() + delay;
  clearTimeout(connection.hiding);
  clearInterval(connection.ticking);
  connection.ticking = setInterval(tellLost, 250);
  tellLost();
});

document.addEventListener("htmx:wsOpen", (event) => {
  if (!isPageSocket(event) || !connection.lost) return;
  connection.lost = false;
  clearInterval(connection.ticking);
  showConnection("Reconnected: live updates are back.");
  connection.hiding = setTimeout(() => showConnection(""), 2500);
});
