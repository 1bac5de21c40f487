// What every browser test file shares: Chromium (Debian's, headless), a
// fresh page that records its console errors, and typing into Monaco as a
// user does. The server is tests/integration/ui.rs's, named by the
// environment (see ui.test.mjs's header).

import { after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

export const BASE = process.env.HERO_LOGIC_URL;
export const SHOTS = process.env.HERO_LOGIC_SCREENSHOTS;
assert.ok(BASE, "HERO_LOGIC_URL names the server");
mkdirSync(SHOTS, { recursive: true });

let browser;

before(async () => {
  const options = {
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  };
  // Chromium now and then dies while starting up in a container; that is the
  // browser's start, not the page under test, so try it again.
  for (let attempt = 1; ; attempt++) {
    try {
      browser = await chromium.launch(options);
      return;
    } catch (error) {
      if (attempt === 3) throw error;
      console.error(`chromium did not start (attempt ${attempt}): ${String(error).split("\n")[0]}`);
    }
  }
});

after(async () => {
  await browser?.close();
});

/** A fresh page that records console errors and uncaught exceptions. */
export async function openPage(path, base = BASE, { viewport = { width: 1400, height: 900 }, colorScheme = "light" } = {}) {
  // The clipboard, to paste a flow into the editor as a user does.
  const context = await browser.newContext({ viewport, colorScheme, permissions: ["clipboard-read", "clipboard-write"] });
  const page = await context.newPage();
  page.errors = [];
  page.on("console", (message) => {
    if (message.type() === "error") page.errors.push(message.text());
  });
  page.on("pageerror", (error) => page.errors.push(String(error)));
  await page.goto(`${base}/${path}`);
  return page;
}

/** Close a page, checking it logged no errors but the `expected` ones (the
 * browser logs every 4xx answer the page asked for and then showed). */
export async function closePage(page, expected = []) {
  const unexpected = page.errors.filter((text) => !expected.some((pattern) => pattern.test(text)));
  assert.deepEqual(unexpected, [], "the page logged no errors");
  await page.context().close();
}

/** Replace what the editor holds with `source`, as a user would: select all,
 * paste. The page marks the editor busy until its own source is in, so the
 * paste is not overwritten by the template or the flow being opened. */
export async function writeInEditor(page, source) {
  await page.waitForSelector('[data-testid="editor"][aria-busy="false"]');
  await page.click(".monaco-editor .view-lines");
  await page.keyboard.press("Control+A");
  await page.evaluate((text) => navigator.clipboard.writeText(text), source);
  await page.keyboard.press("Control+V");
  // Monaco's own API reads back what the editor now holds.
  await page.waitForFunction((text) => window.monaco.editor.getEditors()[0].getValue() === text, source);
}

