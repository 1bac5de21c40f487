import { test } from "node:test";
import assert from "node:assert/strict";
import { groupAttempts, isRetried } from "../attempts.js";

const run = (run_id, attempt = 1, first_run_id = run_id) => ({ run_id, attempt, first_run_id });

test("a run's attempts are listed together, latest first, where its newest attempt falls", () => {
  // Newest first: the retry of a (a3) is newer than b, whose own attempt came between.
  const runs = [run("c"), run("a3", 3, "a1"), run("b"), run("a2", 2, "a1"), run("a1")];
  const rows = groupAttempts(runs).map(({ run, earlier }) => `${run.run_id}${earlier ? "<" : ""}`);
  assert.deepEqual(rows, ["c", "a3", "a2<", "a1<", "b"]);
});

test("attempts whose first run is off the page still group, and plain runs keep their order", () => {
  const runs = [run("x"), run("k2", 2, "k1"), run("y"), run("k3", 3, "k1")];
  const rows = groupAttempts(runs).map(({ run, earlier }) => `${run.run_id}${earlier ? "<" : ""}`);
  assert.deepEqual(rows, ["x", "k3", "k2<", "y"]);
  assert.deepEqual(groupAttempts([]), []);
  assert.deepEqual(groupAttempts(runs).map((row) => row.attempts), [1, 2, 2, 1]);
});

test("a run is retried when it is a later attempt or one waits", () => {
  assert.equal(isRetried(run("a")), false);
  assert.equal(isRetried(run("a2", 2, "a1")), true);
  assert.equal(isRetried({ ...run("a"), retry_due_us: 5 }), true);
});
