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
  for (const row of rows) {
    const shown = document.getElementById(row.id);
    if (shown && shown.parentElement === list) {
      if (isOlder(row, shown)) continue;
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
      shown.replaceChildren(...element.childNodes);
      for (const child of shown.children) htmx.process(child);
    } else {
      shown.replaceWith(element);
      htmx.process(element);
    }
  }
  for (const [spec, rows] of rowsByList) upsertRows(spec, rows);
});

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
