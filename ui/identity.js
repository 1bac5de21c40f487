// Who the page acts as: the workspace and role `GET /api/whoami` names, shown
// in the header, and the roles held as classes on <body> (`may-runner`, ...),
// which hide what the role may not do (`[data-needs="developer"]` in
// style.css). Asked again whenever the page is given another token or key.

import { api } from "./api.js";
import { byId } from "./page.js";

const ROLES = ["viewer", "runner", "developer", "admin"];

/** The header's text for a whoami answer. */
export function describe(whoami) {
  const who = whoami.operator ? "operator" : whoami.role;
  return `${whoami.workspace} · ${who}`;
}

export async function showIdentity() {
  let whoami;
  try {
    whoami = await api("/api/whoami");
  } catch {
    return;
  }
  const held = new Set((whoami.roles || []).filter((role) => role.held).map((role) => role.role));
  for (const role of ROLES) document.body.classList.toggle(`may-${role}`, held.has(role));
  document.body.classList.add("identified");
  const line = byId("identity");
  line.textContent = describe(whoami);
  line.title = whoami.operator ? "the operator: every role, in this workspace" : `a ${whoami.role}'s key in ${whoami.workspace}`;
  line.hidden = false;
}

window.addEventListener("hero-credential", showIdentity);
