// The span tree's layout, under node's test runner: `node --test ui/tests/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  addLog,
  addSpans,
  appendRows,
  applyEvent,
  barPosition,
  collapseBelow,
  createModel,
  followAfterScroll,
  layoutRows,
  matches,
  runLogs,
  timeAxis,
  visibleWindow,
} from "../tree.js";

let seq = 0;
function span(id, parent, name, extra = {}) {
  return {
    run_id: "r",
    span_id: id,
    parent_id: parent,
    kind: parent === null ? "flow" : "step",
    name,
    status: "ok",
    start_us: 1000 + id * 10,
    end_us: 1000 + id * 10 + 5,
    attrs: {},
    error: null,
    line: null,
    ...extra,
  };
}
function started(s) {
  return { type: "span_started", seq: ++seq, ...s, status: "running", end_us: null };
}
function ended(s) {
  return { type: "span_ended", seq: ++seq, ...s };
}

// root ─ fetch ─ rpc weather.forecast
//      └ report ─ format
function sample() {
  const model = createModel();
  addSpans(model, [
    span(1, null, "report_flow"),
    span(2, 1, "fetch"),
    span(3, 2, "weather.forecast", { kind: "rpc" }),
    span(4, 1, "report", { attrs: { city: "Ghent" } }),
    span(5, 4, "format", { status: "failed", error: { type: "ValueError", message: "bad unit" } }),
  ]);
  return model;
}

const names = (rows) => rows.map((r) => `${"  ".repeat(r.depth)}${r.span.name}`);

test("rows come in tree order with their depth", () => {
  const rows = layoutRows(sample());
  assert.deepEqual(names(rows), ["report_flow", "  fetch", "    weather.forecast", "  report", "    format"]);
  assert.equal(rows[1].hasChildren, true);
  assert.equal(rows[2].hasChildren, false);
});

test("a collapsed span hides its descendants", () => {
  const rows = layoutRows(sample(), { collapsed: new Set([2]) });
  assert.deepEqual(names(rows), ["report_flow", "  fetch", "  report", "    format"]);
  assert.equal(rows[1].collapsed, true);
});

test("collapse below a depth keeps the shallow rows", () => {
  const model = sample();
  assert.deepEqual([...collapseBelow(model, 1)].sort(), [2, 4]);
  assert.deepEqual(names(layoutRows(model, { collapsed: collapseBelow(model, 1) })), ["report_flow", "  fetch", "  report"]);
  assert.deepEqual([...collapseBelow(model, 0)], [1]);
});

test("a filter keeps matches and their ancestors, and opens collapsed ancestors", () => {
  const model = sample();
  assert.deepEqual(names(layoutRows(model, { filter: "forecast" })), ["report_flow", "  fetch", "    weather.forecast"]);
  assert.deepEqual(names(layoutRows(model, { filter: "BAD UNIT", collapsed: new Set([4]) })), [
    "report_flow",
    "  report",
    "    format",
  ]);
  assert.deepEqual(names(layoutRows(model, { filter: "ghent" })), ["report_flow", "  report"]);
  assert.deepEqual(layoutRows(model, { filter: "nothing like it" }), []);
});

test("an attribute matches however its key and value are written", () => {
  const model = createModel();
  addSpans(model, [span(1, null, "root"), span(2, 1, "step", { attrs: { i: 42, city: "Ghent" } }), span(3, 1, "other", { attrs: { i: 421 } })]);
  for (const filter of ["i=42,", "i: 42,", '"i": 42,', '"i":42,', "city=ghent", "City : Ghent", '"city": "Ghent"']) {
    assert.deepEqual(names(layoutRows(model, { filter })), ["root", "  step"], filter);
  }
  assert.deepEqual(names(layoutRows(model, { filter: "i=4" })), ["root", "  step", "  other"]);
  assert.deepEqual(names(layoutRows(model, { filter: "type: ValueError" })), []);
  assert.deepEqual(names(layoutRows(sample(), { filter: "type: ValueError" })), ["report_flow", "  report", "    format"]);
});

test("live events build the same tree, and replayed events are ignored", () => {
  seq = 0;
  const model = createModel();
  const root = span(1, null, "live");
  const step = span(2, 1, "step one");
  assert.ok(applyEvent(model, started(root)));
  assert.ok(applyEvent(model, started(step)));
  assert.equal(model.spans.get(2).status, "running");
  const log = { type: "log", seq: ++seq, run_id: "r", span_id: 2, ts_us: 1025, stream: "stdout", text: "hi" };
  assert.ok(applyEvent(model, log));
  assert.ok(applyEvent(model, ended(step)));
  assert.equal(applyEvent(model, { ...started(step), seq: 2 }), false, "an old seq changes nothing");
  assert.equal(model.spans.get(2).status, "ok");
  assert.deepEqual(model.logs.get(2).map((l) => l.text), ["hi"]);
  assert.deepEqual(names(layoutRows(model)), ["live", "  step one"]);
  assert.ok(applyEvent(model, { type: "run_finished", seq: seq, status: "ok" }));
  assert.equal(model.run.status, "ok");
});

test("children out of start order are sorted", () => {
  const model = createModel();
  addSpans(model, [span(1, null, "root"), span(3, 1, "late", { start_us: 2000 }), span(2, 1, "early", { start_us: 1500 })]);
  assert.deepEqual(names(layoutRows(model)), ["root", "  early", "  late"]);
});

test("the time axis spans the run, and running spans reach now", () => {
  const model = createModel();
  addSpans(model, [span(1, null, "root", { start_us: 0, end_us: null }), span(2, 1, "a", { start_us: 250, end_us: 500 })]);
  const axis = timeAxis(model, 1000);
  assert.deepEqual(axis, { start: 0, end: 1000 });
  assert.deepEqual(barPosition(model.spans.get(2), axis, 1000), { left: 0.25, width: 0.25 });
  assert.deepEqual(barPosition(model.spans.get(1), axis, 1000), { left: 0, width: 1 });
  assert.deepEqual(timeAxis(createModel(), 5), { start: 0, end: 1 });
});

test("the time axis follows spans as they start and end, without looking at them all", () => {
  const model = createModel();
  applyEvent(model, started(span(1, null, "root", { start_us: 100 })));
  assert.deepEqual(timeAxis(model, 900), { start: 100, end: 900 }, "an open span reaches now");
  applyEvent(model, started(span(2, 1, "a", { start_us: 200 })));
  applyEvent(model, ended(span(2, 1, "a", { start_us: 200, end_us: 400 })));
  applyEvent(model, ended(span(1, null, "root", { start_us: 100, end_us: 500 })));
  assert.equal(model.open, 0);
  assert.deepEqual(timeAxis(model, 5_000), { start: 100, end: 500 }, "all closed: the last end");
});

test("a span matches the filter by its log lines; the run's logs keep the order written", () => {
  const model = createModel();
  addSpans(model, [span(1, null, "root"), span(2, 1, "fetch"), span(3, 1, "parse")]);
  addLog(model, { seq: 10, span_id: 3, ts_us: 1, stream: "stdout", text: "Parsing 42 rows" });
  addLog(model, { seq: 11, span_id: 2, ts_us: 2, stream: "stderr", text: "slow answer" });
  assert.ok(matches(model.spans.get(3), "42 ROWS", model.logs.get(3)));
  assert.ok(!matches(model.spans.get(2), "42 rows", model.logs.get(2)));
  assert.deepEqual(layoutRows(model, { filter: "slow" }).map((r) => r.span.name), ["root", "fetch"]);
  const name = (id) => model.spans.get(id).name;
  assert.deepEqual(runLogs(model, "", name).map((l) => l.text), ["Parsing 42 rows", "slow answer"]);
  assert.deepEqual(runLogs(model, "parse", name).map((l) => l.text), ["Parsing 42 rows"], "by its span's name too");
});

test("rows appended as a live run grows equal the rows laid out afresh, whatever the arrival order", () => {
  // A random tree, its spans arriving in start order in random batches:
  // after each batch, appendRows (or a fresh layout where it declines)
  // gives exactly what layoutRows gives.
  let random = 7;
  const next = (n) => {
    random = (random * 1103515245 + 12345) % 2147483648;
    return random % n;
  };
  let appended = 0;
  for (let round = 0; round < 50; round++) {
    // Mostly as a running flow grows (under the newest span or one of its
    // ancestors), now and then anywhere, as side-by-side subflows do.
    const spans = [span(1, null, "root", { start_us: 0 })];
    for (let id = 2; id <= 60; id++) {
      let parent = spans[spans.length - 1];
      for (let up = next(3); up > 0 && parent.parent_id !== null; up--) parent = spans.find((s) => s.span_id === parent.parent_id);
      if (next(8) === 0) parent = spans[next(spans.length)];
      spans.push(span(id, parent.span_id, `s${id}`, { start_us: id }));
    }
    if (round % 5 === 0) spans.push(span(61, null, "second root", { start_us: 61 }));
    const collapsed = round % 3 === 0 ? new Set([spans[next(spans.length)].span_id]) : new Set();
    const model = createModel();
    let rows = [];
    let from = 0;
    for (let at = 0; at < spans.length; ) {
      const batch = spans.slice(at, (at += 1 + next(6)));
      for (const s of batch) applyEvent(model, started(s));
      if (appendRows(model, rows, from, collapsed)) appended++;
      else rows = layoutRows(model, { collapsed });
      from = model.arrived.length;
      const fresh = layoutRows(model, { collapsed });
      assert.deepEqual(
        rows.map((r) => [r.span.span_id, r.depth, r.hasChildren, r.collapsed]),
        fresh.map((r) => [r.span.span_id, r.depth, r.hasChildren, r.collapsed]),
        `round ${round}, after ${at} spans`,
      );
    }
  }
  assert.ok(appended > 100, `appending is the common case (${appended} batches)`);
});

test("a 100,000-span run lays out, and only a window of it is drawn", () => {
  const model = createModel();
  const spans = [span(1, null, "big")];
  // Chains of 100 nested spans under the root.
  for (let id = 2; id <= 100_001; id++) spans.push(span(id, id % 100 === 2 ? 1 : id - 1, `s${id}`));
  addSpans(model, spans);
  const rows = layoutRows(model);
  assert.equal(rows.length, 100_001);
  const window = visibleWindow(rows.length, 22, 22 * 50_000, 660);
  assert.deepEqual(window, { first: 49_990, last: 50_040 });
  assert.equal(visibleWindow(rows.length, 22, 0, 660).first, 0);
  assert.deepEqual(visibleWindow(3, 22, 22 * 50_000, 660), { first: 3, last: 3 }, "scrolled past a shrunken list");
});

test("scrolling up stops following the newest rows, scrolling back to the bottom follows again", () => {
  assert.equal(followAfterScroll({ scrollTop: 0, clientHeight: 440, scrollHeight: 2200 }, 22), false);
  assert.equal(followAfterScroll({ scrollTop: 1760, clientHeight: 440, scrollHeight: 2200 }, 22), true);
  assert.equal(followAfterScroll({ scrollTop: 1745, clientHeight: 440, scrollHeight: 2200 }, 22), true, "within a row of the bottom");
  assert.equal(followAfterScroll({ scrollTop: 1700, clientHeight: 440, scrollHeight: 2200 }, 22), false);
  assert.equal(followAfterScroll({ scrollTop: 0, clientHeight: 440, scrollHeight: 300 }, 22), true, "rows that fit are all in view");
});
