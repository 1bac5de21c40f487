// Durations, dates and the ruler's ticks: `node --test ui/tests/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatDate, formatDuration, formatOffset, relativeTime, rulerTicks } from "../time.js";

test("durations read in µs, ms, s, minutes and hours", () => {
  assert.equal(formatDuration(420), "420 µs");
  assert.equal(formatDuration(1_250), "1.25 ms");
  assert.equal(formatDuration(12_500), "12.5 ms");
  assert.equal(formatDuration(1_300_000), "1.30 s");
  assert.equal(formatDuration(125_000_000), "2 min 5 s");
  assert.equal(formatDuration(7_380_000_000), "2 h 3 min");
  assert.equal(formatDuration(null), "");
  // Rounded first, then split: no "60 s" or "1000 ms".
  assert.equal(formatDuration(999.6), "1.00 ms");
  assert.equal(formatDuration(999_960), "1.00 s");
  assert.equal(formatDuration(59_960_000), "1 min 0 s");
  assert.equal(formatDuration(119_600_000), "2 min 0 s");
  assert.equal(formatDuration(3_599_700_000), "1 h 0 min");
});

test("offsets on the ruler are as short as they can be", () => {
  assert.equal(formatOffset(0), "0");
  assert.equal(formatOffset(250), "250 µs");
  assert.equal(formatOffset(40_000), "40 ms");
  assert.equal(formatOffset(1_500_000), "1.5 s");
  assert.equal(formatOffset(90_000_000), "1.5 min");
  assert.equal(formatOffset(999_999), "1 s");
  assert.equal(formatOffset(59_999_000), "1 min");
});

test("how long ago, and the date beside it", () => {
  const now = Date.UTC(2026, 10, 26, 12, 0, 0);
  assert.equal(relativeTime(now - 2_000, now), "just now");
  assert.equal(relativeTime(now - 42_000, now), "42 s ago");
  assert.equal(relativeTime(now - 3 * 60_000, now), "3 min ago");
  assert.equal(relativeTime(now - 5 * 3_600_000, now), "5 h ago");
  assert.equal(relativeTime(now - 3 * 86_400_000, now), "3 days ago");
  assert.equal(relativeTime(now + 60_000, now), "in the future");
  assert.match(formatDate(now), /^2026-11-2[67] \d\d:00:00$/);
});

test("the ruler ticks at round steps, from 0 to the run's length", () => {
  const ticks = rulerTicks(1_000_000);
  assert.deepEqual(ticks.map((t) => t.label), ["0", "200 ms", "400 ms", "600 ms", "800 ms", "1 s"]);
  assert.deepEqual(ticks.map((t) => +t.at.toFixed(3)), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(rulerTicks(730).map((t) => t.label), ["0", "200 µs", "400 µs", "600 µs"]);
  assert.ok(rulerTicks(4_321_000).every((t) => t.at <= 1));
  assert.deepEqual(rulerTicks(0), [{ at: 0, label: "0" }]);
  assert.deepEqual(rulerTicks(Infinity), [{ at: 0, label: "0" }], "no endless ticks for a broken axis");
});
