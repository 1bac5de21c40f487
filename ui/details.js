// A span's details under the tree: status, duration and line, its error with
// the traceback, attributes and log lines; for the root span, the run's input
// and output (pretty, with a copy button each) and its usage against its
// quotas.

import { api } from "./api.js";
import { copyWithButton, escapeHtml } from "./page.js";
import { formatDate, formatDuration, formatOffset } from "./time.js";
import { timeAxis } from "./tree.js";

export class Details {
  /**
   * @param {HTMLElement} container where the details are drawn
   * @param {{onUseInput: (input) => void}} hooks `onUseInput`: the user wants a run's input in the run form
   */
  constructor(container, { onUseInput }) {
    this.container = container;
    this.onUseInput = onUseInput;
    // The server's quota table (`GET /api/quotas`): the same for every run,
    // so asked once.
    this.quotaTable = null;
  }

  /** Show `span` (null: nothing) of the run `runId`, whose events are in `model`. */
  show(span, model, runId) {
    if (!span) {
      this.container.innerHTML = runId
        ? '<p class="empty-note" data-testid="details-empty">Select a span (click it, or arrows and Enter in the tree) to see its attributes, logs and errors.</p>'
        : '<p class="empty-note" data-testid="details-empty">No run shown: run the flow, or open one from the Runs list.</p>';
      return;
    }
    const isRoot = span.parent_id === null && runId;
    const offset = span.start_us - timeAxis(model, span.start_us).start;
    const parts = [`<h3><span class="s-${escapeHtml(span.status)}">${escapeHtml(span.status)}</span> ${escapeHtml(span.kind)} <code>${escapeHtml(span.name)}</code>
      ${span.end_us ? formatDuration(span.end_us - span.start_us) : "running"}${span.line ? ` · line ${span.line}` : ""}</h3>
      <div class="span-when" data-testid="span-when">starts at +${formatOffset(offset)} · ${formatDate(span.start_us / 1000)}</div>`];
    if (isRoot) {
      parts.push(`<div class="run-id">run <code data-testid="run-id">${escapeHtml(runId)}</code></div>`);
    }
    if (span.error) {
      parts.push(`<div data-testid="span-error"><strong>${escapeHtml(span.error.type)}</strong>: ${escapeHtml(span.error.message)}`);
      if (span.error.traceback) parts.push(`<pre data-testid="traceback">${escapeHtml(span.error.traceback)}</pre>`);
      parts.push("</div>");
    }
    if (isRoot) parts.push('<div data-testid="run-io" class="run-io"></div><div data-testid="usage"></div>');
    if (Object.keys(span.attrs || {}).length) parts.push(`<pre data-testid="attrs">${escapeHtml(JSON.stringify(span.attrs, null, 2))}</pre>`);
    const logs = model.logs.get(span.span_id) || [];
    if (logs.length) parts.push(`<pre data-testid="logs">${logs.map((l) => `${escapeHtml(l.stream)}: ${escapeHtml(l.text)}`).join("\n")}</pre>`);
    this.container.innerHTML = parts.join("");
    if (isRoot) this.showRun(runId, model);
  }

  /** The root's part: the run's input and output, then its usage. */
  async showRun(runId, model) {
    const ioBox = this.container.querySelector('[data-testid="run-io"]');
    const usageBox = this.container.querySelector('[data-testid="usage"]');
    // A finished run came with its run_finished event; ask only while it runs.
    const finished = model.run?.run_id === runId ? model.run : null;
    const run = finished || (await api(`/api/runs/${encodeURIComponent(runId)}`).catch(() => null));
    if (!run || !ioBox.isConnected) return;
    showInputOutput(ioBox, run, this.onUseInput);
    await this.showUsage(usageBox, run);
  }

  /** The run's usage against its quotas, one row per quota that counts. */
  async showUsage(box, run) {
    const table = await this.quotas().catch(() => []);
    if (!box.isConnected || !run.usage) return;
    const rows = table
      .filter((quota) => quota.usage)
      .map((quota) => {
        const mebibytes = quota.flag_unit === "mebibytes";
        const scale = mebibytes ? 1048576 : 1;
        const unit = mebibytes ? "MiB" : quota.flag_unit === "seconds" ? "ms" : "";
        return [quota.label, (run.usage[quota.usage] ?? 0) / scale, run.quotas[quota.field] / scale, unit];
      });
    box.innerHTML = `<table>${rows
      .map(([name, used, limit, unit]) => `<tr><td>${escapeHtml(name)}</td><td>${+used.toFixed(2)} / ${+limit.toFixed(2)} ${unit}</td></tr>`)
      .join("")}</table>`;
  }

  quotas() {
    this.quotaTable ??= api("/api/quotas").catch((error) => {
      this.quotaTable = null;
      throw error;
    });
    return this.quotaTable;
  }
}

/** The run's input and, once it ended ok, its output, pretty-printed, each
 * with a button that copies it; the input also with one that puts it in the
 * run form. */
function showInputOutput(box, run, onUseInput) {
  const blocks = [["input", run.input ?? {}]];
  // A run that did not end ok has no output; its error is on its span.
  if (run.end_us && run.status === "ok") blocks.push(["output", run.output ?? null]);
  box.innerHTML = blocks
    .map(
      ([name, value]) => `<div class="io-head">${name} <button type="button" class="copy" data-copy="${name}" data-testid="copy-${name}">copy</button>${
        name === "input" ? ' <button type="button" class="copy" data-testid="use-input" title="Put this input in the run form">use in form</button>' : ""
      }</div>
      <pre data-testid="run-${name}">${escapeHtml(JSON.stringify(value, null, 2))}</pre>`,
    )
    .join("");
  box.querySelector('[data-testid="use-input"]').addEventListener("click", () => onUseInput(run.input ?? {}));
  for (const button of box.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => copyWithButton(button, box.querySelector(`[data-testid="run-${button.dataset.copy}"]`).textContent));
  }
}
