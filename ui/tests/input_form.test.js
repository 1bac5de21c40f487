// The run form's pure parts: `node --test ui/tests/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { exampleInput, fieldValue } from "../input_form.js";

test("the raw JSON placeholder follows the flow's declared inputs", () => {
  const inputs = {
    city: { type: "string", required: true },
    days: { type: "integer", required: false, default: 3 },
    ratio: { type: "number", required: true },
    tags: { type: "array", required: false },
  };
  assert.equal(exampleInput(inputs), '{"city":"text","days":3,"ratio":1.5,"tags":[]}');
  assert.equal(exampleInput({}), "{}");
});

test("a field says which input it is and what it needs", () => {
  assert.equal(fieldValue("n", "integer", "7"), 7);
  assert.equal(fieldValue("who", "string", "ada"), "ada");
  assert.deepEqual(fieldValue("opts", "object", '{"a": 1}'), { a: 1 });
  assert.throws(() => fieldValue("n", "integer", "abc"), { message: '"n" needs an integer, like 42; "abc" is not one' });
  assert.throws(() => fieldValue("n", "integer", "1.5"), { message: '"n" needs an integer, like 42; "1.5" is not one' });
  assert.throws(() => fieldValue("ok", "boolean", "yes"), { message: '"ok" needs a boolean, like true; "yes" is not one' });
  assert.throws(() => fieldValue("tags", "array", "{}"), /"tags" needs an array, like \[\]/);
  assert.equal(fieldValue("x", "any", "null"), null);
});
