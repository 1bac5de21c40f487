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
  const line = byId("status");
  line.textContent = text;
  line.classList.remove("error");
}

/** An error for the reader: in the header's status line, in red. */
export function showError(error) {
  const line = byId("status");
  line.textContent = error?.message || String(error);
  line.classList.add("error");
}

/** Copy `text` to the clipboard; the button says whether it worked. */
export async function copyWithButton(button, text) {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "copied";
  } catch {
    button.textContent = "copy failed";
  }
  setTimeout(() => (button.textContent = label), 1500);
}
