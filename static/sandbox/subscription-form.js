// The subscription form shows the fields of the chosen kind only (a webhook's
// URL, a function's limits) and words the timeout for it. The other kind's
// fields are disabled, so they are not posted and the server keeps them as
// stored. Without this file every field shows and the server picks by kind.
"use strict";

(function () {
  const form = document.querySelector("form[data-subscription-form]");
  if (!form) return;

  function chosenKind() {
    const checked = form.querySelector('input[name="kind"]:checked');
    return checked ? checked.value : "webhook";
  }

  function showKind() {
    const kind = chosenKind();
    for (const element of form.querySelectorAll("[data-kind-only]")) {
      const shown = element.dataset.kindOnly === kind;
      element.hidden = !shown;
      for (const control of element.querySelectorAll("input, select, textarea, button")) {
        control.disabled = !shown;
      }
    }
    const key = kind === "function" ? "textFunction" : "textWebhook";
    for (const element of form.querySelectorAll("[data-text-webhook]")) {
      element.textContent = element.dataset[key];
    }
  }

  form.addEventListener("change", (event) => {
    if (event.target.name === "kind") showKind();
  });
  // A page brought back from the browser's history keeps the kind it showed.
  window.addEventListener("pageshow", showKind);
  showKind();
})();
