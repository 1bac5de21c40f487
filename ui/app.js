// The page's shell: reads the address (`#/…`), shows the one view it names and
// tells the view it left to stop its timers and streams. The views live in
// `views/`; each owns its state.

import { showIdentity } from "./identity.js";
import { byId, setStatus, showError } from "./page.js";
import { toggleTheme } from "./theme.js";
import { createEditorView } from "./views/editor.js";
import { createLibraryView } from "./views/library.js";
import { createRunsView } from "./views/runs.js";
import { createServicesView } from "./views/services.js";

const views = { library: createLibraryView(), runs: createRunsView(), services: createServicesView(), work: createEditorView() };
let current = null;

/** The view an address (`#/section/id?key=value`) names, and what it is to open. */
function match(hash) {
  const at = hash.indexOf("?");
  const path = at < 0 ? hash : hash.slice(0, at);
  const params = new URLSearchParams(at < 0 ? "" : hash.slice(at + 1));
  const [, section, id] = (decodeURIComponent(path.replace(/^#/, "")) || "/").split("/");
  if (section === "runs" && !id) return { view: views.runs, route: { params } };
  if (section === "runs") return { view: views.work, route: { runId: id } };
  if (section === "flows" && id) return { view: views.work, route: { flow: id } };
  if (section === "new") return { view: views.work, route: { newFlow: true } };
  if (section === "services") return { view: views.services };
  return { view: views.library };
}

async function route() {
  const { view, route } = match(location.hash);
  if (current && current !== view) current.leave();
  current = view;
  for (const name of Object.keys(views)) byId(`${name}-view`).hidden = name !== view.name;
  for (const link of document.querySelectorAll("[data-nav]")) link.classList.toggle("active", link.dataset.nav === view.name);
  setStatus("");
  try {
    await view.enter(route || {});
  } catch (error) {
    showError(error);
  }
}

/** `/` puts the cursor in the shown view's filter, unless the reader is typing. */
function focusFilter(event) {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest?.("input, textarea, select, [contenteditable], .monaco-editor, dialog")) return;
  const filter = document.querySelector(".view:not([hidden]) [data-filter]");
  if (!filter) return;
  event.preventDefault();
  filter.focus();
  filter.select();
}

window.addEventListener("hashchange", route);
window.addEventListener("keydown", focusFilter);
// An error no view caught is still the reader's to see, not only the console's.
window.addEventListener("unhandledrejection", (event) => showError(event.reason));
byId("theme-toggle").addEventListener("click", toggleTheme);
showIdentity();
route();
