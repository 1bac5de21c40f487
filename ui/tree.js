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
    lastSeq: 0,
    run: null, // the run_finished event, once it came
    version: 0, // bumped on every change, so a view knows when to redraw
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
    const lines = model.logs.get(event.span_id) || [];
    lines.push({ seq: event.seq, ts_us: event.ts_us, stream: event.stream, text: event.text });
    model.logs.set(event.span_id, lines);
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

function spanOf(event) {
  const { type: _type, seq: _seq, ...span } = event;
  return span;
}

function putSpan(model, span) {
  const known = model.spans.has(span.span_id);
  model.spans.set(span.span_id, span);
  if (known) return;
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

/** Does a span match a filter text (name, kind, status, error or attributes)? */
export function matches(span, filter) {
  const needle = filter.trim().toLowerCase();
  if (!needle) return true;
  if (span.name.toLowerCase().includes(needle)) return true;
  if (span.kind.includes(needle) || span.status.includes(needle)) return true;
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
      if (!matches(span, filter)) continue;
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
    const isCollapsed = collapsed.has(id) && !(keep && kids.some((k) => keep.has(k)));
    rows.push({ span, depth, hasChildren: kids.length > 0, collapsed: isCollapsed && kids.length > 0 });
    if (isCollapsed) continue;
    for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
  }
  return rows;
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

/** The run's time axis: from its first start to its last end (or `nowUs`). */
export function timeAxis(model, nowUs) {
  let start = Infinity;
  let end = -Infinity;
  for (const span of model.spans.values()) {
    start = Math.min(start, span.start_us);
    end = Math.max(end, span.end_us ?? nowUs);
  }
  if (start === Infinity) return { start: 0, end: 1 };
  return { start, end: Math.max(end, start + 1) };
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

/** A span's duration in words: `0.42 ms`, `1.3 s`, `2 min 5 s`. */
export function formatDuration(us) {
  if (us === null || us === undefined || us < 0) return "";
  if (us < 1000) return `${(us / 1000).toFixed(2)} ms`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
  const seconds = us / 1_000_000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
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
