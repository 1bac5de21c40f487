// The live span tree on the page: draws the rows `tree.js` lays out, only
// those in view (virtual scrolling), at most once per animation frame however
// many events arrive.

import { barPosition, collapseBelow, createModel, formatDuration, layoutRows, timeAxis, visibleWindow } from "./tree.js";

const ROW_HEIGHT = 22;
const ICONS = { ok: "✓", failed: "✗", running: "●", queued: "…", timed_out: "⏱", quota_exceeded: "!", cancelled: "⊘", interrupted: "↯" };

export class TreeView {
  /**
   * @param {HTMLElement} container the scrolling element (holds a `.tree-spacer`)
   * @param {(span) => void} onSelect called when a row is clicked
   */
  constructor(container, onSelect) {
    this.container = container;
    this.spacer = container.querySelector(".tree-spacer");
    this.onSelect = onSelect;
    this.model = createModel();
    this.collapsed = new Set();
    this.filter = "";
    this.follow = true;
    this.selected = null;
    this.rows = [];
    this.laidOutVersion = -1;
    this.pending = false;
    this.pool = [];
    container.addEventListener("scroll", () => this.schedule());
    container.addEventListener("click", (event) => this.click(event));
    window.addEventListener("resize", () => this.schedule());
  }

  /** Start over with an empty (or given) model. */
  reset(model = createModel()) {
    this.model = model;
    this.collapsed = new Set();
    this.selected = null;
    this.laidOutVersion = -1;
    this.container.scrollTop = 0;
    this.schedule();
  }

  setFilter(text) {
    this.filter = text;
    this.laidOutVersion = -1;
    this.schedule();
  }

  collapseBelow(depth) {
    this.collapsed = Number.isInteger(depth) && depth >= 0 ? collapseBelow(this.model, depth) : new Set();
    this.laidOutVersion = -1;
    this.schedule();
  }

  /** Ask for a draw on the next animation frame (once, however often asked). */
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  get running() {
    return !this.model.run && this.model.roots.some((id) => this.model.spans.get(id)?.status === "running");
  }

  draw() {
    if (this.laidOutVersion !== this.model.version) {
      this.rows = layoutRows(this.model, { collapsed: this.collapsed, filter: this.filter });
      this.laidOutVersion = this.model.version;
      this.spacer.style.height = `${this.rows.length * ROW_HEIGHT}px`;
      if (this.follow && this.running) {
        this.container.scrollTop = Math.max(0, this.rows.length * ROW_HEIGHT - this.container.clientHeight);
      }
    }
    const nowUs = Date.now() * 1000;
    const axis = timeAxis(this.model, nowUs);
    const { first, last } = visibleWindow(this.rows.length, ROW_HEIGHT, this.container.scrollTop, this.container.clientHeight);
    const needed = last - first;
    while (this.pool.length < needed) {
      const element = document.createElement("div");
      element.className = "row";
      element.innerHTML = '<span class="toggle"></span><span class="icon"></span><span class="kind"></span><span class="name"></span><span class="duration"></span><span class="lane"><span class="bar"></span></span>';
      this.container.appendChild(element);
      this.pool.push(element);
    }
    while (this.pool.length > needed) this.pool.pop().remove();
    for (let i = 0; i < needed; i++) this.fill(this.pool[i], this.rows[first + i], first + i, axis, nowUs);
    // Running spans tick: keep drawing while the run goes on.
    if (this.running) setTimeout(() => this.schedule(), 100);
  }

  fill(element, row, index, axis, nowUs) {
    const { span, depth } = row;
    element.style.top = `${index * ROW_HEIGHT}px`;
    element.style.paddingLeft = `${4 + depth * 14}px`;
    element.dataset.spanId = span.span_id;
    element.dataset.status = span.status;
    element.classList.toggle("selected", this.selected === span.span_id);
    const [toggle, icon, kind, name, duration, lane] = element.children;
    toggle.textContent = row.hasChildren ? (row.collapsed ? "▸" : "▾") : "";
    icon.textContent = ICONS[span.status] || "?";
    icon.className = `icon s-${span.status}`;
    kind.textContent = span.kind === "step" ? "" : span.kind;
    name.textContent = span.name;
    name.title = span.name;
    duration.textContent = formatDuration((span.end_us ?? nowUs) - span.start_us);
    const { left, width } = barPosition(span, axis, nowUs);
    const bar = lane.firstChild;
    bar.className = `bar b-${span.status}`;
    bar.style.left = `${left * 100}%`;
    bar.style.width = `${width * 100}%`;
  }

  click(event) {
    const element = event.target.closest(".row");
    if (!element) return;
    const id = Number(element.dataset.spanId);
    if (event.target.classList.contains("toggle") && this.model.children.has(id)) {
      if (this.collapsed.has(id)) this.collapsed.delete(id);
      else this.collapsed.add(id);
      this.laidOutVersion = -1;
      this.schedule();
      return;
    }
    this.selected = id;
    this.schedule();
    this.onSelect(this.model.spans.get(id));
  }

  /** How many rows are in the DOM now (for tests and for the status line). */
  get drawnRows() {
    return this.pool.length;
  }
}
