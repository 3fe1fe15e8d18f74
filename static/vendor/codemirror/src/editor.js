// The sandbox's code editor: CodeMirror 6 over a form's <textarea>, exposed as
// window.SandboxEditor. The textarea stays in the form, out of sight, and always
// holds the editor's text, so the form posts as it would without the editor;
// whatever writes the textarea (with an input event) is shown in the editor. If
// this file never loads, the textarea is simply the editor.
import { basicSetup } from "codemirror";
import { indentWithTab, isolateHistory } from "@codemirror/commands";
import { javascript as javascriptLanguage } from "@codemirror/lang-javascript";
import { json as jsonLanguage } from "@codemirror/lang-json";
import { ensureSyntaxTree, syntaxTree } from "@codemirror/language";
import { forEachDiagnostic, lintGutter, setDiagnostics } from "@codemirror/lint";
import { EditorState, Prec } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";

const PARSE_BUDGET_MS = 200;
// Out of sight and out of the tab order, but still in the form and writable.
const SOURCE_STYLE = {
  position: "absolute",
  width: "1px",
  height: "1px",
  minHeight: "0",
  margin: "-1px",
  padding: "0",
  border: "0",
  overflow: "hidden",
  clipPath: "inset(50%)",
  resize: "none",
};

// "context.traits.email", "properties.products[0].sku" -> ["context", ...].
function pathSegments(path) {
  const segments = [];
  for (const part of path ? path.split(".") : []) {
    const match = /^(.*?)((?:\[\d+\])*)$/.exec(part);
    if (match[1]) segments.push(match[1]);
    for (const index of match[2].matchAll(/\[(\d+)\]/g)) {
      segments.push(Number(index[1]));
    }
  }
  return segments;
}

function propertyName(state, property) {
  const name = property.getChild("PropertyName");
  if (!name) return null;
  try {
    return JSON.parse(state.sliceDoc(name.from, name.to));
  } catch {
    return null;
  }
}

function valueOf(node) {
  // A Property's value is its last child after the colon.
  let child = node.lastChild;
  while (child && (child.name === "⚠" || child.name === ":")) child = child.prevSibling;
  return child && child.name !== "PropertyName" ? child : null;
}

function properties(state, object, key) {
  return object
    .getChildren("Property")
    .filter((property) => propertyName(state, property) === key);
}

function arrayItem(array, index) {
  let seen = -1;
  for (let child = array.firstChild; child; child = child.nextSibling) {
    if (["[", "]", ",", "⚠"].includes(child.name)) continue;
    seen += 1;
    if (seen === index) return child;
  }
  return null;
}

// Where a problem about `path` (and, for a repeated key, about `key` inside it)
// sits in the text: the ranges to mark. What cannot be found is marked on the
// nearest enclosing value's first character, so every problem shows somewhere.
function pathRanges(state, path, key) {
  const tree = ensureSyntaxTree(state, state.doc.length, PARSE_BUDGET_MS) ||
    syntaxTree(state);
  let node = tree.topNode.firstChild;
  while (node && node.name === "⚠") node = node.nextSibling;
  if (!node) return [{ from: 0, to: Math.min(1, state.doc.length) }];
  let mark = { from: node.from, to: node.from + 1 };
  for (const segment of pathSegments(path)) {
    let next = null;
    if (typeof segment === "number" && node.name === "Array") {
      next = arrayItem(node, segment);
      if (next) mark = { from: next.from, to: next.to };
    } else if (typeof segment === "string" && node.name === "Object") {
      // The last of repeated keys is the one a JSON reader keeps.
      const property = properties(state, node, segment).pop();
      const name = property && property.getChild("PropertyName");
      if (name) mark = { from: name.from, to: name.to };
      next = property ? valueOf(property) : null;
    }
    if (!next) break;
    node = next;
  }
  if (key !== undefined && node.name === "Object") {
    const repeated = properties(state, node, key)
      .map((property) => property.getChild("PropertyName"))
      .filter(Boolean);
    if (repeated.length) return repeated.map((name) => ({ from: name.from, to: name.to }));
  }
  // A long value is marked on its first line only.
  const lineEnd = state.doc.lineAt(mark.from).to;
  return [{ from: mark.from, to: Math.max(mark.from, Math.min(mark.to, lineEnd)) }];
}

// 1-based line and column (in UTF-16 code units, as the editor counts them).
function pointRange(state, line, column) {
  const doc = state.doc;
  const at = doc.line(Math.min(Math.max(1, line), doc.lines));
  const from = at.from + Math.min(Math.max(0, column - 1), at.length);
  return { from, to: Math.min(from + 1, at.to) };
}

function toDiagnostics(state, problems) {
  const diagnostics = [];
  for (const problem of problems) {
    const ranges = problem.line
      ? [pointRange(state, problem.line, problem.column || 1)]
      : pathRanges(state, problem.path || "", problem.key);
    for (const range of ranges) {
      diagnostics.push({
        ...range,
        severity: problem.severity || "error",
        message: problem.message,
        source: problem.source || "sandbox",
      });
    }
  }
  return diagnostics;
}

function create(textarea, language, options = {}) {
  const submit = Prec.highest(
    keymap.of([
      {
        key: "Mod-Enter",
        run: () => {
          if (!options.onSubmit) return false;
          options.onSubmit();
          return true;
        },
      },
    ]),
  );
  const editor = { textarea, onChange: options.onChange };
  const sync = EditorView.updateListener.of((update) => {
    if (!update.docChanged) return;
    textarea.value = update.state.doc.toString();
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    if (editor.onChange) editor.onChange(editor);
  });
  const content = { "aria-multiline": "true", spellcheck: "false" };
  for (const name of ["aria-label", "aria-labelledby", "aria-describedby"]) {
    const value = options[name] || textarea.getAttribute(name);
    if (value) content[name] = value;
  }
  const view = new EditorView({
    doc: textarea.value,
    extensions: [
      submit,
      basicSetup,
      keymap.of([indentWithTab]),
      EditorState.tabSize.of(2),
      language,
      lintGutter(),
      sync,
      EditorView.contentAttributes.of(content),
    ],
  });
  textarea.insertAdjacentElement("afterend", view.dom);
  const style = textarea.getAttribute("style");
  Object.assign(textarea.style, SOURCE_STYLE);
  textarea.tabIndex = -1;
  textarea.setAttribute("aria-hidden", "true");
  textarea.dataset.editor = "codemirror";
  const follow = () => {
    if (textarea.value !== editor.text()) editor.setText(textarea.value);
  };
  textarea.addEventListener("input", follow);

  editor.view = view;
  // The editor's text: a string, as the textarea holds it.
  editor.text = () => view.state.doc.toString();
  // Replace the whole text as one undoable change of its own (Ctrl+Z brings
  // the old text back, however soon after typing it came).
  editor.setText = (text) => {
    if (text === editor.text()) return;
    view.dispatch({
      changes: { from: 0, to: view.state.doc.length, insert: text },
      selection: { anchor: 0 },
      scrollIntoView: true,
      annotations: isolateHistory.of("full"),
    });
  };
  // Problems as the server reports them: {message, severity ("error" |
  // "warning" | "info"), and either line and column, or a path such as
  // "properties.revenue" with an optional key repeated inside it}.
  editor.setProblems = (problems) => {
    view.dispatch(setDiagnostics(view.state, toDiagnostics(view.state, problems)));
  };
  // What the editor marks now: [{line, column, severity, message}].
  editor.problems = () => {
    const found = [];
    forEachDiagnostic(view.state, (diagnostic, from) => {
      const line = view.state.doc.lineAt(from);
      found.push({
        line: line.number,
        column: from - line.from + 1,
        severity: diagnostic.severity,
        message: diagnostic.message,
      });
    });
    return found;
  };
  editor.focus = () => view.focus();
  editor.destroy = () => {
    view.destroy();
    textarea.removeEventListener("input", follow);
    if (style === null) textarea.removeAttribute("style");
    else textarea.setAttribute("style", style);
    textarea.removeAttribute("tabindex");
    textarea.removeAttribute("aria-hidden");
    delete textarea.dataset.editor;
  };
  return editor;
}

window.SandboxEditor = {
  // An editor for JSON over `textarea`; options: onSubmit (Ctrl/Cmd+Enter),
  // onChange, aria-label / aria-labelledby / aria-describedby.
  json: (textarea, options) => create(textarea, jsonLanguage(), options),
  // The same editor for JavaScript (subscription functions).
  javascript: (textarea, options) => create(textarea, javascriptLanguage(), options),
};
