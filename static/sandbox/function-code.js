// The code page: the code editor over the source textarea, Ctrl/Cmd+S saves, and
// a refused save's line and column are marked in the editor and the cursor put
// there. Without this file, the textarea is the editor and the button saves.
"use strict";

(function () {
  const textarea = document.querySelector("textarea[data-code-editor]");
  if (!textarea) return;
  const form = textarea.form;
  const save = () => form.requestSubmit(form.querySelector("#save-code") || undefined);

  const editor = window.SandboxEditor
    ? window.SandboxEditor.javascript(textarea, {
      onSubmit: save,
      "aria-labelledby": "code-label",
    })
    : null;

  // Ctrl/Cmd+S saves from anywhere on the page instead of saving the page.
  document.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.altKey || event.shiftKey) return;
    if (event.key.toLowerCase() !== "s") return;
    event.preventDefault();
    save();
  });

  // The editor's label focuses the editor (its textarea is hidden).
  const label = document.getElementById("code-label");
  if (editor && label) {
    label.addEventListener("click", (event) => {
      event.preventDefault();
      editor.focus();
    });
  }

  const problem = document.querySelector("[data-code-problem]");
  if (editor && problem && problem.dataset.line) {
    const line = Number(problem.dataset.line);
    const column = Number(problem.dataset.column) || 1;
    editor.setProblems([{ message: problem.dataset.message, line, column }]);
    const doc = editor.view.state.doc;
    const at = doc.line(Math.min(Math.max(1, line), doc.lines));
    const anchor = at.from + Math.min(Math.max(0, column - 1), at.length);
    editor.view.dispatch({ selection: { anchor }, scrollIntoView: true });
    editor.focus();
  }

  if (editor) return;
  // Without the code editor, Tab indents instead of leaving the field; Esc then
  // Tab leaves.
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      textarea.dataset.tabOut = "1";
      return;
    }
    if (event.key !== "Tab" || event.shiftKey || textarea.dataset.tabOut) {
      delete textarea.dataset.tabOut;
      return;
    }
    event.preventDefault();
    textarea.setRangeText("\t", textarea.selectionStart, textarea.selectionEnd, "end");
  });
})();
