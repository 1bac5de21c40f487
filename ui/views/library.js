// The Library view (`#/`): the stored flows with their last run's status, or,
// while the search box holds words, the flows that search finds.

import { api } from "../api.js";
import { badge, byId, escapeHtml } from "../page.js";

export function createLibraryView() {
  const search = byId("library-search");
  const rows = byId("library-rows");
  // "last run" over the library, "relevance" over search hits.
  const lastColumn = byId("library-last-column");
  const state = {
    // Searching waits for a pause in the typing.
    searchTimer: null,
  };

  async function render() {
    const query = search.value;
    lastColumn.textContent = query.trim() ? "relevance" : "last run";
    if (query.trim()) {
      let hits;
      try {
        hits = (await api(`/api/flows/search?q=${encodeURIComponent(query)}&limit=50`)).hits;
      } catch (error) {
        rows.innerHTML = `<tr><td colspan="4">${escapeHtml(error.message)}</td></tr>`;
        return;
      }
      // A hit whose score rounds to nothing matched only words most flows
      // hold: it says nothing about the query. Relevance is shown against
      // the best hit, which is what a reader compares.
      const relevant = hits.filter((hit) => hit.score >= 0.005);
      const best = relevant[0]?.score || 1;
      rows.innerHTML = relevant
        .map(
          (hit) => `<tr data-flow="${escapeHtml(hit.name)}"><td><a href="#/flows/${encodeURIComponent(hit.name)}">${escapeHtml(hit.name)}</a></td>
          <td>${escapeHtml(hit.description)}<div class="snippet">${escapeHtml(hit.snippet).replace(/\[/g, "<mark>").replace(/\]/g, "</mark>")}</div></td>
          <td>v${hit.version}</td><td class="relevance" title="score ${hit.score.toFixed(2)}">${Math.max(1, Math.round((100 * hit.score) / best))}%</td></tr>`,
        )
        .join("") || `<tr><td colspan="4">No flow matches.</td></tr>`;
      return;
    }
    const { flows } = await api("/api/flows");
    rows.innerHTML = flows
      .map(
        (flow) => `<tr data-flow="${escapeHtml(flow.name)}"><td><a href="#/flows/${encodeURIComponent(flow.name)}">${escapeHtml(flow.name)}</a></td>
        <td>${escapeHtml(flow.description)}</td><td>v${flow.version}</td><td>${badge(flow.last_run_status)}</td></tr>`,
      )
      .join("") || `<tr><td colspan="4">The library is empty: start with “New flow”.</td></tr>`;
  }

  search.addEventListener("input", () => {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(render, 150);
  });
  rows.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-flow]");
    if (row && event.target.tagName !== "A") location.hash = `#/flows/${encodeURIComponent(row.dataset.flow)}`;
  });

  return {
    name: "library",
    enter: render,
    leave() {
      clearTimeout(state.searchTimer);
      state.searchTimer = null;
    },
  };
}
