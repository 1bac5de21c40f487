// The page as a daily tool, in real headless Chromium: the services page,
// the run's logs, the time axis, keyboard, dark mode, narrow screens, quotas
// from the form, completion snippets, subflow sources, and a big run's
// frames while it streams live. Figures are printed, never judged.

import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, SHOTS, closePage, openPage, writeInEditor } from "./support.mjs";

const SERVICE_URL = process.env.HERO_LOGIC_SERVICE_URL;

const LOGGING_FLOW = `import time
from hero_logic import flow


@flow(name="chatty", inputs={"n": "integer"})
def chatty(n):
    for i in range(n):
        with flow.step(f"round {i}", i=i):
            print(f"round {i} says hello")
            if i == 2:
                print("the needle is here")
            time.sleep(0.05)
    return n
`;

const CALLEE = `from hero_logic import flow


@flow(name="greet_sub", inputs={"who": "string"})
def greet_sub(who):
    # a comment that fills a line
    with flow.step("inside callee"):
        text = "hi " + who
    return text
`;
const CALLEE_STEP_LINE = 7;

const CALLER = `from hero_logic import flow


@flow(name="caller_of_sub")
def caller_of_sub():
    with flow.step("before"):
        pass
    return flow.invoke("greet_sub", who="ada")
`;

const LIVE_MANY = `import time
from hero_logic import flow


@flow(name="live_many", inputs={"groups": "integer"})
def live_many(groups):
    for g in range(groups):
        with flow.step(f"group {g}"):
            for i in range(100):
                with flow.step(f"leaf {g * 100 + i}", i=i):
                    pass
            time.sleep(0.02)
    return {"spans": groups * 101 + 1}
`;

async function api(path, init = {}) {
  const response = await fetch(`${BASE}${path}`, { ...init, headers: { "Content-Type": "application/json", ...(init.headers || {}) } });
  return { status: response.status, body: await response.json().catch(() => null) };
}

/** Run `source` from the editor of `page` with the raw JSON `input`, and wait for its end. */
async function runInEditor(page, source, input, status = "ok") {
  await writeInEditor(page, source);
  await page.fill('[data-testid="input-json"]', JSON.stringify(input));
  await page.click('[data-testid="run"]');
  await page.waitForSelector(`[data-testid="run-title"][data-status="${status}"]`, { timeout: 30_000 });
}

test("the services page lists, checks, registers and removes services, and says what to do when there are none", async () => {
  // Start from no registered service, as a new server has.
  const { body } = await api("/api/services");
  for (const service of body.services.filter((s) => !s.builtin)) await api(`/api/services/${service.name}`, { method: "DELETE" });
  const page = await openPage("#/services");
  await page.waitForSelector('[data-testid="services-empty"]');
  assert.match(await page.textContent('[data-testid="services-empty"]'), /hero_logic services add/);
  // The built-ins are listed with their methods and docs.
  assert.match(await page.textContent('[data-testid="service-kv"]'), /get\(key\)/);
  await page.screenshot({ path: `${SHOTS}/services-empty.png` });

  // A wrong URL is refused with the server's reason, on the page.
  await page.fill('[data-testid="service-name"]', "nowhere");
  await page.fill('[data-testid="service-url"]', "http://127.0.0.1:9/rpc");
  await page.click('[data-testid="service-register"]');
  await page.waitForFunction(() => /rpc\.discover/.test(document.querySelector('[data-testid="service-message"]').textContent));

  await page.fill('[data-testid="service-name"]', "weather_page");
  await page.fill('[data-testid="service-url"]', SERVICE_URL);
  await page.click('[data-testid="service-register"]');
  await page.waitForSelector('[data-testid="service-weather_page"]');
  assert.equal(await page.$('[data-testid="services-empty"]'), null);
  assert.match(await page.textContent('[data-testid="service-weather_page"]'), new RegExp(SERVICE_URL.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")));
  // Its health: a real rpc.discover round trip.
  await page.waitForSelector('[data-testid="health-weather_page"][data-health="ok"]');
  assert.match(await page.textContent('[data-testid="health-weather_page"]'), /answers \([\d.]+ ms, \d+ methods\)/);
  await page.screenshot({ path: `${SHOTS}/services.png` });

  page.once("dialog", (dialog) => dialog.accept());
  await page.click('[data-testid="remove-weather_page"]');
  await page.waitForSelector('[data-testid="services-empty"]');
  const after = await api("/api/services");
  assert.ok(!after.body.services.some((s) => s.name === "weather_page"), "removed from the server");
  await closePage(page, [/status of 400 \(Bad Request\)/]);
});

test("the run's logs are in one panel, in order, with their spans, searchable; the span filter finds spans by their logs", async () => {
  const page = await openPage("#/new");
  await runInEditor(page, LOGGING_FLOW, { n: 4 });
  await page.waitForFunction(() => document.querySelector('[data-testid="tab-logs"]').textContent === "Logs (5)");
  await page.click('[data-testid="tab-logs"]');
  const lines = await page.$$eval('[data-testid="log-line"] .log-text', (cells) => cells.map((c) => c.textContent));
  assert.deepEqual(lines, ["round 0 says hello", "round 1 says hello", "round 2 says hello", "the needle is here", "round 3 says hello"]);
  const spans = await page.$$eval('[data-testid="log-line"] .log-span', (cells) => cells.map((c) => c.textContent));
  assert.deepEqual(spans, ["round 0", "round 1", "round 2", "round 2", "round 3"]);
  await page.fill('[data-testid="log-filter"]', "NEEDLE");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-line"]').length === 1);
  await page.screenshot({ path: `${SHOTS}/run-logs.png` });
  // A line's span opens that span's details.
  await page.click('[data-testid="log-line"] .log-span');
  await page.waitForFunction(() => /round 2/.test(document.querySelector('[data-testid="details"]').textContent));
  assert.equal(await page.getAttribute('[data-testid="tab-details"]', "aria-selected"), "true");
  // ... and the tree shows it selected.
  await page.waitForFunction(() => document.querySelector('[data-testid="tree"] .row.selected .name')?.textContent === "round 2");
  // The span filter searches log lines too: the step that printed the needle, with its root.
  await page.fill('[data-testid="tree-filter"]', "needle");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="tree"] [data-span-id]').length === 2);
  const names = await page.$$eval('[data-testid="tree"] [data-span-id] .name', (cells) => cells.map((c) => c.textContent));
  assert.deepEqual(names, ["chatty", "round 2"]);
  await closePage(page);
});

test("the time axis: a ruler over the bars, start offsets, the full run id to copy, and relative dates in the runs list", async () => {
  const page = await openPage("#/new");
  await runInEditor(page, LOGGING_FLOW, { n: 3 });
  const ticks = await page.$$eval('[data-testid="ruler"] .tick', (cells) => cells.map((c) => c.textContent));
  assert.equal(ticks[0], "0");
  assert.ok(ticks.length >= 3 && ticks.slice(1).every((t) => /^[\d.]+ (µs|ms|s)$/.test(t)), ticks.join(" "));
  const runId = await page.evaluate(() => location.hash.split("/")[2]);
  assert.equal(await page.textContent('[data-testid="run-id"]'), runId);
  await page.click('[data-testid="copy-run-id"]');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), runId);
  await page.click('[data-testid="tree"] [data-span-id] >> text=round 2');
  assert.match(await page.textContent('[data-testid="span-when"]'), /^starts at \+[\d.]+ ms · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);

  await page.goto(`${BASE}/#/runs?flow=chatty`);
  await page.waitForSelector(`#runs-rows tr[data-run="${runId}"] time`);
  const when = await page.$eval(`#runs-rows tr[data-run="${runId}"] time`, (t) => ({ text: t.textContent, title: t.title }));
  assert.match(when.text, /^(just now|\d+ s ago)$/);
  assert.match(when.title, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  // Filters that match nothing say so, with the way back.
  await page.fill('[data-testid="runs-flow"]', "no-flow-has-this-name");
  await page.waitForSelector('[data-testid="runs-empty"]');
  assert.match(await page.textContent('[data-testid="runs-empty"]'), /No run matches these filters/);
  await closePage(page);
});

test("the keyboard: / focuses the filter, arrows move through the tree, left and right fold, Enter opens", async () => {
  const page = await openPage("#/new");
  await runInEditor(page, LOGGING_FLOW, { n: 3 });
  assert.equal(await page.getAttribute('[data-testid="tree"]', "role"), "tree");
  assert.equal(await page.getAttribute('[data-testid="tree"] [data-span-id]', "role"), "treeitem");
  // Nothing selected yet: the details say what to do.
  await page.click('[data-testid="tree-filter"]');
  await page.keyboard.press("Escape");
  await page.focus('[data-testid="tree"]');
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowDown");
  // The tree draws on the next frame: wait for it to show the span selected.
  const selected = (name) =>
    page.waitForFunction((want) => document.querySelector('[data-testid="tree"] .row.selected .name')?.textContent === want, name).then(() => name);
  assert.equal(await selected("round 0"), "round 0");
  assert.equal(await page.getAttribute('[data-testid="tree"]', "aria-activedescendant"), await page.$eval('[data-testid="tree"] .row.selected', (row) => row.id));
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /round 0/.test(document.querySelector('[data-testid="details"] h3').textContent));
  // Left goes to the parent; left again folds it; right opens it again.
  await page.keyboard.press("ArrowLeft");
  await selected("chatty");
  await page.keyboard.press("ArrowLeft");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="tree"] [data-span-id]').length === 1);
  assert.equal(await page.getAttribute('[data-testid="tree"] .row.selected', "aria-expanded"), "false");
  await page.keyboard.press("ArrowRight");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="tree"] [data-span-id]').length === 4);
  await page.keyboard.press("ArrowRight");
  await selected("round 0");
  await page.keyboard.press("End");
  await selected("round 2");
  // Under a filter, a span held open by a match cannot fold: left goes to its parent.
  await page.fill('[data-testid="tree-filter"]', "round 1");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="tree"] [data-span-id]').length === 2);
  await page.focus('[data-testid="tree"]');
  await page.keyboard.press("End");
  await selected("round 1");
  await page.keyboard.press("ArrowLeft");
  await selected("chatty");
  await page.fill('[data-testid="tree-filter"]', "");
  await page.focus('[data-testid="tree"]');
  // `/` anywhere but in a field puts the cursor in the view's filter.
  await page.keyboard.press("/");
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), "tree-filter");
  // Every field of the run pane and the lists has a label a screen reader reads.
  const unlabelled = await page.$$eval("input, select, textarea", (fields) =>
    fields.filter((f) => f.offsetParent !== null && !f.labels?.length && !f.getAttribute("aria-label")).map((f) => f.id || f.name),
  );
  assert.deepEqual(unlabelled, []);
  await closePage(page);
});

test("dark mode follows the system, has a toggle that is kept, and darkens Monaco too; a screenshot of each view in each theme", async () => {
  const page = await openPage("#/", BASE, { colorScheme: "dark" });
  await page.waitForSelector('[data-flow="service_agent"]');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(await background(), "rgb(13, 17, 23)");
  for (const theme of ["dark", "light"]) {
    if (theme === "light") {
      await page.click('[data-testid="theme-toggle"]');
      assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "light");
      assert.equal(await background(), "rgb(250, 250, 250)");
      // Every colour the light theme names is a colour (none left undefined).
      const unset = await page.evaluate(() =>
        ["--hover", "--selected", "--lane", "--code-bg", "--mark"].filter((name) => !/^#[0-9a-f]{6}$/.test(getComputedStyle(document.documentElement).getPropertyValue(name).trim())),
      );
      assert.deepEqual(unset, []);
    }
    for (const [view, route, ready] of [
      ["library", "#/", '[data-flow="service_agent"]'],
      ["runs", "#/runs", "#runs-rows tr"],
      ["services", "#/services", '[data-testid="service-kv"]'],
      ["editor", "#/flows/service_agent", '[data-testid="editor"][aria-busy="false"]'],
    ]) {
      await page.goto(`${BASE}/${route}`);
      await page.waitForSelector(ready);
      if (view === "editor") {
        const monacoTheme = await page.evaluate(() => getComputedStyle(document.querySelector(".monaco-editor-background")).backgroundColor);
        assert.equal(monacoTheme, theme === "dark" ? "rgb(30, 30, 30)" : "rgb(255, 255, 254)");
      }
      await page.screenshot({ path: `${SHOTS}/${view}-${theme}.png` });
    }
  }
  // The choice is kept over the system's, after a reload.
  await page.reload();
  await page.waitForSelector('[data-testid="theme-toggle"]');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "light");
  await closePage(page);
});

test("on a narrow screen the editor and the tree stack", async () => {
  const page = await openPage("#/flows/service_agent", BASE, { viewport: { width: 760, height: 900 } });
  await page.waitForSelector('[data-testid="editor"][aria-busy="false"]');
  const editor = await page.$eval(".editor-pane", (e) => e.getBoundingClientRect().toJSON());
  const tree = await page.$eval(".tree-pane", (e) => e.getBoundingClientRect().toJSON());
  assert.ok(tree.top >= editor.bottom - 1, `the tree is below the editor: ${JSON.stringify({ editor, tree })}`);
  assert.ok(editor.width > 700 && tree.width > 700, "each takes the screen's width");
  await page.screenshot({ path: `${SHOTS}/narrow.png`, fullPage: true });
  await closePage(page);
});

test("quotas from the run form: within the server's maxima, and a run held to them", async () => {
  const page = await openPage("#/new");
  await writeInEditor(page, LOGGING_FLOW.replace("time.sleep(0.05)", "time.sleep(5)"));
  await page.click('[data-testid="quota-form"] summary');
  // The server's maxima bound the fields; more than that is refused on the page.
  assert.equal(await page.getAttribute('[data-testid="quota-wall_time"]', "max"), "120");
  await page.fill('[data-testid="quota-wall_time"]', "500");
  await page.fill('[data-testid="input-json"]', '{"n": 3}');
  await page.click('[data-testid="run"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="editor-message"]').textContent.includes("wall time"));
  assert.equal(await page.textContent('[data-testid="editor-message"]'), "the wall time quota can be from 0.001 to 120 s on this server; 500 is not");
  await page.fill('[data-testid="quota-wall_time"]', "1");
  await page.click('[data-testid="run"]');
  await page.waitForSelector('[data-testid="run-title"][data-status="timed_out"]', { timeout: 20_000 });
  const runId = await page.evaluate(() => location.hash.split("/")[2]);
  const { body } = await api(`/api/runs/${runId}`);
  assert.equal(body.quotas.wall_time_ms, 1000);
  await closePage(page);
});

test("completion inserts a method's parameters as a snippet, and `s.` on a step offers set", async () => {
  const page = await openPage("#/new");
  await writeInEditor(page, 'from hero_logic import flow\n\n\n@flow(name="snip")\ndef snip():\n    with flow.step("a") as s:\n        ');
  await page.click(".monaco-editor .view-lines");
  await page.keyboard.press("Control+End");
  await page.keyboard.type("s.");
  await page.waitForSelector(".suggest-widget.visible");
  const offered = await page.$$eval(".suggest-widget .monaco-list-row", (rows) => rows.map((r) => r.getAttribute("aria-label")));
  assert.ok(offered.some((label) => label.startsWith("set")), `set in ${offered}`);
  await page.keyboard.press("Escape");
  await page.keyboard.press("Enter");
  await page.keyboard.type("flow.ste");
  await page.waitForSelector(".suggest-widget.visible");
  await page.keyboard.press("Enter");
  // The parameter is a tab stop, selected: typing replaces it.
  await page.keyboard.type("label");
  const text = await page.evaluate(() => window.monaco.editor.getEditors()[0].getValue());
  assert.ok(text.endsWith("flow.step(label)"), text);
  await closePage(page);
});

test("a span inside a subflow of another stored flow shows that flow's source, read-only, at its line, with a way back", async () => {
  for (const text of [CALLEE, CALLER]) {
    const saved = await api("/api/flows", { method: "POST", body: text, headers: { "Content-Type": "text/plain" } });
    assert.ok(saved.status < 300, JSON.stringify(saved));
  }
  const page = await openPage("#/flows/caller_of_sub");
  await page.waitForSelector('[data-testid="editor"][aria-busy="false"]');
  await page.click('[data-testid="run"]');
  await page.waitForSelector('[data-testid="run-title"][data-status="ok"]', { timeout: 20_000 });
  await page.click('[data-testid="tree"] [data-span-id] >> text=inside callee');
  await page.waitForSelector('[data-testid="source-banner"]:not([hidden])');
  assert.match(await page.textContent('[data-testid="source-banner"]'), /greet_sub v1/);
  const shown = await page.evaluate(() => ({
    text: window.monaco.editor.getEditors()[0].getValue(),
    readOnly: window.monaco.editor.getEditors()[0].getOption(window.monaco.editor.EditorOption.readOnly),
  }));
  assert.equal(shown.text, CALLEE);
  assert.equal(shown.readOnly, true);
  await page.waitForFunction((line) => document.querySelector(".monaco-editor .highlight-line-number")?.textContent.trim() === String(line), CALLEE_STEP_LINE);
  await page.screenshot({ path: `${SHOTS}/subflow-source.png` });
  // The subflow span itself is a line of the caller: its own source is back.
  await page.click('[data-testid="tree"] [data-span-id][data-status="ok"] >> text=greet_sub');
  await page.waitForSelector('[data-testid="source-banner"]', { state: "hidden" });
  await page.click('[data-testid="tree"] [data-span-id] >> text=inside callee');
  await page.waitForSelector('[data-testid="source-banner"]:not([hidden])');
  await page.click('[data-testid="source-back"]');
  await page.waitForSelector('[data-testid="source-banner"]', { state: "hidden" });
  // Running again puts the user's own source back at once, whatever was shown.
  await page.click('[data-testid="tree"] [data-span-id] >> text=inside callee');
  await page.waitForSelector('[data-testid="source-banner"]:not([hidden])');
  await page.click('[data-testid="run"]');
  await page.waitForSelector('[data-testid="source-banner"]', { state: "hidden" });
  const back = await page.evaluate(() => ({
    text: window.monaco.editor.getEditors()[0].getValue(),
    readOnly: window.monaco.editor.getEditors()[0].getOption(window.monaco.editor.EditorOption.readOnly),
  }));
  assert.deepEqual(back, { text: CALLER, readOnly: false });
  await closePage(page);
});

test("a 20,000-span run streaming live: the tree keeps up, and its frame times are measured", async () => {
  const page = await openPage("#/new");
  await writeInEditor(page, LIVE_MANY);
  await page.fill('[data-testid="input-json"]', '{"groups": 200}');
  await page.click('[data-testid="quota-form"] summary');
  await page.fill('[data-testid="quota-spans"]', "20201");
  await page.fill('[data-testid="quota-cpu_time"]', "60");
  // Frames are timed from the click on Run to the run's end.
  const measuring = page.evaluate(async () => {
    const times = [];
    const longTasks = [];
    new PerformanceObserver((list) => list.getEntries().forEach((entry) => longTasks.push(entry.duration))).observe({ type: "longtask" });
    let last = performance.now();
    while (!document.querySelector('[data-testid="run-title"][data-status]')) {
      await new Promise((resolve) => requestAnimationFrame(resolve));
      const now = performance.now();
      times.push(now - last);
      last = now;
    }
    times.sort((a, b) => a - b);
    const at = (q) => +times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(1);
    return { frames: times.length, p50: at(0.5), p95: at(0.95), max: at(1), long_tasks: longTasks.length, longest_task_ms: Math.max(0, ...longTasks) };
  });
  await page.click('[data-testid="run"]');
  const frames = await measuring;
  assert.equal(await page.getAttribute('[data-testid="run-title"]', "data-status"), "ok");
  await page.waitForFunction(() => document.querySelector(".tree-spacer").offsetHeight === 20_201 * 22);
  const drawn = await page.$$eval('[data-testid="tree"] [data-span-id]', (rows) => rows.length);
  assert.ok(drawn > 10 && drawn < 200, `only the visible rows are in the DOM (${drawn})`);
  // Followed to the end: the last leaf is in view.
  assert.ok(await page.$('[data-testid="tree"] [data-span-id] >> text="leaf 19999"'), "the newest rows are shown");
  await page.screenshot({ path: `${SHOTS}/big-run-live.png` });
  console.log(`UI-FIGURES ${JSON.stringify({ live_spans: 20_201, live_frame_ms: frames })}`);
  await closePage(page);
});

test("a run followed while it streams in bulk keeps its rows as tree items under the painted text; a click on one selects it and stops following", async () => {
  const page = await openPage("#/runs");
  const runId = await page.evaluate(async (source) => {
    const body = JSON.stringify({ source, input: { groups: 200 }, quotas: { spans: 20_201, cpu_time_ms: 60_000 } });
    const response = await fetch("/api/runs", { method: "POST", headers: { "Content-Type": "application/json" }, body });
    return (await response.json()).run_id;
  }, LIVE_MANY);
  await page.evaluate((id) => (location.hash = `#/runs/${id}`), runId);
  // While it pours in, the rows' text and bars are on the canvas, and the
  // rows are still there for assistive technology, the keys and the pointer.
  await page.waitForSelector('[data-testid="tree"].painted');
  const items = await page.$$eval('[data-testid="tree"] [role="treeitem"]', (rows) => rows.map((row) => row.getAttribute("aria-label")));
  assert.ok(items.length > 5, `rows in view are tree items (${items.length})`);
  assert.ok(items.every((label) => /^(leaf|group) \d+, (ok|running)$/.test(label)), `each row is labelled: ${items.slice(0, 3)}`);
  await page.screenshot({ path: `${SHOTS}/big-run-painted.png` });
  const box = await page.$eval('[data-testid="tree"]', (tree) => tree.getBoundingClientRect().toJSON());
  await page.mouse.click(box.x + box.width / 3, box.y + box.height / 2);
  // The click selected that row and stopped following: the rows are elements again.
  await page.waitForSelector('[data-testid="tree"]:not(.painted) .row.selected .name');
  assert.equal(await page.isChecked('[data-testid="follow"]'), false);
  const name = await page.$eval('[data-testid="tree"] .row.selected .name', (cell) => cell.textContent);
  assert.match(name, /^(leaf|group) \d+$/);
  assert.match(await page.textContent('[data-testid="details"]'), new RegExp(name));
  await page.waitForSelector('[data-testid="run-title"][data-status="ok"]', { timeout: 30_000 });
  await closePage(page);
});
