// Replay from the page, in real headless Chromium: a finished run's Replay
// button starts a run answered from its journal, which ends as the
// original did and says which run it replays.

import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, closePage, openPage } from "./support.mjs";

const PICK = `import random
import time
from hero_logic import flow


@flow(name="pick_later")
def pick_later():
    with flow.step("wait"):
        time.sleep(0.5)
    return {"at": time.time(), "pick": random.random()}
`;

test("a finished run's Replay button runs it again from its journal, with the same output at once", async () => {
  const page = await openPage("#/runs");
  const original = await page.evaluate(async (source) => {
    const response = await fetch("/api/runs?wait=true", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ source }) });
    return response.json();
  }, PICK);
  assert.equal(original.status, "ok");
  await page.goto(`${BASE}/#/runs/${original.run_id}`);
  await page.waitForSelector('[data-testid="run-title"][data-status="ok"]');
  await page.click('[data-testid="replay"]');
  await page.waitForFunction((id) => location.hash.startsWith("#/runs/") && !location.hash.includes(id), original.run_id);
  await page.waitForSelector('[data-testid="run-title"][data-status="ok"] [data-testid="replay-of"]');
  const replayId = await page.evaluate(() => location.hash.split("/")[2]);
  const replay = await page.evaluate(async (id) => (await fetch(`/api/runs/${id}`)).json(), replayId);
  assert.equal(replay.replay_of, original.run_id);
  assert.deepEqual(replay.output, original.output, "the original's clock and random values");
  assert.ok(replay.end_us - replay.start_us < 400_000, "the half-second sleep was not waited");
  // The link leads back to the original.
  await page.click('[data-testid="replay-of"] a');
  await page.waitForFunction((id) => location.hash === `#/runs/${id}`, original.run_id);
  await closePage(page);
});

test("a durable run's title says it is durable", async () => {
  const page = await openPage("#/runs");
  const source = PICK.replace('@flow(name="pick_later")', '@flow(name="pick_durably", durable=True)');
  const run = await page.evaluate(async (source) => {
    const response = await fetch("/api/runs?wait=true", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ source }) });
    return response.json();
  }, source);
  assert.equal(run.durable, true);
  assert.equal(run.resumes, 0);
  await page.goto(`${BASE}/#/runs/${run.run_id}`);
  const note = await page.waitForSelector('[data-testid="run-title"][data-status="ok"] [data-testid="durable"]');
  assert.equal(await note.textContent(), "durable", "never resumed, so no count");
  await closePage(page);
});
