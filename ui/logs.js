// The run's log panel: every line the run wrote (print, stderr, flow.log),
// in the order written, each with its time into the run and the span it
// was written in (a click selects that span), and a search box over them.

import { escapeHtml } from "./page.js";
import { formatOffset } from "./time.js";
import { runLogs, timeAxis } from "./tree.js";

/** Lines drawn at most; past that the panel says how many more there are. */
const MOST_LINES = 2000;

export class LogPanel {
  /**
   * @param {{panel: HTMLElement, filter: HTMLInputElement, lines: HTMLElement, tab: HTMLElement}} elements
   *   the panel, its search box, where lines go, and its tab (which counts them)
   * @param {{onSelectSpan: (spanId) => void}} hooks a click on a line's span
   */
  constructor({ panel, filter, lines, tab }, { onSelectSpan }) {
    this.panel = panel;
    this.tab = tab;
    this.filter = filter;
    this.lines = lines;
    this.model = null;
    this.drawn = { model: null, version: -1, filter: null };
    this.timer = null;
    filter.addEventListener("input", () => this.draw());
    lines.addEventListener("click", (event) => {
      const link = event.target.closest("[data-log-span]");
      if (link) onSelectSpan(Number(link.dataset.logSpan));
    });
  }

  /** Show `model`'s lines (soon, once however many events arrive). */
  show(model) {
    this.model = model;
    const count = model.logOrder.length;
    // Written only when it changes: a new text lays the tabs out again, and
    // a live run calls this for every batch of events.
    const label = count ? `Logs (${count})` : "Logs";
    if (this.tab.textContent !== label) this.tab.textContent = label;
    if (!this.panel.hidden) this.timer ??= setTimeout(() => this.draw(), 100);
  }

  draw() {
    clearTimeout(this.timer);
    this.timer = null;
    const model = this.model;
    const filter = this.filter.value;
    if (!model || this.panel.hidden) return;
    const drawn = this.drawn;
    if (drawn.model === model && drawn.version === model.version && drawn.filter === filter) return;
    this.drawn = { model, version: model.version, filter };
    const spanName = (id) => model.spans.get(id)?.name ?? "";
    const found = runLogs(model, filter, spanName);
    if (!model.logOrder.length) {
      this.lines.innerHTML = '<p class="empty-note">This run has written no log lines (print, stderr or flow.log).</p>';
      return;
    }
    if (!found.length) {
      this.lines.innerHTML = `<p class="empty-note">No log line holds “${escapeHtml(filter.trim())}”.</p>`;
      return;
    }
    const start = timeAxis(model, 0).start;
    const shown = found.slice(0, MOST_LINES);
    this.lines.innerHTML =
      shown
        .map(
          (line) => `<div class="log-line log-${escapeHtml(line.stream)}" data-testid="log-line"><span class="log-at">+${escapeHtml(formatOffset(Math.max(0, line.ts_us - start)))}</span>
          <button type="button" class="log-span" data-log-span="${line.span_id}" title="Select this span">${escapeHtml(spanName(line.span_id))}</button>
          <span class="log-text">${escapeHtml(line.text)}</span></div>`,
        )
        .join("") + (found.length > shown.length ? `<p class="empty-note">${found.length - shown.length} more lines: search to narrow them down.</p>` : "");
  }
}
