// The run form's quota fields: `node --test ui/tests/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { quotaValue } from "../quota_form.js";

const WALL = { name: "wall_time", field: "wall_time_ms", label: "wall time", flag_unit: "seconds", min: 1, max: 120_000, default: 30_000 };
const MEMORY = { name: "memory", field: "memory_bytes", label: "memory", flag_unit: "mebibytes", min: 1, max: 134_217_728 };
const SPANS = { name: "spans", field: "spans", label: "spans", flag_unit: "count", min: 0, max: 200_000 };

test("a quota typed in the form's unit goes in the API's", () => {
  assert.equal(quotaValue(WALL, "1.5"), 1500);
  assert.equal(quotaValue(MEMORY, "64"), 67_108_864);
  assert.equal(quotaValue(SPANS, "20201"), 20_201);
});

test("a quota out of the server's bounds, or not a number, says which and what it takes", () => {
  assert.throws(() => quotaValue(WALL, "500"), { message: "the wall time quota can be from 0.001 to 120 s on this server; 500 is not" });
  assert.throws(() => quotaValue(SPANS, "-1"), { message: "the spans quota can be from 0 to 200000 on this server; -1 is not" });
  assert.throws(() => quotaValue(MEMORY, "lots"), { message: 'the memory quota needs a number from 0 to 128 MiB; "lots" is not one' });
});
