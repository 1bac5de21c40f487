// The page: a router over three views (library, runs, the editor beside the
// live span tree), wired to the API. Layout logic lives in tree.js, drawing
// in treeview.js, the editor in editor.js.

import { api, followRun, followRunList } from "./api.js";
import { Editor } from "./editor.js";
import { addSpans, applyEvent, createModel, formatDuration } from "./tree.js";
import { TreeView } from "./treeview.js";

const $ = (id) => document.getElementById(id);

const NEW_FLOW = `from hero_logic import flow


@flow(name="hello", inputs={"who": "string"}, description="Say hello, in two steps.")
def hello(who):
    with flow.step("build", who=who) as s:
        text = f"hello {who}"
        s.set(length=len(text))
    with flow.step("shout"):
        print("shouting")
        return {"greeting": text.upper()}
`;

const state = {
  editor: null,
  editorReady: null,
  flow: null, // the stored flow in the editor: {name, version, info, source}
  inputs: {}, // declared inputs of the flow in the editor
  runId: null,
  stopFollowing: null,
  stopRunList: null,
};

const tree = new TreeView($("tree"), showDetails);

function setStatus(text) {
  $("status").textContent = text;
}

function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function badge(status) {
  return status ? `<span class="badge b-${escapeHtml(status)}" data-status="${escapeHtml(status)}">${escapeHtml(status)}</span>` : "";
}

// ---- routing ---------------------------------------------------------------

function showView(name) {
  for (const view of ["library", "runs", "work"]) $(`${view}-view`).hidden = view !== name;
  for (const link of document.querySelectorAll("[data-nav]")) link.classList.toggle("active", link.dataset.nav === name);
}

async function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  const [, section, id] = hash.split("/");
  if (state.stopRunList && section !== "runs") {
    state.stopRunList();
    state.stopRunList = null;
  }
  try {
    if (!section) return showLibrary();
    if (section === "runs" && !id) return showRuns();
    if (section === "runs") return openRun(id);
    if (section === "flows" && id) return openFlow(id);
    if (section === "new") return openNew();
    showLibrary();
  } catch (error) {
    setStatus(error.message);
  }
}

// ---- library ---------------------------------------------------------------

let searchTimer = null;

async function showLibrary() {
  showView("library");
  await renderLibrary($("library-search").value);
}

async function renderLibrary(query) {
  const rows = $("library-rows");
  if (query.trim()) {
    let hits;
    try {
      hits = (await api(`/api/flows/search?q=${encodeURIComponent(query)}&limit=50`)).hits;
    } catch (error) {
      rows.innerHTML = `<tr><td colspan="4">${escapeHtml(error.message)}</td></tr>`;
      return;
    }
    rows.innerHTML = hits
      .map(
        (hit) => `<tr data-flow="${escapeHtml(hit.name)}"><td><a href="#/flows/${encodeURIComponent(hit.name)}">${escapeHtml(hit.name)}</a></td>
        <td>${escapeHtml(hit.description)}<div class="snippet">${escapeHtml(hit.snippet).replace(/\[/g, "<mark>").replace(/\]/g, "</mark>")}</div></td>
        <td>v${hit.version}</td><td>score ${hit.score.toFixed(2)}</td></tr>`,
      )
      .join("") || `<tr><td colspan="4">No flow matches.</td></tr>`;
    return;
  }
  const { flows } = await api("/api/flows");
  rows.innerHTML = flows
    .map(
      (flow) => `<tr data-flow="${escapeHtml(flow.name)}"><td><a href="#/flows/${encodeURIComponent(flow.name)}">${escapeHtml(flow.name)}</a></td>
      <td>${escapeHtml(flow.description)}</td><td>v${flow.version}</td><td>${badge(flow.last_run_status)}</td></tr>`,
    )
    .join("") || `<tr><td colspan="4">The library is empty: start with “New flow”.</td></tr>`;
}

$("library-search").addEventListener("input", (event) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => renderLibrary(event.target.value), 150);
});
$("library-rows").addEventListener("click", (event) => {
  const row = event.target.closest("tr[data-flow]");
  if (row && event.target.tagName !== "A") location.hash = `#/flows/${encodeURIComponent(row.dataset.flow)}`;
});

// ---- runs list -------------------------------------------------------------

async function showRuns() {
  showView("runs");
  await renderRuns();
  if (!state.stopRunList) state.stopRunList = followRunList(() => renderRunsSoon());
}

let runsTimer = null;
function renderRunsSoon() {
  clearTimeout(runsTimer);
  runsTimer = setTimeout(renderRuns, 100);
}

async function renderRuns() {
  const params = new URLSearchParams({ limit: "100" });
  if ($("runs-flow").value.trim()) params.set("flow", $("runs-flow").value.trim());
  if ($("runs-status").value) params.set("status", $("runs-status").value);
  const { runs } = await api(`/api/runs?${params}`);
  $("runs-rows").innerHTML = runs
    .map((run) => {
      const duration = run.end_us && run.start_us ? formatDuration(run.end_us - run.start_us) : "";
      const started = run.start_us ? new Date(run.start_us / 1000).toLocaleTimeString() : "";
      return `<tr data-run="${escapeHtml(run.run_id)}"><td><a href="#/runs/${encodeURIComponent(run.run_id)}">${escapeHtml(run.run_id.slice(-12))}</a></td>
        <td>${escapeHtml(run.flow)}</td><td>${badge(run.status)}</td><td>${started}</td><td>${duration}</td></tr>`;
    })
    .join("") || `<tr><td colspan="5">No runs yet.</td></tr>`;
}

$("runs-flow").addEventListener("input", renderRunsSoon);
$("runs-status").addEventListener("change", renderRuns);
$("runs-rows").addEventListener("click", (event) => {
  const row = event.target.closest("tr[data-run]");
  if (row && event.target.tagName !== "A") location.hash = `#/runs/${encodeURIComponent(row.dataset.run)}`;
});

// ---- editor and runs -------------------------------------------------------

async function ensureEditor() {
  if (!state.editorReady) {
    state.editorReady = Editor.create($("editor"), { run: () => runFromEditor(), save: () => saveFromEditor() }).then((editor) => {
      state.editor = editor;
      editor.onChange(checkSoon);
      return editor;
    });
  }
  return state.editorReady;
}

function setMessage(text, ok = false) {
  $("editor-message").textContent = text;
  $("editor-message").classList.toggle("ok", ok);
}

async function openNew() {
  showView("work");
  const editor = await ensureEditor();
  state.flow = null;
  editor.source = NEW_FLOW;
  $("flow-title").textContent = "new flow";
  setInputs({ who: { type: "string", required: true } });
  setMessage("");
}

async function openFlow(name) {
  showView("work");
  const [editor, flow] = await Promise.all([ensureEditor(), api(`/api/flows/${encodeURIComponent(name)}`)]);
  state.flow = flow;
  editor.source = flow.source;
  $("flow-title").textContent = `${flow.name} v${flow.version}`;
  setInputs(flow.info.inputs);
  setMessage("");
}

let checkTimer = null;

/** Check the source a moment after the typing stops: errors marked on their
 * line, and the input form following the flow's declared inputs. */
function checkSoon() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(checkSource, 500);
}

async function checkSource() {
  const editor = state.editor;
  const source = editor.source;
  const checked = await api("/api/check", { text: source }).catch(() => null);
  if (!checked || editor.source !== source) return;
  if (!checked.valid) {
    editor.markError(checked.error.line, checked.error.message);
    setMessage(checked.error.message);
    return;
  }
  editor.clearMarkers();
  setMessage("");
  const flow = checked.flows.find((f) => f.name === state.flow?.name) || checked.flows[0];
  if (JSON.stringify(flow.inputs) !== JSON.stringify(state.inputs)) setInputs(flow.inputs);
  $("input-form").dataset.flow = flow.name;
  state.checkedSource = source;
}

/** The input form, one field per declared input, and raw JSON. Values
 * already typed stay when the inputs change. */
function setInputs(inputs) {
  const typed = Object.fromEntries([...$("input-form").querySelectorAll("input[name], textarea[name]")].map((f) => [f.name, f.value]));
  state.inputs = inputs || {};
  const fields = Object.entries(state.inputs).map(([name, spec]) => {
    const value = spec.default !== undefined && spec.default !== null ? JSON.stringify(spec.default) : "";
    const shown = spec.type === "string" && value ? JSON.parse(value) : value;
    return `<label title="${escapeHtml(spec.description || "")}">${escapeHtml(name)}${spec.required ? "" : "?"} <small>${escapeHtml(spec.type)}</small>
      <input name="${escapeHtml(name)}" data-type="${escapeHtml(spec.type)}" data-testid="input-${escapeHtml(name)}" value="${escapeHtml(shown)}"></label>`;
  });
  $("input-form").innerHTML = `${fields.join("")}
    <label style="flex: 1 1 100%">raw JSON input (used when not empty)<textarea name="__raw" data-testid="input-json" placeholder='{"who": "ada"}'></textarea></label>`;
  for (const field of $("input-form").querySelectorAll("input[name], textarea[name]")) {
    if (typed[field.name]) field.value = typed[field.name];
  }
}

/** The run's input from the form: raw JSON when given, else the fields. */
function readInput() {
  const raw = $("input-form").elements.__raw.value.trim();
  if (raw) return JSON.parse(raw);
  const input = {};
  for (const field of $("input-form").querySelectorAll("input[name]")) {
    if (field.value === "") continue;
    input[field.name] = field.dataset.type === "string" ? field.value : JSON.parse(field.value);
  }
  return input;
}

async function saveFromEditor() {
  const editor = await ensureEditor();
  try {
    const saved = await api("/api/flows", { text: editor.source });
    editor.clearMarkers();
    const first = saved.flows[0];
    setMessage(`saved ${saved.flows.map((f) => `${f.name} v${f.version}`).join(", ")}`, true);
    state.flow = await api(`/api/flows/${encodeURIComponent(first.name)}`);
    $("flow-title").textContent = `${state.flow.name} v${state.flow.version}`;
    setInputs(state.flow.info.inputs);
    if (location.hash !== `#/flows/${first.name}`) history.replaceState(null, "", `#/flows/${encodeURIComponent(first.name)}`);
  } catch (error) {
    showEditorError(error);
  }
}

function showEditorError(error) {
  setMessage(error.message);
  const line = error.body?.error?.line;
  if (line) state.editor.markError(line, error.message, true);
}

async function runFromEditor() {
  const editor = await ensureEditor();
  let input;
  try {
    input = readInput();
  } catch (error) {
    setMessage(`the input is not valid JSON: ${error.message}`);
    return;
  }
  const unchanged = state.flow && editor.source === state.flow.source;
  if (!unchanged && state.checkedSource !== editor.source) {
    // Run pressed before the check of what was just typed came back: which
    // flow of the module runs (the first) is the check's to say.
    clearTimeout(checkTimer);
    await checkSource();
  }
  const body = unchanged ? { flow: state.flow.name, input } : { source: editor.source, input };
  const checkedFlow = $("input-form").dataset.flow;
  if (!unchanged && (checkedFlow || state.flow)) body.flow = checkedFlow || state.flow.name;
  try {
    editor.clearMarkers();
    const { run_id } = await api("/api/runs", { method: "POST", body });
    setMessage("");
    history.replaceState(null, "", `#/runs/${encodeURIComponent(run_id)}`);
    watchRun(run_id);
  } catch (error) {
    showEditorError(error);
  }
}

$("run").addEventListener("click", runFromEditor);
$("save").addEventListener("click", saveFromEditor);
$("input-form").addEventListener("submit", (event) => {
  event.preventDefault();
  runFromEditor();
});

/** Open a run from a deep link: its source in the editor, its tree. */
async function openRun(runId) {
  showView("work");
  const [editor, run, source] = await Promise.all([
    ensureEditor(),
    api(`/api/runs/${encodeURIComponent(runId)}`),
    api(`/api/runs/${encodeURIComponent(runId)}/source`),
  ]);
  if (source.source !== null && editor.source !== source.source) editor.source = source.source;
  state.flow = run.version ? await api(`/api/flows/${encodeURIComponent(run.flow)}?version=${run.version}`).catch(() => null) : null;
  $("flow-title").textContent = run.version ? `${run.flow} v${run.version}` : `${run.flow} (unsaved source)`;
  if (state.flow) setInputs(state.flow.info.inputs);
  watchRun(runId, run);
}

/**
 * Show a run's tree: its history, then live events until it finishes. A
 * finished run's spans and logs come in two requests rather than as a replay
 * of every event, which is much faster for a big run.
 */
async function watchRun(runId, run = null) {
  state.stopFollowing?.();
  state.stopFollowing = null;
  state.runId = runId;
  const model = createModel();
  tree.reset(model);
  showDetails(null);
  $("run-title").textContent = `run …${runId.slice(-12)}`;
  delete $("run-title").dataset.status;
  $("cancel").hidden = false;
  if (run && run.end_us) {
    const [{ spans }, { logs }] = await Promise.all([
      api(`/api/runs/${encodeURIComponent(runId)}/spans`),
      api(`/api/runs/${encodeURIComponent(runId)}/logs`),
    ]);
    if (state.runId !== runId) return;
    addSpans(model, spans);
    for (const line of logs) applyEvent(model, { type: "log", ...line });
    applyEvent(model, { type: "run_finished", ...run });
    tree.schedule();
    runFinished(model, run);
    return;
  }
  state.stopFollowing = followRun(runId, (event) => {
    if (state.runId !== runId) return;
    if (applyEvent(model, event)) tree.schedule();
    if (event.type === "run_finished") runFinished(model, event);
  });
}

function runFinished(model, run) {
  $("cancel").hidden = true;
  $("run-title").innerHTML = `run …${escapeHtml(run.run_id.slice(-12))} ${badge(run.status)}`;
  $("run-title").dataset.status = run.status;
  setStatus(`${run.flow}: ${run.status}`);
  const root = model.spans.get(model.roots[0]);
  if (root && tree.selected === null) showDetails(root);
}

$("cancel").addEventListener("click", async () => {
  if (state.runId) await api(`/api/runs/${encodeURIComponent(state.runId)}/cancel`, { method: "POST" }).catch((e) => setStatus(e.message));
});
$("tree-filter").addEventListener("input", (event) => tree.setFilter(event.target.value));
$("depth").addEventListener("input", (event) => tree.collapseBelow(event.target.value === "" ? null : Number(event.target.value)));
$("follow").addEventListener("change", (event) => {
  tree.follow = event.target.checked;
});

// ---- span details ----------------------------------------------------------

function showDetails(span) {
  const details = $("details");
  if (!span) {
    details.innerHTML = "";
    return;
  }
  const parts = [`<h3><span class="s-${escapeHtml(span.status)}">${escapeHtml(span.status)}</span> ${escapeHtml(span.kind)} <code>${escapeHtml(span.name)}</code>
    ${span.end_us ? formatDuration(span.end_us - span.start_us) : "running"}${span.line ? ` · line ${span.line}` : ""}</h3>`];
  if (span.error) {
    parts.push(`<div data-testid="span-error"><strong>${escapeHtml(span.error.type)}</strong>: ${escapeHtml(span.error.message)}`);
    if (span.error.traceback) parts.push(`<pre data-testid="traceback">${escapeHtml(span.error.traceback)}</pre>`);
    parts.push("</div>");
  }
  if (span.parent_id === null && state.runId) parts.push('<div data-testid="usage"></div>');
  if (Object.keys(span.attrs || {}).length) parts.push(`<pre data-testid="attrs">${escapeHtml(JSON.stringify(span.attrs, null, 2))}</pre>`);
  const logs = tree.model.logs.get(span.span_id) || [];
  if (logs.length) parts.push(`<pre data-testid="logs">${logs.map((l) => `${escapeHtml(l.stream)}: ${escapeHtml(l.text)}`).join("\n")}</pre>`);
  details.innerHTML = parts.join("");
  if (span.parent_id === null && state.runId) showUsage(state.runId);
  // A failure points at the line that raised; any other span at its own.
  const line = span.error?.line || span.line;
  if (line && state.editor) state.editor.revealLine(line);
}

/** The server's quota table (`GET /api/quotas`), asked once. */
let quotaTable = null;
function quotas() {
  quotaTable ??= api("/api/quotas").catch((error) => {
    quotaTable = null;
    throw error;
  });
  return quotaTable;
}

/** The root span's details: the run's usage against its quotas. */
async function showUsage(runId) {
  // A finished run's usage came with its run_finished event; ask only while it runs.
  const finished = tree.model.run?.run_id === runId ? tree.model.run : null;
  const run = finished || (await api(`/api/runs/${encodeURIComponent(runId)}`).catch(() => null));
  const table = await quotas().catch(() => []);
  const box = document.querySelector('[data-testid="usage"]');
  if (!run || !box || !run.usage) return;
  const rows = table
    .filter((quota) => quota.usage)
    .map((quota) => {
      const mebibytes = quota.flag_unit === "mebibytes";
      const scale = mebibytes ? 1048576 : 1;
      const unit = mebibytes ? "MiB" : quota.flag_unit === "seconds" ? "ms" : "";
      return [quota.label, (run.usage[quota.usage] ?? 0) / scale, run.quotas[quota.field] / scale, unit];
    });
  box.innerHTML = `<table>${rows
    .map(([name, used, limit, unit]) => `<tr><td>${name}</td><td>${+used.toFixed(2)} / ${+limit.toFixed(2)} ${unit}</td></tr>`)
    .join("")}</table>`;
}

window.addEventListener("hashchange", route);
route();
