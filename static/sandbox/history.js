// Live history rows (the history's first page, a subscription's recent
// deliveries): rows pushed over the page's socket, or read again when it
// (re)opens, take their place by id, newest first, and the list keeps its size.
// live.js replaces a row the page already shows; this places the new ones.
"use strict";

(() => {
  // Pages restored from htmx's history run their scripts again: listen once.
  if (window.sandboxHistoryRows) return;
  window.sandboxHistoryRows = true;

  const LIST = "history-rows";
  const ROW = "history-row";

  function isRow(element) {
    return element.classList.contains(ROW) && element.id.startsWith(`${ROW}-`);
  }

  function rowNumber(row) {
    return Number(row.id.slice(ROW.length + 1));
  }

  function listRows(list) {
    return Array.from(list.children).filter(isRow);
  }

  // Rows carry their stored version (updated_at as a fixed-width digit string).
  function isNewer(incoming, shown) {
    return (incoming.dataset.version || "") > (shown.dataset.version || "");
  }

  function rowsIn(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    const list = template.content.getElementById(LIST);
    return Array.from((list || template.content).children).filter(isRow);
  }

  // "Older" goes on below the last row shown, so rows pushed off the bottom
  // are on the next page.
  function pointOlderAtLastRow(list) {
    const link = document.getElementById("history-older");
    const rows = listRows(list);
    if (!link || !rows.length) return;
    const query = link.dataset.query;
    const url = `?${query ? `${query}&` : ""}before=${rowNumber(rows[rows.length - 1])}`;
    link.setAttribute("href", url);
    link.setAttribute("hx-get", url);
    link.hidden = false;
    htmx.process(link);
  }

  function place(rows) {
    const list = document.getElementById(LIST);
    if (!list) return;
    const placed = [];
    for (const row of rows) {
      const shown = document.getElementById(row.id);
      if (shown) {
        if (shown.parentElement !== list || !isNewer(row, shown)) continue;
        shown.replaceWith(row);
      } else {
        const number = rowNumber(row);
        const before = listRows(list).find((other) => rowNumber(other) < number);
        list.insertBefore(row, before || null);
      }
      placed.push(row);
    }
    const shownRows = listRows(list);
    if (shownRows.length) {
      document.getElementById("history-empty")?.remove();
      list.closest("table")?.removeAttribute("hidden");
    }
    const size = Number(list.dataset.window);
    if (size && shownRows.length > size) {
      for (const row of shownRows.slice(size)) row.remove();
      pointOlderAtLastRow(list);
    }
    for (const row of placed) if (row.isConnected) htmx.process(row);
  }

  document.addEventListener("htmx:wsBeforeMessage", (event) => {
    const rows = rowsIn(event.detail.message);
    if (rows.length) place(rows);
  });

  // The catch-up after (re)connecting is the list as stored when it was read:
  // its rows are placed, newer rows pushed meanwhile stay, and shown rows the
  // stored list no longer holds go.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const { target, serverResponse } = event.detail;
    if (!target || !target.hasAttribute("data-live-catch-up") || event.detail.isError) {
      return;
    }
    const list = document.getElementById(LIST);
    if (!list || !target.contains(list)) return;
    event.detail.shouldSwap = false;
    const template = document.createElement("template");
    template.innerHTML = serverResponse;
    const stored = template.content.getElementById(LIST);
    if (!stored) return;
    const rows = listRows(stored);
    const newest = rows.length ? rowNumber(rows[0]) : 0;
    const keep = new Set(rows.map((row) => row.id));
    for (const shown of listRows(list)) {
      if (rowNumber(shown) <= newest && !keep.has(shown.id)) shown.remove();
    }
    place(rows);
    const older = template.content.getElementById("history-older");
    if (older && !older.hidden) pointOlderAtLastRow(list);
  });
})();
