// Drafts of unsaved edits: `node --test ui/tests/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Drafts } from "../drafts.js";

/** The part of `Storage` drafts use, over a Map. */
function memoryStorage() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
    items,
  };
}

test("a draft is kept per flow until it matches what is stored or is forgotten", () => {
  const storage = memoryStorage();
  const drafts = new Drafts(storage);
  drafts.keep("greet", "edited", "stored");
  drafts.keep("", "new edited", "template");
  assert.equal(drafts.get("greet", "stored"), "edited");
  assert.equal(drafts.get("", "template"), "new edited");
  assert.equal(drafts.get("other", "x"), null);
  assert.equal(drafts.get("greet", "edited"), null, "a draft equal to the stored source is none");
  drafts.keep("greet", "stored", "stored");
  assert.equal(drafts.get("greet", "stored"), null, "edits undone by hand are no draft");
  drafts.forget("");
  assert.equal(storage.items.size, 0);
});

test("a storage that is full keeps nothing and throws nothing", () => {
  const drafts = new Drafts({ getItem: () => null, removeItem: () => {}, setItem: () => { throw new Error("QuotaExceededError"); } });
  drafts.keep("greet", "edited", "stored");
  assert.equal(drafts.get("greet", "stored"), null);
});
