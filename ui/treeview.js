// The live span tree on the page: draws the rows `tree.js` lays out from the
// run's model and the reader's tree state (`tree_state.js`), only those in
// view (virtual scrolling), at most once per animation frame however many
// events arrive. It keeps no state of its own beyond what it last drew; a
// click is passed on as an intent for the owner to reduce.
//
// A run followed while it streams in bulk has new rows in view at every
// draw. Laying out and painting their text and bars as elements is most of
// such a frame, so then the rows stay in the DOM as empty tree items (the
// ARIA tree, clicks, keys and selection work as ever) and `RowPainter`
// (`row_painter.js`) paints their text and bars on one canvas over them.

import { formatDuration, formatOffset, rulerTicks } from "./time.js";
import { appendRows, barPosition, createModel, followAfterScroll, isRunning, layoutRows, timeAxis, visibleWindow } from "./tree.js";
import { initialTreeState } from "./tree_state.js";
import { onThemeChange } from "./theme.js";
import { ICONS, INDENT, ROW_HEIGHT, RowPainter, toggleHit } from "./row_painter.js";


export class TreeView {
  /**
   * @param {HTMLElement} container the scrolling element (holds a `.tree-spacer` and an `.empty` note)
   * @param {HTMLElement} ruler the time axis's ruler over the rows' bars
   * @param {{onToggle: (spanId) => void, onSelect: (spanId) => void, onMove: (spanId) => void,
   *   onExpand: (spanId) => void, onCollapse: (spanId) => void, onFollow: (on: boolean) => void}} intents
   *   what a click on a row's toggle, or on the rest of a row, asks for
   *   (`onSelect`: select and open); what the keys ask for (`onMove`: select
   *   only; Enter is `onSelect`); what the reader's scrolling says about
   *   following the newest rows
   */
  constructor(container, ruler, intents) {
    this.container = container;
    this.ruler = ruler;
    this.spacer = container.querySelector(".tree-spacer");
    this.empty = container.querySelector(".empty");
    this.intents = intents;
    this.model = createModel();
    this.state = initialTreeState();
    // What the rows were laid out from: a new model version, fold set or
    // filter (the reducers make new ones on change) lays them out again.
    this.laidOut = { model: null, version: -1, collapsed: null, filter: null, arrived: 0 };
    this.rows = [];
    this.pending = false;
    this.tick = null;
    this.pool = [];
    // Where the view last scrolled itself to follow: a scroll to anywhere
    // else is the reader's.
    this.followedTo = null;
    container.addEventListener("scroll", () => {
      if (this.followedTo === null || Math.abs(container.scrollTop - this.followedTo) > 1) this.readerScrolled();
      this.schedule();
    });
    container.addEventListener("click", (event) => this.click(event));
    container.addEventListener("keydown", (event) => this.key(event));
    // A bar's start, told when the pointer is on it rather than written each frame.
    container.addEventListener("mouseover", (event) => {
      const lane = event.target.closest?.(".lane");
      if (lane) lane.title = `starts at +${formatOffset(lane.parentElement.startOffset ?? 0)}`;
    });
    // The viewport's height, read when it changes rather than each frame
    // (a read after the frame's writes would force a layout).
    this.viewportHeight = container.clientHeight;
    this.viewportWidth = container.clientWidth;
    new ResizeObserver(() => {
      this.viewportHeight = container.clientHeight;
      this.viewportWidth = container.clientWidth;
      this.painter.restyle();
      this.schedule();
    }).observe(container);
    this.painter = new RowPainter(container);
    onThemeChange(() => {
      this.painter.restyle();
      this.schedule();
    });
    /** Whether the rows' text and bars are on the painter's canvas. */
    this.painted = false;
    this.rulerTicks = [];
    this.drawnAt = 0;
    /** Set by the owner while a live run's events arrive in bulk. */
    this.streaming = false;
  }

  /** Draw `model` as `state` says, on the next frame. */
  show(model, state) {
    if (model !== this.model) {
      this.container.scrollTop = 0;
      this.wasRunning = false;
    }
    this.model = model;
    this.state = state;
    this.schedule();
  }

  /** Ask for a draw on the next animation frame (once, however often asked). */
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame((now) => {
      // A run streaming faster than anyone reads redraws every other frame:
      // the rows it shows are new each time, and the frames in between stay
      // free for the reader's scrolling and typing.
      if (this.streaming && now - this.drawnAt < 30) {
        this.pending = false;
        this.schedule();
        return;
      }
      this.pending = false;
      this.drawnAt = now;
      this.draw();
    });
  }

  draw() {
    const { model, state } = this;
    const laidOut = this.laidOut;
    const sameTree = laidOut.model === model && laidOut.collapsed === state.collapsed && laidOut.filter === state.filter;
    const stale = !sameTree || laidOut.version !== model.version;
    const running = isRunning(model);
    let scrollTop = this.container.scrollTop;
    let followTo = null;
    if (stale) {
      // New spans of a live run mostly go at the end: add those rows alone.
      const appended = sameTree && !state.filter.trim() && appendRows(model, this.rows, laidOut.arrived, state.collapsed);
      if (!appended) this.rows = layoutRows(model, { collapsed: state.collapsed, filter: state.filter });
      this.laidOut = { model, version: model.version, collapsed: state.collapsed, filter: state.filter, arrived: model.arrived.length };
      this.spacer.style.height = `${this.rows.length * ROW_HEIGHT}px`;
      // Written only when it changes: even an unchanged value marks the
      // element for a style pass.
      if (this.empty.hidden !== model.spans.size > 0) this.empty.hidden = model.spans.size > 0;
      // Following goes on through the frame that draws the run's last spans.
      if (state.follow && (running || this.wasRunning)) {
        scrollTop = Math.max(0, this.rows.length * ROW_HEIGHT - this.viewportHeight);
        followTo = scrollTop;
      }
    }
    const nowUs = Date.now() * 1000;
    const axis = timeAxis(model, nowUs);
    this.drawRuler(model.spans.size ? axis : null);
    // Rows drawn beyond the viewport are there for the reader's scrolling;
    // a run followed while it streams in bulk replaces every row each draw,
    // and scrolling stops following (and draws them), so it draws none.
    const painted = this.streaming && state.follow;
    const overscan = painted ? 0 : undefined;
    const { first, last } = visibleWindow(this.rows.length, ROW_HEIGHT, scrollTop, this.viewportHeight, overscan);
    // Painted before the rows are written: its first paint reads the
    // page's colours, and a read after writes would force a style pass.
    if (painted) this.painter.paint({ rows: this.rows, first, last, model, axis, nowUs, width: this.viewportWidth });
    if (painted !== this.painted) {
      this.painted = painted;
      // The rows' cells are hidden (or shown again) by the container's class.
      this.container.classList.toggle("painted", painted);
      if (!painted) this.painter.hide();
    }
    const needed = last - first;
    while (this.pool.length < needed) {
      const element = document.createElement("div");
      element.className = "row";
      element.setAttribute("role", "treeitem");
      element.innerHTML = '<span class="toggle"></span><span class="icon"></span><span class="kind"></span><span class="name"></span><span class="duration"></span><span class="lane"><span class="bar"></span></span>';
      this.container.appendChild(element);
      this.pool.push(element);
    }
    while (this.pool.length > needed) this.pool.pop().remove();
    for (let i = 0; i < needed; i++) this.fill(this.pool[i], this.rows[first + i], first + i, axis, nowUs);
    const active = this.pool.find((element) => Number(element.dataset.spanId) === state.selected)?.id ?? "";
    if (this.container.getAttribute("aria-activedescendant") !== active) {
      if (active) this.container.setAttribute("aria-activedescendant", active);
      else this.container.removeAttribute("aria-activedescendant");
    }
    // Scrolled last: the browser lays the tree out to scroll it, and with
    // every write of the frame already made, that layout is the frame's
    // only one (scrolled before the rows were written, it would lay out
    // twice). Not read back: a read would force another.
    if (followTo !== null) {
      this.container.scrollTop = followTo;
      this.followedTo = followTo;
    }
    this.wasRunning = running;
    // Running spans tick: keep drawing while the run goes on, and no longer.
    clearTimeout(this.tick);
    this.tick = running ? setTimeout(() => this.schedule(), 100) : null;
  }

  fill(element, row, index, axis, nowUs) {
    // The row holds the span as it was laid out; the model has its latest state.
    const span = this.model.spans.get(row.span.span_id) ?? row.span;
    const { depth } = row;
    const selected = this.state.selected === span.span_id;
    const [toggle, icon, kind, name, duration, lane] = element.children;
    const painted = this.painted;
    // What changes only with the span's row, its status or the reader's
    // folds and selection: written only when it changed (a live run redraws
    // the same rows every frame).
    const key = `${index}|${span.span_id}|${span.status}|${depth}|${row.hasChildren}|${row.collapsed}|${selected}|${painted}`;
    if (element.rowKey !== key) {
      element.rowKey = key;
      element.style.top = `${index * ROW_HEIGHT}px`;
      element.dataset.spanId = span.span_id;
      element.dataset.status = span.status;
      element.id = `span-row-${span.span_id}`;
      element.classList.toggle("selected", selected);
      element.setAttribute("aria-selected", String(selected));
      element.setAttribute("aria-level", String(depth + 1));
      element.setAttribute("aria-label", `${span.name}, ${span.status}`);
      if (row.hasChildren) element.setAttribute("aria-expanded", String(!row.collapsed));
      else element.removeAttribute("aria-expanded");
      // Painted rows have their cells hidden: what they would show is on the canvas.
      if (painted) return;
      // Indented by the toggle's margin, not the row's padding: every
      // row's lane then has the same width, under the ruler's.
      toggle.style.marginLeft = `${depth * INDENT}px`;
      toggle.textContent = row.hasChildren ? (row.collapsed ? "▸" : "▾") : "";
      icon.textContent = ICONS[span.status] || "?";
      icon.className = `icon s-${span.status}`;
      kind.textContent = span.kind === "step" ? "" : span.kind;
      name.textContent = span.name;
      name.title = span.name;
      lane.firstChild.className = `bar b-${span.status}`;
    }
    if (painted) return;
    const lasted = formatDuration((span.end_us ?? nowUs) - span.start_us);
    if (duration.textContent !== lasted) duration.textContent = lasted;
    // The bar moves by transform: no layout, however many rows redraw.
    const { left, width } = barPosition(span, axis, nowUs);
    lane.firstChild.style.transform = `translateX(${(left * 100).toFixed(3)}%) scaleX(${width.toFixed(5)})`;
    element.startOffset = span.start_us - axis.start;
  }

  /** The ruler's ticks: as many elements as ticks, moved, relabelled only when their label changed. */
  drawRuler(axis) {
    const ticks = axis ? rulerTicks(axis.end - axis.start) : [];
    const lane = this.ruler.firstElementChild;
    while (this.rulerTicks.length < ticks.length) {
      const tick = document.createElement("span");
      tick.className = "tick";
      lane.appendChild(tick);
      this.rulerTicks.push(tick);
    }
    while (this.rulerTicks.length > ticks.length) this.rulerTicks.pop().remove();
    ticks.forEach(({ at, label }, i) => {
      const tick = this.rulerTicks[i];
      if (tick.textContent !== label) tick.textContent = label;
      const left = `${(at * 100).toFixed(2)}%`;
      if (tick.at !== left) {
        tick.at = left;
        tick.style.left = left;
      }
    });
  }

  /**
   * The keys of a tree (WAI-ARIA's tree pattern): up and down move, Home
   * and End jump, right opens a folded span or goes to its first child,
   * left folds an open one or goes to its parent, Enter opens the details.
   */
  key(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    // The rows as the state is now, not as the last frame drew them.
    this.draw();
    const rows = this.rows;
    if (!rows.length) return;
    let index = rows.findIndex((row) => row.span.span_id === this.state.selected);
    const row = rows[index];
    const moveTo = (at) => {
      const target = rows[Math.max(0, Math.min(rows.length - 1, at))];
      this.intents.onMove(target.span.span_id);
      this.scrollToRow(rows.indexOf(target));
    };
    switch (event.key) {
      case "ArrowDown":
        moveTo(index < 0 ? 0 : index + 1);
        break;
      case "ArrowUp":
        moveTo(index < 0 ? 0 : index - 1);
        break;
      case "Home":
        moveTo(0);
        break;
      case "End":
        moveTo(rows.length - 1);
        break;
      case "ArrowRight":
        if (!row) moveTo(0);
        else if (row.hasChildren && row.collapsed) this.intents.onExpand(row.span.span_id);
        else if (rows[index + 1]?.span.parent_id === row.span.span_id) moveTo(index + 1);
        break;
      case "ArrowLeft":
        // A span a filter holds open cannot fold: left goes to its parent.
        if (!row) moveTo(0);
        else if (row.hasChildren && !row.collapsed && !row.forcedOpen) this.intents.onCollapse(row.span.span_id);
        else if (row.span.parent_id !== null && row.span.parent_id !== undefined) {
          index = rows.findIndex((r) => r.span.span_id === row.span.parent_id);
          if (index >= 0) moveTo(index);
        }
        break;
      case "Enter":
        if (row) this.intents.onSelect(row.span.span_id);
        break;
      default:
        return;
    }
    event.preventDefault();
  }

  /** Bring span `spanId`'s row into view (once it is laid out). */
  reveal(spanId) {
    this.draw();
    const index = this.rows.findIndex((row) => row.span.span_id === spanId);
    if (index >= 0) this.scrollToRow(index);
  }

  /** Scroll just enough for row `index` to be in view. */
  scrollToRow(index) {
    const top = index * ROW_HEIGHT;
    const box = this.container;
    if (top < box.scrollTop) box.scrollTop = top;
    else if (top + ROW_HEIGHT > box.scrollTop + box.clientHeight) box.scrollTop = top + ROW_HEIGHT - box.clientHeight;
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
    // A painted row has no toggle element: its toggle is where it would be.
    const onToggle = this.painted ? toggleHit(Number(element.getAttribute("aria-level")) - 1, event.offsetX) : event.target.classList.contains("toggle");
    if (onToggle && this.model.children.has(id)) this.intents.onToggle(id);
    else this.intents.onSelect(id);
    this.container.focus({ preventScroll: true });
  }
}
