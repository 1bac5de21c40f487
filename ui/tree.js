// The span tree as data: a run's events merged into a model, and the rows the
// viewer draws from it (depth, collapsed nodes, a filter that keeps the
// ancestors of matches, positions on the run's time axis). Pure functions, no
// DOM, so node's test runner checks them (ui/tests/tree.test.js).

/** An empty model of one run. */
export function createModel() {
  return {
    spans: new Map(), // span_id -> span, as the last event told it
    children: new Map(), // span_id -> [child span_id], in start order
    roots: [],
    logs: new Map(), // span_id -> [log line]
    arrived: [], // span_id of every span, in the order they first arrived
    logOrder: [], // every log line in the order the run wrote them, with its span_id
    lastSeq: 0,
    run: null, // the run_finished event, once it came
    version: 0, // bumped on every change, so a view knows when to redraw
    // The run's time axis as far as it is known, kept as spans arrive so a
    // frame need not look at every span: the first start, the last end,
    // and how many spans are still open (they stretch the axis to now).
    firstStartUs: Infinity,
    lastEndUs: -Infinity,
    open: 0,
  };
}

/**
 * Merge one event from the run's WebSocket (or its stored history) into the
 * model. Events at or below the last `seq` seen are ignored, so replay and
 * live events can overlap safely. Returns true when the model changed.
 */
export function applyEvent(model, event) {
  if (event.type === "run_finished") {
    model.run = event;
    model.lastSeq = Math.max(model.lastSeq, event.seq || 0);
    model.version++;
    return true;
  }
  if (typeof event.seq !== "number" || event.seq <= model.lastSeq) return false;
  model.lastSeq = event.seq;
  if (event.type === "span_started" || event.type === "span_ended") {
    putSpan(model, spanOf(event));
  } else if (event.type === "log") {
    addLog(model, event);
  } else {
    return false;
  }
  model.version++;
  return true;
}

/** Add spans as `GET /api/runs/{id}/spans` returns them (a finished run). */
export function addSpans(model, spans) {
  for (const span of spans) putSpan(model, span);
  model.version++;
}

/** Add one log line (an event or a line of `GET /api/runs/{id}/logs`). */
export function addLog(model, line) {
  const kept = { seq: line.seq, ts_us: line.ts_us, stream: line.stream, text: line.text, span_id: line.span_id };
  const lines = model.logs.get(line.span_id) || [];
  lines.push(kept);
  model.logs.set(line.span_id, lines);
  model.logOrder.push(kept);
}

function spanOf(event) {
  const { type: _type, seq: _seq, ...span } = event;
  return span;
}

function putSpan(model, span) {
  const before = model.spans.get(span.span_id);
  model.spans.set(span.span_id, span);
  model.firstStartUs = Math.min(model.firstStartUs, span.start_us);
  if (span.end_us !== null && span.end_us !== undefined) model.lastEndUs = Math.max(model.lastEndUs, span.end_us);
  model.open += isOpen(span) - (before ? isOpen(before) : 0);
  if (before) return;
  model.arrived.push(span.span_id);
  const parent = span.parent_id;
  if (parent === null || parent === undefined) {
    model.roots.push(span.span_id);
    return;
  }
  const siblings = model.children.get(parent);
  if (siblings) {
    // Spans almost always arrive in start order; keep the list sorted anyway.
    let at = siblings.length;
    while (at > 0 && startOrder(model.spans.get(siblings[at - 1]), span) > 0) at--;
    siblings.splice(at, 0, span.span_id);
  } else {
    model.children.set(parent, [span.span_id]);
  }
}

function isOpen(span) {
  return span.end_us === null || span.end_us === undefined ? 1 : 0;
}

function startOrder(a, b) {
  return a.start_us - b.start_us || a.span_id - b.span_id;
}

/**
 * Text as the filter compares it: lower case, without quotes, with `:` and
 * `=` (and the spaces around them) alike, so `i=42`, `i: 42` and `"i": 42`
 * all find the attribute `{"i": 42}`, whatever spacing JSON gave it.
 */
export function looseText(text) {
  return text.toLowerCase().replace(/"/g, "").replace(/\s*[:=]\s*/g, "=");
}

/** Does a span match a filter text (name, kind, status, error, attributes
 * or one of its log lines, `logs`)? */
export function matches(span, filter, logs = []) {
  const needle = filter.trim().toLowerCase();
  if (!needle) return true;
  if (span.name.toLowerCase().includes(needle)) return true;
  if (span.kind.includes(needle) || span.status.includes(needle)) return true;
  if (logs.some((line) => line.text.toLowerCase().includes(needle))) return true;
  const loose = looseText(needle);
  if (span.error && looseText(JSON.stringify(span.error)).includes(loose)) return true;
  return looseText(JSON.stringify(span.attrs || {})).includes(loose);
}

/**
 * The rows to draw, in tree order: `{span, depth, hasChildren, collapsed}`.
 * A collapsed span hides its descendants. With a filter, only matches and
 * their ancestors are shown, and ancestors of a match open even if collapsed.
 */
export function layoutRows(model, { collapsed = new Set(), filter = "" } = {}) {
  let keep = null;
  if (filter.trim()) {
    keep = new Set();
    for (const span of model.spans.values()) {
      if (!matches(span, filter, model.logs.get(span.span_id))) continue;
      let id = span.span_id;
      while (id !== null && id !== undefined && !keep.has(id)) {
        keep.add(id);
        const known = model.spans.get(id);
        id = known ? known.parent_id : null;
      }
    }
  }
  const rows = [];
  // An explicit stack: a run may nest deeper than the call stack allows.
  const stack = [];
  for (let i = model.roots.length - 1; i >= 0; i--) stack.push([model.roots[i], 0]);
  while (stack.length) {
    const [id, depth] = stack.pop();
    if (keep && !keep.has(id)) continue;
    const span = model.spans.get(id);
    const kids = model.children.get(id) || [];
    // Under a filter, a span's children are those the filter keeps, and a
    // folded span with one of them is held open (`forcedOpen`).
    const shown = keep ? kids.filter((k) => keep.has(k)) : kids;
    const forcedOpen = collapsed.has(id) && keep !== null && shown.length > 0;
    const isCollapsed = collapsed.has(id) && !forcedOpen;
    const row = { span, depth, hasChildren: shown.length > 0, collapsed: isCollapsed && shown.length > 0 };
    if (forcedOpen) row.forcedOpen = true;
    rows.push(row);
    if (isCollapsed) continue;
    for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
  }
  return rows;
}

/**
 * Bring `rows` (as `layoutRows` made them, with no filter, `collapsed` as
 * given) up to date with the spans that arrived since `model.arrived[from]`,
 * in place, when each new span goes at the very end: the last child of a span
 * on the path down to the last row, which is how a running flow grows.
 * Returns false, touching nothing, when one does not: lay them all out again.
 * A live run's frame then costs the new spans, not the whole tree.
 */
export function appendRows(model, rows, from, collapsed) {
  const added = [];
  // The path from the last row up to its root: span_id -> depth.
  let path = null;
  const pathOf = (row) => {
    const depths = new Map();
    let id = row.span.span_id;
    let depth = row.depth;
    while (id !== null && id !== undefined && depth >= 0) {
      depths.set(id, depth--);
      id = model.spans.get(id)?.parent_id;
    }
    return depths;
  };
  let last = rows[rows.length - 1];
  // When each new span arrived: a span is at the end if every sibling after
  // it arrived after it (they are appended after it, in turn).
  const arrivedAt = new Map();
  for (let i = from; i < model.arrived.length; i++) arrivedAt.set(model.arrived[i], i);
  const lastSoFar = (siblings, id, i) => {
    for (let k = siblings.length - 1; k >= 0 && siblings[k] !== id; k--) {
      if (!(arrivedAt.get(siblings[k]) > i)) return false;
    }
    return true;
  };
  for (let i = from; i < model.arrived.length; i++) {
    const span = model.spans.get(model.arrived[i]);
    const parent = span.parent_id;
    let depth;
    if (parent === null || parent === undefined) {
      if (!lastSoFar(model.roots, span.span_id, i)) return false;
      depth = 0;
    } else {
      if (!lastSoFar(model.children.get(parent), span.span_id, i)) return false;
      if (!last) return false;
      path ??= pathOf(last);
      const parentDepth = path.get(parent);
      if (parentDepth === undefined) {
        // A parent whose row is folded away adds nothing to draw;
        // otherwise the new row is not at the end.
        if (isHidden(model, model.spans.get(parent)?.parent_id, collapsed)) continue;
        return false;
      }
      if (collapsed.has(parent)) {
        // A folded span shows nothing under it, so it is the last row: it
        // has children now, and shows it folded.
        last.hasChildren = true;
        last.collapsed = true;
        continue;
      }
      depth = parentDepth + 1;
    }
    const row = { span, depth, hasChildren: false, collapsed: false };
    added.push(row);
    last = row;
    path = pathOf(row);
  }
  for (const row of added) {
    const parentRow = rows.length && row.span.parent_id === rows[rows.length - 1].span.span_id ? rows[rows.length - 1] : null;
    if (parentRow) parentRow.hasChildren = true;
    rows.push(row);
  }
  return true;
}

/** Is span `id`'s row out of sight: itself or an ancestor folded (null: no span)? */
function isHidden(model, id, collapsed) {
  while (id !== null && id !== undefined) {
    if (collapsed.has(id)) return true;
    id = model.spans.get(id)?.parent_id;
  }
  return false;
}

/** The spans to collapse so that nothing deeper than `depth` shows. */
export function collapseBelow(model, depth) {
  const collapsed = new Set();
  const stack = model.roots.map((id) => [id, 0]);
  while (stack.length) {
    const [id, d] = stack.pop();
    const kids = model.children.get(id) || [];
    if (d >= depth && kids.length) {
      collapsed.add(id);
      continue;
    }
    for (const kid of kids) stack.push([kid, d + 1]);
  }
  return collapsed;
}

/** Is the run still going (spans tick, the view keeps drawing)? */
export function isRunning(model) {
  return !model.run && model.roots.some((id) => model.spans.get(id)?.status === "running");
}

/** The run's time axis: from its first start to its last end (or `nowUs`
 * while a span is open). */
export function timeAxis(model, nowUs) {
  if (model.firstStartUs === Infinity) return { start: 0, end: 1 };
  const start = model.firstStartUs;
  const end = model.open > 0 ? Math.max(model.lastEndUs, nowUs) : model.lastEndUs;
  return { start, end: Math.max(end, start + 1) };
}

/** The log lines of the run, in the order written, whose text (or span's
 * name, `spanName(id)`) holds `filter`; all of them for an empty filter. */
export function runLogs(model, filter, spanName) {
  const needle = filter.trim().toLowerCase();
  if (!needle) return model.logOrder;
  return model.logOrder.filter((line) => line.text.toLowerCase().includes(needle) || spanName(line.span_id).toLowerCase().includes(needle));
}

/** Where a span's bar sits on the axis, as fractions of its width. */
export function barPosition(span, axis, nowUs) {
  const length = axis.end - axis.start;
  const end = span.end_us ?? nowUs;
  const left = clamp((span.start_us - axis.start) / length);
  const width = Math.max(clamp((end - span.start_us) / length), 0.002);
  return { left, width: Math.min(width, 1 - left) };
}

function clamp(x) {
  return Math.min(1, Math.max(0, x));
}

/** The slice of rows a scrolled viewport shows, with a margin each side. */
export function visibleWindow(rowCount, rowHeight, scrollTop, viewportHeight, overscan = 10) {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(rowCount, Math.ceil((scrollTop + viewportHeight) / rowHeight) + overscan);
  // Scrolled past the rows (they shrank under a filter): nothing to draw.
  return { first: Math.min(first, last), last };
}

/**
 * Whether to follow the newest rows after the reader scrolled: scrolling
 * away from the bottom stops following, scrolling back to it (within a row)
 * follows again.
 */
export function followAfterScroll({ scrollTop, clientHeight, scrollHeight }, rowHeight) {
  return scrollTop + clientHeight >= scrollHeight - rowHeight;
}
