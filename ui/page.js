// Small things every part of the page uses: its elements by id, text made
// safe for HTML, status badges, and the status line in the header.

export const byId = (id) => document.getElementById(id);

export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** A run's status as a coloured badge (`data-status` for tests and styles). */
export function badge(status) {
  return status ? `<span class="badge b-${escapeHtml(status)}" data-status="${escapeHtml(status)}">${escapeHtml(status)}</span>` : "";
}

/** The line in the header that says what just happened. */
export function setStatus(text) {
  byId("status").textContent = text;
}
