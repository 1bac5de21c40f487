// The span tree's view state and its reducers: `node --test ui/tests/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addSpans, applyEvent, createModel, layoutRows } from "../tree.js";
import { initialTreeState, reduceTree } from "../tree_state.js";

function span(id, parent, name) {
  return { run_id: "r", span_id: id, parent_id: parent, kind: parent === null ? "flow" : "step", name, status: "ok", start_us: id, end_us: id + 1, attrs: {}, error: null, line: null };
}

// root ─ a ─ a1
//      └ b ─ b1 ─ b2
function sample() {
  const model = createModel();
  addSpans(model, [span(1, null, "root"), span(2, 1, "a"), span(3, 2, "a1"), span(4, 1, "b"), span(5, 4, "b1"), span(6, 5, "b2")]);
  return model;
}

/** Apply actions in turn, checking that no state handed in was changed. */
function run(state, ...actions) {
  for (const action of actions) {
    const before = JSON.stringify(state, (_, v) => (v instanceof Set ? [...v] : v));
    const collapsedBefore = [...state.collapsed];
    const next = reduceTree(state, action);
    assert.equal(JSON.stringify(state, (_, v) => (v instanceof Set ? [...v] : v)), before, `${action.type} left its input alone`);
    assert.deepEqual([...state.collapsed], collapsedBefore);
    state = next;
  }
  return state;
}

const shown = (model, state) => layoutRows(model, state).map((row) => row.span.name);

test("a fresh tree is open, unselected, unfiltered and follows", () => {
  assert.deepEqual(initialTreeState(), { collapsed: new Set(), selected: null, filter: "", depth: null, follow: true });
});

test("collapse, expand and toggle fold one span", () => {
  const model = sample();
  const folded = run(initialTreeState(), { type: "collapse", spanId: 4 });
  assert.deepEqual(shown(model, folded), ["root", "a", "a1", "b"]);
  assert.deepEqual(shown(model, run(folded, { type: "expand", spanId: 4 })), ["root", "a", "a1", "b", "b1", "b2"]);
  assert.deepEqual([...run(folded, { type: "toggle", spanId: 2 }).collapsed].sort(), [2, 4]);
  assert.deepEqual([...run(folded, { type: "toggle", spanId: 4 }).collapsed], []);
});

test("an action that changes nothing returns the same state, so nothing is drawn again", () => {
  const state = run(initialTreeState(), { type: "collapse", spanId: 4 }, { type: "select", spanId: 2 });
  for (const action of [
    { type: "collapse", spanId: 4 },
    { type: "expand", spanId: 3 },
    { type: "select", spanId: 2 },
    { type: "filter", text: "" },
    { type: "follow", on: true },
    { type: "loaded", model: sample() },
    { type: "eventArrived", event: { type: "span_started", span_id: 6 }, model: sample() },
  ]) {
    assert.equal(reduceTree(state, action), state, action.type);
  }
});

test("select, filter and follow are what the reader last chose", () => {
  const state = run(initialTreeState(), { type: "select", spanId: 5 }, { type: "filter", text: "b1" }, { type: "follow", on: false });
  assert.equal(state.selected, 5);
  assert.equal(state.filter, "b1");
  assert.equal(state.follow, false);
  assert.deepEqual(shown(sample(), state), ["root", "b", "b1"]);
});

test("collapse below a depth folds the spans at that depth, and no depth opens all", () => {
  const model = sample();
  const state = run(initialTreeState(), { type: "collapseBelow", depth: 1, model });
  assert.equal(state.depth, 1);
  assert.deepEqual(shown(model, state), ["root", "a", "b"]);
  const open = run(state, { type: "collapseBelow", depth: null, model });
  assert.equal(open.depth, null);
  assert.deepEqual(shown(model, open), ["root", "a", "a1", "b", "b1", "b2"]);
  assert.equal(run(state, { type: "collapseBelow", depth: -1, model }).depth, null, "not a depth");
});

test("another run: folds and selection go, the reader's filter, depth and follow stay", () => {
  const model = sample();
  const state = run(
    initialTreeState(),
    { type: "collapseBelow", depth: 2, model },
    { type: "collapse", spanId: 1 },
    { type: "select", spanId: 3 },
    { type: "filter", text: "b" },
    { type: "follow", on: false },
    { type: "reset" },
  );
  assert.deepEqual(state, { collapsed: new Set(), selected: null, filter: "b", depth: 2, follow: false });
  // A finished run's spans arrive at once: the depth applies to them.
  const loaded = run(state, { type: "filter", text: "" }, { type: "loaded", model });
  assert.deepEqual(shown(model, loaded), ["root", "a", "a1", "b", "b1"]);
});

test("under a depth limit, spans of a live run arrive folded at that depth", () => {
  const model = createModel();
  let state = run(initialTreeState(), { type: "collapseBelow", depth: 1, model });
  let seq = 0;
  for (const s of [span(1, null, "root"), span(2, 1, "a"), span(3, 2, "a1"), span(4, 1, "b")]) {
    const event = { type: "span_started", seq: ++seq, ...s, status: "running", end_us: null };
    assert.ok(applyEvent(model, event));
    state = run(state, { type: "eventArrived", event, model });
  }
  assert.deepEqual(shown(model, state), ["root", "a", "b"]);
  // Ends and logs fold nothing, and without a limit nothing folds.
  const ended = { type: "span_ended", seq: ++seq, ...span(2, 1, "a") };
  applyEvent(model, ended);
  assert.equal(reduceTree(state, { type: "eventArrived", event: ended, model }), state);
  const open = run(initialTreeState(), { type: "eventArrived", event: { type: "span_started", span_id: 2 }, model });
  assert.deepEqual([...open.collapsed], []);
});

test("an unknown action is a mistake, not a silent no-op", () => {
  assert.throws(() => reduceTree(initialTreeState(), { type: "explode" }), /unknown tree action/);
});
