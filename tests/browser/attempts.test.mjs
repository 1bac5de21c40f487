// A retried run's attempts in the runs list, in real headless Chromium:
// listed together under the latest, and one click lists only them.

import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, closePage, openPage } from "./support.mjs";

const RETRIED = `from hero_logic import flow


@flow(name="retried_twice", retries=2, retry_delay=0.1)
def retried_twice():
    raise flow.Failed("try again")


@flow(name="between")
def between():
    return 1
`;

test("a retried run's attempts are listed together, and its attempt link lists only them", async () => {
  const page = await openPage("#/runs");
  const first = await page.evaluate(async (source) => {
    const post = (path, body) =>
      fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }).then((r) => r.json());
    await post("/api/flows", { source });
    // Another run in between, so the attempts are not together by chance.
    const { run_id } = await post("/api/runs", { flow: "retried_twice" });
    await post("/api/runs?wait=true", { flow: "between" });
    return run_id;
  }, RETRIED);
  await page.goto(`${BASE}/#/runs?flow=retried_twice`);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="earlier-attempt"]').length === 2, null, { timeout: 30_000 });
  await page.goto(`${BASE}/#/runs`);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="earlier-attempt"]').length === 2);
  const rows = await page.$$eval("#runs-rows tr[data-run]", (trs) =>
    trs.map((tr) => ({ id: tr.dataset.run, earlier: tr.classList.contains("earlier-attempt"), text: tr.textContent })),
  );
  const at = rows.findIndex((row) => row.text.includes("retried_twice"));
  assert.deepEqual(rows.slice(at, at + 3).map((row) => [row.earlier, /attempt (\d)/.exec(row.text)?.[1]]), [
    [false, "3"],
    [true, "2"],
    [true, "1"],
  ]);
  assert.equal(rows[at + 2].id, first, "the first attempt is the last of its group");

  await page.click(`#runs-rows tr[data-run="${first}"] [data-testid="attempt"]`);
  await page.waitForFunction(() => location.hash.includes("first_run_id="));
  await page.waitForFunction(() => document.querySelectorAll("#runs-rows tr[data-run]").length === 3);
  assert.match(await page.textContent('[data-testid="runs-attempts"]'), /Attempts of run/);
  const only = await page.$$eval("#runs-rows tr[data-run]", (trs) => trs.map((tr) => tr.textContent));
  assert.ok(only.every((text) => text.includes("retried_twice")), only.join("\n"));
  await closePage(page);
});
