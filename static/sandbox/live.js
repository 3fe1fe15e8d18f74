// The live feed: every row that arrives (a websocket push, a send's own result, a
// catch-up after reconnecting) is an upsert, so the page converges on what is stored.
"use strict";

const ROW_PREFIX = "delivery-row-";

function rowNumber(row) {
  return Number(row.id.slice(ROW_PREFIX.length));
}

function isRow(element) {
  return element.id.startsWith(ROW_PREFIX) && element.classList.contains("delivery-row");
}

function feedRows(feed) {
  return Array.from(feed.children).filter(isRow);
}

// Rows carry their stored version (updated_at as a fixed-width digit string): a
// row never gives way to an older copy of itself arriving late.
function isOlder(incoming, shown) {
  return (incoming.dataset.version || "") < (shown.dataset.version || "");
}

function trim(feed) {
  const size = Number(feed.dataset.window);
  if (!size) return;
  for (const row of feedRows(feed).slice(size)) row.remove();
}

function upsertRows(rows) {
  const feed = document.getElementById("delivery-feed");
  if (!feed) return;
  const placed = [];
  for (const row of rows) {
    const shown = document.getElementById(row.id);
    if (shown && shown.parentElement === feed) {
      if (isOlder(row, shown)) continue;
      shown.replaceWith(row);
    } else {
      const number = rowNumber(row);
      const before = feedRows(feed).find((other) => rowNumber(other) < number);
      feed.insertBefore(row, before || null);
    }
    placed.push(row);
  }
  if (feedRows(feed).length) document.getElementById("delivery-feed-empty")?.remove();
  trim(feed);
  for (const row of placed) if (row.isConnected) htmx.process(row);
}

function parseRows(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return Array.from(template.content.children);
}

// A websocket push is a list of rows; anything else is left to htmx.
document.addEventListener("htmx:wsBeforeMessage", (event) => {
  const elements = parseRows(event.detail.message);
  if (!elements.length || !elements.every(isRow)) return;
  event.preventDefault();
  upsertRows(elements);
});

// A send's own result carries its row out of band, aimed at the top of the feed.
document.addEventListener("htmx:oobBeforeSwap", (event) => {
  const { fragment, target } = event.detail;
  if (!target || target.id !== "delivery-feed") return;
  event.detail.shouldSwap = false;
  upsertRows(Array.from(fragment.children).filter(isRow));
});

// The catch-up after (re)connecting is the feed as stored when it was read: its
// rows are upserted, newer rows pushed meanwhile stay, and shown rows the stored
// window no longer holds go.
document.addEventListener("htmx:beforeSwap", (event) => {
  const { target, serverResponse } = event.detail;
  if (!target || target.id !== "delivery-feed" || event.detail.isError) return;
  const stored = parseRows(serverResponse).find((element) => element.id === "delivery-feed");
  if (!stored) return;
  event.detail.shouldSwap = false;
  const rows = feedRows(stored);
  const newest = rows.length ? rowNumber(rows[0]) : 0;
  const keep = new Set(rows.map((row) => row.id));
  for (const shown of feedRows(target)) {
    if (rowNumber(shown) <= newest && !keep.has(shown.id)) shown.remove();
  }
  upsertRows(rows);
});
