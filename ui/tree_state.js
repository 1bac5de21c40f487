// What the reader has done to the span tree: folded spans, the selected span,
// the filter, the depth limit, following the newest rows. Plain data changed
// only by `reduceTree(state, action)`, which returns a new state and never
// touches its input, so the drawing code can tell a change by identity.

import { collapseBelow } from "./tree.js";

/** The tree as a fresh page shows it: everything open, following. */
export function initialTreeState() {
  return { collapsed: new Set(), selected: null, filter: "", depth: null, follow: true };
}

/**
 * The state after one action:
 * - `{type: "reset"}`: another run is shown; the reader's filter, depth limit
 *   and follow stay, folds and selection go.
 * - `{type: "loaded", model}`: a finished run's spans came at once.
 * - `{type: "eventArrived", event, model}`: one event was merged into `model`.
 * - `{type: "expand" | "collapse" | "toggle", spanId}`
 * - `{type: "collapseBelow", depth, model}`: `depth` null or not a whole
 *   number opens everything.
 * - `{type: "select", spanId}`, `{type: "filter", text}`, `{type: "follow", on}`
 */
export function reduceTree(state, action) {
  switch (action.type) {
    case "reset":
      return { ...state, collapsed: new Set(), selected: null };
    case "loaded":
      return state.depth === null ? state : { ...state, collapsed: collapseBelow(action.model, state.depth) };
    case "eventArrived":
      return foldNewSpan(state, action.event, action.model);
    case "expand":
      return state.collapsed.has(action.spanId) ? { ...state, collapsed: without(state.collapsed, action.spanId) } : state;
    case "collapse":
      return state.collapsed.has(action.spanId) ? state : { ...state, collapsed: new Set(state.collapsed).add(action.spanId) };
    case "toggle":
      return reduceTree(state, { type: state.collapsed.has(action.spanId) ? "expand" : "collapse", spanId: action.spanId });
    case "collapseBelow": {
      const depth = Number.isInteger(action.depth) && action.depth >= 0 ? action.depth : null;
      return { ...state, depth, collapsed: depth === null ? new Set() : collapseBelow(action.model, depth) };
    }
    case "select":
      return state.selected === action.spanId ? state : { ...state, selected: action.spanId };
    case "filter":
      return state.filter === action.text ? state : { ...state, filter: action.text };
    case "follow":
      return state.follow === action.on ? state : { ...state, follow: action.on };
    default:
      throw new Error(`unknown tree action ${action.type}`);
  }
}

/** Under a depth limit, a span that starts at or below it arrives folded, so
 * the limit holds for a live run as it grows, not only for the spans that
 * were there when it was set. */
function foldNewSpan(state, event, model) {
  if (state.depth === null || event.type !== "span_started") return state;
  if (depthOf(model, event.span_id) < state.depth) return state;
  return reduceTree(state, { type: "collapse", spanId: event.span_id });
}

function depthOf(model, spanId) {
  let depth = 0;
  let parent = model.spans.get(spanId)?.parent_id;
  while (parent !== null && parent !== undefined) {
    depth++;
    parent = model.spans.get(parent)?.parent_id;
  }
  return depth;
}

function without(set, item) {
  const copy = new Set(set);
  copy.delete(item);
  return copy;
}
