// The Monaco editor: loaded from /vendor/monaco (its AMD build, no bundler),
// with Python highlighting, completion and hover from the server's stubs,
// error markers, and jumping to a line.

import { apiText } from "./api.js";
import { completionsAt, hoverFor, parseStubs } from "./stubs.js";

const MONACO = "/vendor/monaco/vs";

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(script);
  });
}

let monacoReady = null;

/** Monaco, loaded once. */
function loadMonaco() {
  if (!monacoReady) {
    monacoReady = (async () => {
      self.MonacoEnvironment = { getWorkerUrl: () => `${MONACO}/base/worker/workerMain.js` };
      await loadScript(`${MONACO}/loader.js`);
      window.require.config({ paths: { vs: MONACO } });
      return new Promise((resolve, reject) => window.require(["vs/editor/editor.main"], () => resolve(window.monaco), reject));
    })();
  }
  return monacoReady;
}

export class Editor {
  /** Create the editor in `element`; `actions` are `{run, save}` callbacks for the shortcuts. */
  static async create(element, actions) {
    const monaco = await loadMonaco();
    const editor = new Editor(monaco, element, actions);
    await editor.loadStubs();
    return editor;
  }

  constructor(monaco, element, actions) {
    this.monaco = monaco;
    this.stubs = parseStubs("");
    this.stubsText = null;
    this.decorations = null;
    this.editor = monaco.editor.create(element, {
      language: "python",
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 13,
      scrollBeyondLastLine: false,
      tabSize: 4,
    });
    this.editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.Enter, actions.run);
    this.editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS, actions.save);
    this.registerLanguageHelp();
  }

  /** Fetch the server's stubs (again: they change as services are
   * registered and removed); parsed only when they changed. */
  async loadStubs() {
    const text = await apiText("/api/stubs/hero_logic.pyi").catch(() => null);
    if (text === null || text === this.stubsText) return;
    this.stubsText = text;
    this.stubs = parseStubs(text);
  }

  registerLanguageHelp() {
    const monaco = this.monaco;
    const kinds = { method: monaco.languages.CompletionItemKind.Method, property: monaco.languages.CompletionItemKind.Property, class: monaco.languages.CompletionItemKind.Class, variable: monaco.languages.CompletionItemKind.Variable };
    monaco.languages.registerCompletionItemProvider("python", {
      triggerCharacters: ["."],
      provideCompletionItems: (model, position) => {
        const before = model.getLineContent(position.lineNumber).slice(0, position.column - 1);
        const word = model.getWordUntilPosition(position);
        const range = { startLineNumber: position.lineNumber, endLineNumber: position.lineNumber, startColumn: word.startColumn, endColumn: word.endColumn };
        const suggestions = completionsAt(this.stubs, before).map((member) => ({
          label: member.name,
          kind: kinds[member.kind] ?? kinds.property,
          detail: member.signature,
          documentation: member.doc,
          insertText: member.name,
          range,
        }));
        return { suggestions };
      },
    });
    monaco.languages.registerHoverProvider("python", {
      provideHover: (model, position) => {
        const line = model.getLineContent(position.lineNumber);
        const word = model.getWordAtPosition(position);
        if (!word) return null;
        const chain = /([A-Za-z_][\w.]*)$/.exec(line.slice(0, word.endColumn - 1));
        const found = chain && hoverFor(this.stubs, chain[1].split("."));
        if (!found) return null;
        return { contents: [{ value: "```python\n" + found.signature + "\n```" }, { value: found.doc || "" }] };
      },
    });
  }

  get source() {
    return this.editor.getValue();
  }

  set source(text) {
    this.editor.setValue(text);
    this.clearMarkers();
  }

  /** Call `listener` whenever the text changes. */
  onChange(listener) {
    this.editor.onDidChangeModelContent(listener);
  }

  /** Mark an error on a line; `reveal` scrolls to it. */
  markError(line, message, reveal = false) {
    const model = this.editor.getModel();
    const lineNumber = Math.min(Math.max(1, line || 1), model.getLineCount());
    this.monaco.editor.setModelMarkers(model, "hero_logic", [
      { startLineNumber: lineNumber, endLineNumber: lineNumber, startColumn: 1, endColumn: model.getLineMaxColumn(lineNumber), message, severity: this.monaco.MarkerSeverity.Error },
    ]);
    if (reveal) this.revealLine(lineNumber, { scroll: true });
  }

  clearMarkers() {
    this.monaco.editor.setModelMarkers(this.editor.getModel(), "hero_logic", []);
  }

  /**
   * Highlight a line; with `scroll`, bring it into view too. Never moves the
   * cursor or takes the focus: the user may be typing while a run ends, and
   * what they type must land where they put it. Scroll only when the user
   * asked to see the line (clicked a span).
   */
  revealLine(line, { scroll = false } = {}) {
    if (scroll) this.editor.revealLineInCenterIfOutsideViewport(line);
    this.decorations?.clear();
    this.decorations = this.editor.createDecorationsCollection([
      // The number is marked too: it says which line it is without reading the code.
      { range: new this.monaco.Range(line, 1, line, 1), options: { isWholeLine: true, className: "highlight-line", lineNumberClassName: "highlight-line-number" } },
    ]);
  }
}
