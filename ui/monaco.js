// The Monaco editor: loaded from /vendor/monaco (its AMD build, no bundler),
// with Python highlighting, completion and hover from the server's stubs,
// error markers, and jumping to a line.

import { apiText } from "./api.js";
import { completionsAt, hoverFor, localTypes, parseStubs, snippetFor } from "./stubs.js";
import { onThemeChange } from "./theme.js";

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
    /** The model the user edits. Made here, not by the editor: a model the
     * editor makes is disposed when another one is put in it. Another
     * module's source is shown read-only in a model of its own
     * (`showModule`), and this one comes back. */
    this.ownModel = monaco.editor.createModel("", "python");
    this.moduleModel = null;
    /** Told `true` when the user's own source comes back, `false` when another module's is shown. */
    this.onSwap = null;
    this.editor = monaco.editor.create(element, {
      model: this.ownModel,
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 13,
      scrollBeyondLastLine: false,
      tabSize: 4,
    });
    this.editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.Enter, actions.run);
    this.editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS, actions.save);
    this.registerLanguageHelp();
    onThemeChange((theme) => monaco.editor.setTheme(theme === "dark" ? "vs-dark" : "vs"));
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
        // What `with flow.step(...) as s:` made `s` (up to this line).
        const above = model.getValueInRange({ startLineNumber: 1, startColumn: 1, endLineNumber: position.lineNumber, endColumn: 1 });
        const locals = localTypes(this.stubs, above);
        const snippet = monaco.languages.CompletionItemInsertTextRule.InsertAsSnippet;
        const suggestions = completionsAt(this.stubs, before, locals).map((member) => {
          const insert = snippetFor(member);
          return {
            label: member.name,
            kind: kinds[member.kind] ?? kinds.property,
            detail: member.signature,
            documentation: member.doc,
            insertText: insert,
            insertTextRules: insert === member.name ? undefined : snippet,
            range,
          };
        });
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

  /** The user's own source, even while another module is shown. */
  get source() {
    return this.ownModel.getValue();
  }

  set source(text) {
    this.showOwn();
    this.ownModel.setValue(text);
    this.clearMarkers();
  }

  /** Show another module's `text` read-only (a subflow's source), until `showOwn`. */
  showModule(text) {
    if (this.moduleModel?.getValue() === text) {
      this.swapTo(this.moduleModel, true);
      return;
    }
    const previous = this.moduleModel;
    this.moduleModel = this.monaco.editor.createModel(text, "python");
    this.swapTo(this.moduleModel, true);
    previous?.dispose();
  }

  /** Back to the user's own source, editable. */
  showOwn() {
    this.swapTo(this.ownModel, false);
  }

  /** Put `model` in the editor; the line highlighted in the other one goes. */
  swapTo(model, readOnly) {
    if (this.editor.getModel() === model) return;
    this.decorations?.clear();
    this.decorations = null;
    this.editor.setModel(model);
    this.editor.updateOptions({ readOnly });
    this.onSwap?.(model === this.ownModel);
  }

  get showingOwn() {
    return this.editor.getModel() === this.ownModel;
  }

  /** Call `listener` whenever the text changes. */
  onChange(listener) {
    this.ownModel.onDidChangeContent(listener);
  }

  /** Mark an error on a line; `reveal` scrolls to it. */
  markError(line, message, reveal = false) {
    this.showOwn();
    const model = this.ownModel;
    const lineNumber = Math.min(Math.max(1, line || 1), model.getLineCount());
    this.monaco.editor.setModelMarkers(model, "hero_logic", [
      { startLineNumber: lineNumber, endLineNumber: lineNumber, startColumn: 1, endColumn: model.getLineMaxColumn(lineNumber), message, severity: this.monaco.MarkerSeverity.Error },
    ]);
    if (reveal) this.revealLine(lineNumber, { scroll: true });
  }

  clearMarkers() {
    this.monaco.editor.setModelMarkers(this.ownModel, "hero_logic", []);
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
