// The Editor view (`#/new`, `#/flows/NAME`, `#/runs/RUN_ID`): a flow's source
// in Monaco, checked as it is typed, saved and run with the input form's
// input; beside it the run pane with the tree of the run started or opened.

import { api } from "../api.js";
import { Drafts } from "../drafts.js";
import { InputForm } from "../input_form.js";
import { Editor } from "../monaco.js";
import { byId, showError } from "../page.js";
import { QuotaForm } from "../quota_form.js";
import { RunPane } from "../run_pane.js";

const NEW_FLOW = `from hero_logic import flow


@flow(name="hello", inputs={"who": "string"}, description="Say hello, in two steps.")
def hello(who):
    with flow.step("build", who=who) as s:
        text = f"hello {who}"
        s.set(length=len(text))
    with flow.step("shout"):
        print("shouting")
        return {"greeting": text.upper()}
`;

/** How often the editor asks for the stubs again. */
const STUBS_EVERY_MS = 5000;

export function createEditorView() {
  const workView = byId("work-view");
  const missing = byId("work-missing");
  const editorElement = byId("editor");
  const title = byId("flow-title");
  const message = byId("editor-message");
  const form = new InputForm(byId("input-form"));
  const quotaForm = new QuotaForm(byId("quota-fields"));
  const banner = byId("source-banner");
  const discardButton = byId("discard-draft");
  const drafts = new Drafts(localStorage);
  const runPane = new RunPane({
    onSpanShown: (span, asked, model) => revealSpan(span, asked, model).catch(showError),
    onRunStarted: (runId) => {
      showOwnSource();
      history.replaceState(null, "", `#/runs/${encodeURIComponent(runId)}`);
    },
    onUseInput: (input) => form.setRaw(input),
  });
  const state = {
    /** Monaco, once it loaded (`ready` resolves to it). */
    editor: null,
    ready: null,
    /** The stored flow in the editor: `{name, version, info, source}`, or null. */
    flow: null,
    /** The source the last good check was of, and the flow of the module it
     * picked (the one a run of that source runs). */
    checkedSource: null,
    checkedFlow: null,
    /** The check waits for a pause in the typing. */
    checkTimer: null,
    /** The flow whose unsaved edits are kept as a draft (`name`, "" for a
     * new flow) and the source they are edits of; null for a run's source. */
    draft: null,
    draftTimer: null,
    /** Asks for the stubs again now and then while the view is shown. */
    stubsTimer: null,
    /** Stored flows' sources shown for their subflow spans, by `name@version`. */
    modules: {},
    /** Counts the spans shown, so a late module source knows it is stale. */
    revealed: 0,
  };

  function ensureEditor() {
    state.ready ??= Editor.create(editorElement, { run, save }).then((editor) => {
      state.editor = editor;
      // Whatever put the user's source back (an error marked on it, a new
      // source), the banner about another module's goes.
      editor.onSwap = (own) => {
        if (own) banner.hidden = true;
      };
      editor.onChange(checkSoon);
      editor.onChange(keepDraftSoon);
      return editor;
    });
    return state.ready;
  }

  function setMessage(text, ok = false) {
    message.textContent = text;
    message.classList.toggle("ok", ok);
  }

  /** Another source is in the editor: what was checked of the last one no longer holds. */
  function loaded(flowTitle) {
    showOwnSource();
    title.textContent = flowTitle;
    state.checkedSource = null;
    state.checkedFlow = null;
  }

  async function openNew() {
    const editor = await ensureEditor();
    state.flow = null;
    editor.source = NEW_FLOW;
    loaded("new flow");
    form.setInputs({ who: { type: "string", required: true } });
    setMessage("");
    restoreDraft("", NEW_FLOW);
  }

  async function openFlow(name) {
    const [editor, flow] = await Promise.all([ensureEditor(), api(`/api/flows/${encodeURIComponent(name)}`)]);
    state.flow = flow;
    editor.source = flow.source;
    loaded(`${flow.name} v${flow.version}`);
    form.setInputs(flow.info.inputs);
    setMessage("");
    restoreDraft(flow.name, flow.source);
  }

  /** Open a run from a deep link: its source in the editor, its tree beside. */
  async function openRun(runId) {
    const [editor, run, source] = await Promise.all([
      ensureEditor(),
      api(`/api/runs/${encodeURIComponent(runId)}`),
      api(`/api/runs/${encodeURIComponent(runId)}/source`),
    ]);
    state.draft = null;
    showDiscard();
    if (source.source !== null && editor.source !== source.source) editor.source = source.source;
    state.flow = run.version ? await api(`/api/flows/${encodeURIComponent(run.flow)}?version=${run.version}`).catch(() => null) : null;
    loaded(run.version ? `${run.flow} v${run.version}` : `${run.flow} (unsaved source)`);
    if (state.flow) form.setInputs(state.flow.info.inputs);
    runPane.watch(runId, run);
  }

  /** Check the source a moment after the typing stops: errors marked on their
   * line, and the input form following the flow's declared inputs. */
  function checkSoon() {
    clearTimeout(state.checkTimer);
    state.checkTimer = setTimeout(check, 500);
  }

  async function check() {
    const editor = state.editor;
    const source = editor.source;
    const checked = await api("/api/check", { text: source }).catch(() => null);
    if (!checked || editor.source !== source) return;
    if (!checked.valid) {
      editor.markError(checked.error.line, checked.error.message);
      setMessage(checked.error.message);
      return;
    }
    editor.clearMarkers();
    setMessage("");
    const flow = checked.flows.find((f) => f.name === state.flow?.name) || checked.flows[0];
    if (!form.declares(flow.inputs)) form.setInputs(flow.inputs);
    state.checkedFlow = flow.name;
    state.checkedSource = source;
  }

  async function save() {
    const editor = await ensureEditor();
    showOwnSource();
    try {
      const saved = await api("/api/flows", { text: editor.source });
      editor.clearMarkers();
      const first = saved.flows[0];
      setMessage(`saved ${saved.flows.map((f) => `${f.name} v${f.version}`).join(", ")}`, true);
      state.flow = await api(`/api/flows/${encodeURIComponent(first.name)}`);
      // Saved: the edits are the flow now, not a draft of it (or of a new flow).
      if (state.draft) drafts.forget(state.draft.name);
      state.draft = { name: state.flow.name, stored: state.flow.source };
      drafts.forget(state.flow.name);
      showDiscard();
      title.textContent = `${state.flow.name} v${state.flow.version}`;
      form.setInputs(state.flow.info.inputs);
      if (location.hash !== `#/flows/${first.name}`) history.replaceState(null, "", `#/flows/${encodeURIComponent(first.name)}`);
    } catch (error) {
      showError(error);
    }
  }

  /** Run what is in the editor, saved or not. */
  async function run() {
    const editor = await ensureEditor();
    showOwnSource();
    let input;
    let quotas;
    try {
      input = form.read();
      quotas = quotaForm.read();
    } catch (error) {
      setMessage(error.message);
      return;
    }
    const unchanged = state.flow && editor.source === state.flow.source;
    if (!unchanged && state.checkedSource !== editor.source) {
      // Run pressed before the check of what was just typed came back: which
      // flow of the module runs (the first) is the check's to say.
      clearTimeout(state.checkTimer);
      await check();
    }
    const body = unchanged ? { flow: state.flow.name, input } : { source: editor.source, input };
    if (quotas) body.quotas = quotas;
    if (!unchanged && (state.checkedFlow || state.flow)) body.flow = state.checkedFlow || state.flow.name;
    try {
      editor.clearMarkers();
      const { run_id } = await api("/api/runs", { method: "POST", body });
      setMessage("");
      if (!unchanged && body.flow) title.textContent = `${body.flow} (unsaved source)`;
      history.replaceState(null, "", `#/runs/${encodeURIComponent(run_id)}`);
      runPane.watch(run_id);
    } catch (error) {
      // The previous run's tree would read as this one's outcome.
      runPane.refused();
      showError(error);
    }
  }

  function showError(error) {
    setMessage(error.message);
    const line = error.body?.error?.line;
    if (line) state.editor.markError(line, error.message, true);
  }

  /**
   * A span's details point at its line in the editor; a failure's at the
   * line that raised. The line is in the module that ran the span: a span
   * under a subflow of another stored flow shows that flow's source,
   * read-only, until "Back to your source". The editor scrolls there only
   * when the user clicked.
   */
  async function revealSpan(span, asked, model) {
    const editor = state.editor;
    const line = span?.kind === "subflow" ? span.line : span?.error?.line || span?.line;
    if (!line || !editor) return;
    // Only the latest span shown may put its source in the editor: a
    // module's source that arrives after another span was shown is dropped.
    const shown = ++state.revealed;
    const module = moduleOf(model, span);
    if (!module) {
      showOwnSource();
    } else {
      // Only a span the user asked for swaps the editor's source.
      if (!asked && editor.showingOwn) return;
      const key = `${module.name}@${module.version}`;
      state.modules[key] ??= api(`/api/flows/${encodeURIComponent(module.name)}?version=${module.version}`).catch((error) => {
        delete state.modules[key];
        throw error;
      });
      const flow = await state.modules[key];
      if (state.editor !== editor || shown !== state.revealed) return;
      editor.showModule(flow.source);
      banner.hidden = false;
      byId("source-banner-text").textContent = `Showing ${flow.name} v${flow.version}, where this span ran (read-only).`;
    }
    editor.revealLine(line, { scroll: asked });
  }

  /** The stored flow whose module ran `span`: the nearest subflow span above
   * it that names a stored version; null for the run's own module. */
  function moduleOf(model, span) {
    let id = span.kind === "subflow" ? span.parent_id : span.span_id;
    while (id !== null && id !== undefined) {
      const above = model.spans.get(id);
      if (!above) return null;
      if (above.kind === "subflow" && above.span_id !== span.span_id) {
        const version = above.attrs?.flow_version;
        return Number.isInteger(version) ? { name: above.name, version } : null;
      }
      id = above.parent_id;
    }
    return null;
  }

  /** The user's own source back in the editor; a module's source on its way is dropped. */
  function showOwnSource() {
    state.revealed++;
    state.editor?.showOwn();
    banner.hidden = true;
  }

  /** Bring back the unsaved edits of flow `name` ("" for a new flow) over
   * its `stored` source, if this browser kept any. */
  function restoreDraft(name, stored) {
    state.draft = { name, stored };
    const draft = drafts.get(name, stored);
    if (draft !== null) {
      state.editor.source = draft;
      setMessage("your unsaved changes are back (kept in this browser until saved or discarded)");
    }
    showDiscard();
  }

  function keepDraftSoon() {
    clearTimeout(state.draftTimer);
    state.draftTimer = setTimeout(keepDraft, 300);
    showDiscard();
  }

  function keepDraft() {
    clearTimeout(state.draftTimer);
    state.draftTimer = null;
    if (state.draft && state.editor) drafts.keep(state.draft.name, state.editor.source, state.draft.stored);
  }

  /** "Discard changes" shows while the editor holds edits of a flow. */
  function showDiscard() {
    discardButton.hidden = !state.draft || !state.editor || state.editor.source === state.draft.stored;
  }

  function discardDraft() {
    if (!state.draft) return;
    const what = state.draft.name ? `your unsaved changes to ${state.draft.name}` : "this new flow's unsaved changes";
    if (!confirm(`Discard ${what}?`)) return;
    clearTimeout(state.draftTimer);
    drafts.forget(state.draft.name);
    state.editor.source = state.draft.stored;
    setMessage("");
    showDiscard();
  }

  /** Show "not found" instead of the editor and the run pane (null: the panes). */
  function showMissing(text) {
    missing.hidden = text === null;
    workView.classList.toggle("is-missing", text !== null);
    byId("work-missing-text").textContent = text ?? "";
  }

  /** Completion follows the services registered since the page loaded:
   * the stubs are asked for again every few seconds while the editor is
   * shown, and at once when the page gets the focus back (as after
   * registering a service from a terminal). */
  function followStubs(on) {
    clearInterval(state.stubsTimer);
    state.stubsTimer = on ? setInterval(refreshStubs, STUBS_EVERY_MS) : null;
  }

  function refreshStubs() {
    if (state.stubsTimer) state.editor?.loadStubs();
  }

  window.addEventListener("focus", refreshStubs);
  byId("source-back").addEventListener("click", showOwnSource);
  byId("run").addEventListener("click", run);
  discardButton.addEventListener("click", discardDraft);
  // Edits typed just before the tab closes are kept too.
  window.addEventListener("pagehide", keepDraft);
  byId("save").addEventListener("click", save);
  byId("input-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });

  return {
    name: "work",
    /** `route`: `{newFlow: true}`, `{flow: NAME}` or `{runId: RUN_ID}`. */
    async enter(route) {
      // Busy until the source is in: what a screen reader (or a test) waits for.
      editorElement.setAttribute("aria-busy", "true");
      // The edits of the flow being left are kept before another one comes in.
      keepDraft();
      showMissing(null);
      followStubs(true);
      if (!quotaForm.table.length) api("/api/quotas").then((table) => quotaForm.setQuotas(table), showError);
      try {
        if (route.runId) await openRun(route.runId);
        else if (route.flow) await openFlow(route.flow);
        else await openNew();
      } catch (error) {
        // A link to a run or a flow that is not there (any more): say so,
        // with the ways back, rather than a blank editor.
        if (error.status !== 404) throw error;
        showMissing(route.runId ? `No run ${route.runId}` : `No flow named ${route.flow}`);
      } finally {
        editorElement.setAttribute("aria-busy", "false");
      }
    },
    leave() {
      keepDraft();
      followStubs(false);
      clearTimeout(state.checkTimer);
      state.checkTimer = null;
      runPane.clear();
    },
  };
}
