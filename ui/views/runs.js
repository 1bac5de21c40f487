// The Runs view (`#/runs?flow=…&status=…`): the newest runs, filtered by a part
// of the flow's name and by status, kept current by the server's run list
// stream while the view is shown. The filters live in the address, so a
// filtered list can be bookmarked, shared and reloaded. A retried run's
// attempts are listed together (`attempts.js`); `?first_run_id=…` lists
// only the attempts of one run.

import { api, followRunList } from "../api.js";
import { badge, byId, escapeHtml } from "../page.js";
import { formatDate, formatDuration, relativeTime } from "../time.js";
import { groupAttempts, isRetried } from "../attempts.js";

export function createRunsView() {
  const flowFilter = byId("runs-flow");
  const statusFilter = byId("runs-status");
  const rows = byId("runs-rows");
  const attemptsNote = byId("runs-attempts");
  const state = {
    // Only the attempts of this run, when the address names one.
    firstRunId: "",
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
    const firstRunId = state.firstRunId;
    return { ...(flow && { flow }), ...(status && { status }), ...(firstRunId && { first_run_id: firstRunId }) };
  }

  async function render() {
    const { flow, status, first_run_id } = filters();
    // A run has at most 101 attempts: list them all.
    const params = new URLSearchParams({ limit: first_run_id ? "500" : "100" });
    if (flow) params.set("flow_contains", flow);
    if (status) params.set("status", status);
    if (first_run_id) params.set("first_run_id", first_run_id);
    attemptsNote.hidden = !first_run_id;
    attemptsNote.innerHTML = first_run_id
      ? `Attempts of run <code>…${escapeHtml(first_run_id.slice(-12))}</code> · <a href="#/runs">show all runs</a>`
      : "";
    const { runs } = await api(`/api/runs?${params}`);
    const now = Date.now();
    rows.innerHTML =
      groupAttempts(runs)
        .map(({ run, earlier, attempts }) => {
          const duration = run.end_us && run.start_us ? formatDuration(run.end_us - run.start_us) : "";
          const at = run.start_us ?? run.created_us;
          const started = at ? `<time datetime="${new Date(at / 1000).toISOString()}" title="${formatDate(at / 1000)}">${relativeTime(at / 1000, now)}</time>` : "";
          const kind = run.trigger?.kind ? escapeHtml(run.trigger.kind) : "";
          const attempt = attempts > 1 || isRetried(run)
            ? ` · <a href="#/runs?first_run_id=${encodeURIComponent(run.first_run_id)}" title="every attempt of this run" data-testid="attempt">attempt ${run.attempt ?? 1}</a>`
            : "";
          return `<tr data-run="${escapeHtml(run.run_id)}"${earlier ? ' class="earlier-attempt" data-testid="earlier-attempt"' : ""}><td>${earlier ? '<span class="attempt-mark" aria-hidden="true">↳ </span>' : ""}<a href="#/runs/${encodeURIComponent(run.run_id)}" title="${escapeHtml(run.run_id)}"><code>…${escapeHtml(run.run_id.slice(-12))}</code></a></td>
          <td>${escapeHtml(run.flow)}</td><td>${badge(run.status)}</td><td>${kind}${attempt}</td><td>${started}</td><td>${duration}</td></tr>`;
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
      state.firstRunId = params.get("first_run_id") ?? "";
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
