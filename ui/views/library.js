// The Library view (`#/`): the stored flows with their last run's status, or,
// while the search box holds words, the flows that search finds.

import { api } from "../api.js";
import { badge, byId, escapeHtml } from "../page.js";

export function createLibraryView() {
  const search = byId("library-search");
  const rows = byId("library-rows");
  const state = {
    // Searching waits for a pause in the typing.
    searchTimer: null,
  };

  async function render() {
    const query = search.value;
    if (query.trim()) {
      let hits;
      try {
        hits = (await api(`/api/flows/search?q=${encodeURIComponent(query)}&limit=50`)).hits;
      } catch (error) {
        rows.innerHTML = `<tr><td colspan="4">${escapeHtml(error.message)}</td></tr>`;
        return;
      }
      rows.innerHTML = hits
        .map(
          (hit) => `<tr data-flow="${escapeHtml(hit.name)}"><td><a href="#/flows/${encodeURIComponent(hit.name)}">${escapeHtml(hit.name)}</a></td>
          <td>${escapeHtml(hit.description)}<div class="snippet">${escapeHtml(hit.snippet).replace(/\[/g, "<mark>").replace(/\]/g, "</mark>")}</div></td>
          <td>v${hit.version}</td><td>score ${hit.score.toFixed(2)}</td></tr>`,
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
