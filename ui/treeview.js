// The live span tree on the page: draws the rows `tree.js` lays out from the
// run's model and the reader's tree state (`tree_state.js`), only those in
// view (virtual scrolling), at most once per animation frame however many
// events arrive. It keeps no state of its own beyond what it last drew; a
// click is passed on as an intent for the owner to reduce.

import { barPosition, createModel, followAfterScroll, formatDuration, isRunning, layoutRows, timeAxis, visibleWindow } from "./tree.js";
import { initialTreeState } from "./tree_state.js";

const ROW_HEIGHT = 22;
const ICONS = { ok: "✓", failed: "✗", running: "●", queued: "…", timed_out: "⏱", quota_exceeded: "!", cancelled: "⊘", interrupted: "↯" };

export class TreeView {
  /**
   * @param {HTMLElement} container the scrolling element (holds a `.tree-spacer`)
   * @param {{onToggle: (spanId) => void, onSelect: (spanId) => void, onFollow: (on: boolean) => void}} intents
   *   what a click on a row's toggle, or on the rest of a row, asks for, and
   *   what the reader's scrolling says about following the newest rows
   */
  constructor(container, intents) {
    this.container = container;
    this.spacer = container.querySelector(".tree-spacer");
    this.intents = intents;
    this.model = createModel();
    this.state = initialTreeState();
    // What the rows were laid out from: a new model version, fold set or
    // filter (the reducers make new ones on change) lays them out again.
    this.laidOut = { model: null, version: -1, collapsed: null, filter: null };
    this.rows = [];
    this.pending = false;
    this.tick = null;
    this.pool = [];
    // Where the view last scrolled itself to follow: a scroll to anywhere
    // else is the reader's.
    this.followedTo = null;
    container.addEventListener("scroll", () => {
      if (container.scrollTop !== this.followedTo) this.readerScrolled();
      this.schedule();
    });
    container.addEventListener("click", (event) => this.click(event));
    window.addEventListener("resize", () => this.schedule());
  }

  /** Draw `model` as `state` says, on the next frame. */
  show(model, state) {
    if (model !== this.model) this.container.scrollTop = 0;
    this.model = model;
    this.state = state;
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

  draw() {
    const { model, state } = this;
    const laidOut = this.laidOut;
    const stale = laidOut.model !== model || laidOut.version !== model.version || laidOut.collapsed !== state.collapsed || laidOut.filter !== state.filter;
    const running = isRunning(model);
    if (stale) {
      this.rows = layoutRows(model, { collapsed: state.collapsed, filter: state.filter });
      this.laidOut = { model, version: model.version, collapsed: state.collapsed, filter: state.filter };
      this.spacer.style.height = `${this.rows.length * ROW_HEIGHT}px`;
      if (state.follow && running) {
        this.container.scrollTop = Math.max(0, this.rows.length * ROW_HEIGHT - this.container.clientHeight);
        this.followedTo = this.container.scrollTop;
      }
    }
    const nowUs = Date.now() * 1000;
    const axis = timeAxis(model, nowUs);
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
    // Running spans tick: keep drawing while the run goes on, and no longer.
    clearTimeout(this.tick);
    this.tick = running ? setTimeout(() => this.schedule(), 100) : null;
  }

  fill(element, row, index, axis, nowUs) {
    const { span, depth } = row;
    element.style.top = `${index * ROW_HEIGHT}px`;
    element.style.paddingLeft = `${4 + depth * 14}px`;
    element.dataset.spanId = span.span_id;
    element.dataset.status = span.status;
    element.classList.toggle("selected", this.state.selected === span.span_id);
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

  /** Up pauses following a live run; back at the bottom resumes it. */
  readerScrolled() {
    if (!isRunning(this.model)) return;
    const follow = followAfterScroll(this.container, ROW_HEIGHT);
    if (follow !== this.state.follow) this.intents.onFollow(follow);
  }

  click(event) {
    const element = event.target.closest(".row");
    if (!element) return;
    const id = Number(element.dataset.spanId);
    if (event.target.classList.contains("toggle") && this.model.children.has(id)) this.intents.onToggle(id);
    else this.intents.onSelect(id);
  }
}
