// The run pane beside the editor: one run's span tree, filled from the run's
// history and then its live events, with the tree's toolbar (filter, depth,
// follow), Cancel, and the selected span's details.

import { api, followRun } from "./api.js";
import { Details } from "./details.js";
import { LogPanel } from "./logs.js";
import { badge, byId, copyWithButton, escapeHtml, setStatus, showError } from "./page.js";
import { addLog, addSpans, applyEvent, createModel } from "./tree.js";
import { initialTreeState, reduceTree } from "./tree_state.js";
import { TreeView } from "./treeview.js";

export class RunPane {
  /**
   * @param {{onSpanShown: (span, asked: boolean) => void, onRunStarted: (runId) => void, onUseInput: (input) => void}} hooks
   *   `onSpanShown` hears of every span whose details open, and whether the
   *   user asked for it (clicked it); `onRunStarted` of a run started here
   *   (Re-run); `onUseInput` of a run's input the user wants in the form
   */
  constructor({ onSpanShown, onRunStarted, onUseInput }) {
    this.onSpanShown = onSpanShown;
    this.onRunStarted = onRunStarted;
    this.title = byId("run-title");
    this.cancelButton = byId("cancel");
    this.rerunButton = byId("rerun");
    this.replayButton = byId("replay");
    this.details = new Details(byId("details"), { onUseInput });
    /** The run shown once it has finished (its record), for Re-run. */
    this.finishedRun = null;
    this.copyIdButton = byId("copy-run-id");
    this.view = new TreeView(byId("tree"), byId("ruler"), {
      onToggle: (spanId) => this.dispatch({ type: "toggle", spanId }),
      onExpand: (spanId) => this.dispatch({ type: "expand", spanId }),
      onCollapse: (spanId) => this.dispatch({ type: "collapse", spanId }),
      onMove: (spanId) => this.dispatch({ type: "select", spanId }),
      onSelect: (spanId) => this.open(spanId),
      onFollow: (on) => {
        byId("follow").checked = on;
        this.dispatch({ type: "follow", on });
      },
    });
    /** The run shown, or null. */
    this.runId = null;
    /** Its events, merged (`tree.js`). */
    this.model = createModel();
    /** What the reader did to its tree (`tree_state.js`). */
    this.tree = initialTreeState();
    /** Stops following the run's events; null when not following. */
    this.stopFollowing = null;

    byId("tree-filter").addEventListener("input", (event) => this.dispatch({ type: "filter", text: event.target.value }));
    byId("depth").addEventListener("input", (event) => {
      const depth = event.target.value === "" ? null : Number(event.target.value);
      this.dispatch({ type: "collapseBelow", depth, model: this.model });
    });
    byId("follow").addEventListener("change", (event) => this.dispatch({ type: "follow", on: event.target.checked }));
    this.cancelButton.addEventListener("click", () => this.cancel());
    this.rerunButton.addEventListener("click", () => this.rerun());
    this.replayButton.addEventListener("click", () => this.replay());
    this.copyIdButton.addEventListener("click", () => copyWithButton(this.copyIdButton, this.runId));
    this.logs = new LogPanel(
      { panel: byId("logs-panel"), filter: byId("log-filter"), lines: byId("log-lines"), tab: byId("tab-logs") },
      { onSelectSpan: (spanId) => this.open(spanId) },
    );
    this.tabs = { details: [byId("tab-details"), byId("details")], logs: [byId("tab-logs"), byId("logs-panel")] };
    for (const [name, [tab]] of Object.entries(this.tabs)) tab.addEventListener("click", () => this.showTab(name));
  }

  /** Select a span and open its details (from the tree, a key or a log line). */
  open(spanId) {
    // A span chosen from elsewhere (a log line) may be folded away or far
    // down: open its ancestors, stop following, and scroll to it.
    for (let id = this.model.spans.get(spanId)?.parent_id; id !== null && id !== undefined; id = this.model.spans.get(id)?.parent_id) {
      this.dispatch({ type: "expand", spanId: id });
    }
    if (this.tree.follow && this.stopFollowing) {
      byId("follow").checked = false;
      this.dispatch({ type: "follow", on: false });
    }
    this.dispatch({ type: "select", spanId });
    this.view.reveal(spanId);
    this.showTab("details");
    this.showDetails(this.model.spans.get(spanId), true);
  }

  /** Show the span's details or the run's logs under the tree. */
  showTab(name) {
    for (const [tabName, [tab, panel]] of Object.entries(this.tabs)) {
      tab.setAttribute("aria-selected", String(tabName === name));
      panel.hidden = tabName !== name;
    }
    this.logs.draw();
  }

  /** Change the tree's state, and draw it on the next frame. */
  dispatch(action) {
    this.tree = reduceTree(this.tree, action);
    this.view.show(this.model, this.tree);
    this.logs.show(this.model);
  }

  /**
   * Show a run's tree: its history, then live events until it finishes. A
   * finished run (`run`, when the caller has it) comes in two requests,
   * spans and logs, rather than as a replay of every event: much faster for
   * a big run.
   */
  async watch(runId, run = null) {
    this.stop();
    // A run left while its events poured in must not leave the next one drawn as streaming.
    this.view.streaming = false;
    this.runId = runId;
    const model = createModel();
    this.model = model;
    this.dispatch({ type: "reset" });
    this.details.show(null, model, runId);
    this.title.textContent = `run …${runId.slice(-12)}`;
    this.title.title = `run ${runId}`;
    delete this.title.dataset.status;
    this.copyIdButton.hidden = false;
    this.cancelButton.hidden = false;
    this.rerunButton.hidden = true;
    this.replayButton.hidden = true;
    this.finishedRun = null;
    if (run && run.end_us) {
      const [{ spans }, { logs }] = await Promise.all([
        api(`/api/runs/${encodeURIComponent(runId)}/spans`),
        api(`/api/runs/${encodeURIComponent(runId)}/logs`),
      ]);
      if (this.model !== model) return; // another run was opened meanwhile
      addSpans(model, spans);
      for (const line of logs) addLog(model, line);
      applyEvent(model, { type: "run_finished", ...run });
      this.dispatch({ type: "loaded", model });
      this.finished(run);
      return;
    }
    // Events come in batches (one per frame's worth of time): merged one by
    // one, drawn once.
    this.stopFollowing = followRun(runId, (events) => {
      if (this.model !== model) return;
      let tree = this.tree;
      let finished = null;
      for (const event of events) {
        if (applyEvent(model, event)) tree = reduceTree(tree, { type: "eventArrived", event, model });
        if (event.type === "run_finished") finished = event;
      }
      this.tree = tree;
      // Many events at once: the tree may skip frames (see TreeView.schedule).
      this.view.streaming = !finished && events.length > 50;
      this.view.show(model, tree);
      this.logs.show(model);
      if (finished) this.finished(finished);
    });
  }

  /** A run was refused before it started: show none, and say so. */
  refused() {
    this.clear();
    this.title.textContent = "Run refused";
    this.title.dataset.status = "refused";
  }

  /** Stop following the run and show none. */
  clear() {
    this.stop();
    this.view.streaming = false;
    this.runId = null;
    this.model = createModel();
    this.dispatch({ type: "reset" });
    this.details.show(null);
    this.title.textContent = "No run yet";
    this.title.title = "";
    delete this.title.dataset.status;
    this.copyIdButton.hidden = true;
    this.cancelButton.hidden = true;
    this.rerunButton.hidden = true;
    this.replayButton.hidden = true;
    this.finishedRun = null;
  }

  stop() {
    this.stopFollowing?.();
    this.stopFollowing = null;
  }

  finished(run) {
    this.stopFollowing = null;
    this.cancelButton.hidden = true;
    this.finishedRun = run;
    this.rerunButton.hidden = false;
    this.replayButton.hidden = false;
    const replayOf = run.replay_of
      ? ` <span class="replay-of" data-testid="replay-of">replay of <a href="#/runs/${encodeURIComponent(run.replay_of)}">…${escapeHtml(run.replay_of.slice(-12))}</a></span>`
      : "";
    // A durable run says so, and how often it was resumed after a crash.
    const times = run.resumes === 1 ? "once" : `${run.resumes} times`;
    const durable = run.durable
      ? ` <span class="run-note" data-testid="durable">durable${run.resumes ? `, resumed ${times}` : ""}</span>`
      : "";
    this.title.innerHTML = `run …${escapeHtml(run.run_id.slice(-12))} ${badge(run.status)}${replayOf}${durable}`;
    this.title.dataset.status = run.status;
    setStatus(`${run.flow}: ${run.status}`);
    const root = this.model.spans.get(this.model.roots[0]);
    if (root && this.tree.selected === null) this.showDetails(root);
  }

  showDetails(span, asked = false) {
    this.details.show(span, this.model, this.runId);
    this.onSpanShown(span, asked, this.model);
  }

  /** Run the finished run's flow again with its input: the same stored
   * version, or the same source for a run of unsaved source. */
  async rerun() {
    const run = this.finishedRun;
    if (!run) return;
    try {
      // The run's quotas too: a run started with quotas from the form runs
      // again with them (the server caps them to its maxima).
      let body = { flow: run.flow, version: run.version, input: run.input, quotas: run.quotas };
      if (run.version === null || run.version === undefined) {
        const { source } = await api(`/api/runs/${encodeURIComponent(run.run_id)}/source`);
        body = { source, flow: run.flow, input: run.input, quotas: run.quotas };
      }
      const { run_id } = await api("/api/runs", { method: "POST", body });
      this.onRunStarted(run_id);
      this.watch(run_id);
    } catch (error) {
      showError(error);
    }
  }

  /** Run the finished run again from its journal: a new run, answered
   * from the original's journal, that ends as it did. */
  async replay() {
    const run = this.finishedRun;
    if (!run) return;
    try {
      const { run_id } = await api(`/api/runs/${encodeURIComponent(run.run_id)}/replay`, { method: "POST" });
      this.onRunStarted(run_id);
      this.watch(run_id);
    } catch (error) {
      showError(error);
    }
  }

  async cancel() {
    if (this.runId) await api(`/api/runs/${encodeURIComponent(this.runId)}/cancel`, { method: "POST" }).catch(showError);
  }
}
