// The Runs view (`#/runs?flow=…&status=…`): the newest runs, filtered by a part
// of the flow's name and by status, kept current by the server's run list
// stream while the view is shown. The filters live in the address, so a
// filtered list can be bookmarked, shared and reloaded.

import { api, followRunList } from "../api.js";
import { badge, byId, escapeHtml } from "../page.js";
import { formatDate, formatDuration, relativeTime } from "../time.js";

export function createRunsView() {
  const flowFilter = byId("runs-flow");
  const statusFilter = byId("runs-status");
  const rows = byId("runs-rows");
  const state = {
    shown: false,
    // Stops the run list stream; null when it is not open.
    stopRunList: null,
    // A burst of run events (or of typing) redraws once.
    renderTimer: null,
  };

  function renderSoon() {
    clearTimeout(state.renderTimer);
    state.renderTimer = setTimeout(render, 100);
  }

  /** The filters as typed, each only when set: what the address keeps. */
  function filters() {
    const flow = flowFilter.value.trim();
    const status = statusFilter.value;
    return { ...(flow && { flow }), ...(status && { status }) };
  }

  async function render() {
    const { flow, status } = filters();
    const params = new URLSearchParams({ limit: "100" });
    if (flow) params.set("flow_contains", flow);
    if (status) params.set("status", status);
    const { runs } = await api(`/api/runs?${params}`);
    const now = Date.now();
    rows.innerHTML =
      runs
        .map((run) => {
          const duration = run.end_us && run.start_us ? formatDuration(run.end_us - run.start_us) : "";
          const at = run.start_us ?? run.created_us;
          const started = at ? `<time datetime="${new Date(at / 1000).toISOString()}" title="${formatDate(at / 1000)}">${relativeTime(at / 1000, now)}</time>` : "";
          const trigger = run.trigger?.kind ? `${escapeHtml(run.trigger.kind)}${run.attempt > 1 ? ` · attempt ${run.attempt}` : ""}` : "";
          return `<tr data-run="${escapeHtml(run.run_id)}"><td><a href="#/runs/${encodeURIComponent(run.run_id)}" title="${escapeHtml(run.run_id)}"><code>…${escapeHtml(run.run_id.slice(-12))}</code></a></td>
          <td>${escapeHtml(run.flow)}</td><td>${badge(run.status)}</td><td>${trigger}</td><td>${started}</td><td>${duration}</td></tr>`;
        })
        .join("") || emptyRow();
  }

  /** What an empty list says: nothing matches, or nothing ran yet and how to start. */
  function emptyRow() {
    const filtered = Object.keys(filters()).length > 0;
    const text = filtered
      ? 'No run matches these filters. <a href="#/runs">Show all runs</a>.'
      : 'No runs yet. Open a flow from the <a href="#/">Library</a> (or write a <a href="#/new">new one</a>) and press Run ▶.';
    return `<tr class="empty-row"><td colspan="6" data-testid="runs-empty">${text}</td></tr>`;
  }

  /** The filters into the address, without a new history entry per key. */
  function keepInAddress() {
    const query = new URLSearchParams(filters()).toString();
    history.replaceState(null, "", `#/runs${query ? `?${query}` : ""}`);
  }

  flowFilter.addEventListener("input", () => {
    keepInAddress();
    renderSoon();
  });
  statusFilter.addEventListener("change", () => {
    keepInAddress();
    render();
  });
  rows.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-run]");
    if (row && event.target.tagName !== "A") location.hash = `#/runs/${encodeURIComponent(row.dataset.run)}`;
  });

  return {
    name: "runs",
    async enter({ params = new URLSearchParams() }) {
      state.shown = true;
      flowFilter.value = params.get("flow") ?? "";
      statusFilter.value = params.get("status") ?? "";
      await render();
      // Left while the list loaded: no stream for a hidden view.
      if (state.shown && !state.stopRunList) state.stopRunList = followRunList(renderSoon);
    },
    leave() {
      state.shown = false;
      state.stopRunList?.();
      state.stopRunList = null;
      clearTimeout(state.renderTimer);
      state.renderTimer = null;
    },
  };
}
