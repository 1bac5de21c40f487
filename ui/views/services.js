// The Services view (`#/services`): the services flows can call, each with
// its URL, its methods and their docs from its OpenRPC document, and its
// health (a `rpc.discover` round trip, asked for when the view opens and on
// "Check"); a form to register one and a button to remove one.

import { api } from "../api.js";
import { byId, escapeHtml, showError } from "../page.js";

export function createServicesView() {
  const list = byId("services-list");
  const form = byId("service-form");
  const message = byId("service-message");
  const state = { shown: false };

  async function render() {
    const { services } = await api("/api/services");
    if (!state.shown) return;
    const registered = services.filter((service) => !service.builtin);
    const empty = registered.length
      ? ""
      : `<p class="empty-note" data-testid="services-empty">No service registered yet. Register one above with its name and JSON-RPC URL
         (it must answer <code>rpc.discover</code>), or from a terminal: <code>hero_logic services add NAME URL</code>.
         The built-in services below are always there.</p>`;
    // The operator's own services first: the built-ins are always the same.
    list.innerHTML = empty + [...registered, ...services.filter((service) => service.builtin)].map(card).join("");
    for (const service of registered) checkHealth(service.name);
  }

  function card(service) {
    const name = escapeHtml(service.name);
    const methods = service.doc?.methods || [];
    return `<article class="service" data-service="${name}" data-testid="service-${name}">
      <header>
        <strong>${name}</strong>
        ${
          service.builtin
            ? '<span class="muted">built in: runs inside the server</span>'
            : `<code class="service-url">${escapeHtml(service.url)}</code>
               <span class="health" data-testid="health-${name}" aria-live="polite">checking…</span>
               <button type="button" data-check="${name}">Check</button>
               <button type="button" data-remove="${name}" data-testid="remove-${name}">Remove</button>`
        }
      </header>
      ${service.doc?.description ? `<p>${escapeHtml(service.doc.description)}</p>` : ""}
      <table class="methods"><tbody>${methods
        .map(
          (method) => `<tr><td><code>${escapeHtml(method.name)}(${method.params
            .map((param) => `${escapeHtml(param.name)}${param.required ? "" : "?"}`)
            .join(", ")})</code></td><td>${escapeHtml(method.summary || "")}${paramDocs(method)}</td></tr>`,
        )
        .join("")}</tbody></table>
    </article>`;
  }

  function paramDocs(method) {
    const documented = method.params.filter((param) => param.description);
    if (!documented.length) return "";
    return `<ul class="param-docs">${documented.map((param) => `<li><code>${escapeHtml(param.name)}</code>: ${escapeHtml(param.description)}</li>`).join("")}</ul>`;
  }

  async function checkHealth(name) {
    const cell = list.querySelector(`[data-service="${CSS.escape(name)}"] .health`);
    if (!cell) return;
    // Only the latest check of a service is shown, whichever answers last.
    const asked = (cell.asked = (cell.asked || 0) + 1);
    cell.textContent = "checking…";
    delete cell.dataset.health;
    let health;
    try {
      // A POST: it makes the server call the service.
      health = await api(`/api/services/${encodeURIComponent(name)}/health`, { method: "POST" });
    } catch (error) {
      health = { ok: false, error: error.message };
    }
    if (!cell.isConnected || asked !== cell.asked) return;
    cell.dataset.health = health.ok ? "ok" : "failing";
    cell.className = `health ${health.ok ? "s-ok" : "s-failed"}`;
    cell.textContent = health.ok ? `✓ answers (${health.ms.toFixed(1)} ms, ${health.methods} methods)` : `✗ ${health.error}`;
  }

  async function remove(name) {
    if (!confirm(`Remove the service ${name}? Flows that call it will get UnknownService.`)) return;
    try {
      await api(`/api/services/${encodeURIComponent(name)}`, { method: "DELETE" });
      message.textContent = `${name} removed`;
      message.classList.add("ok");
      await render();
    } catch (error) {
      showError(error);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: byId("service-name").value.trim(), url: byId("service-url").value.trim() };
    message.classList.remove("ok");
    message.textContent = "registering…";
    try {
      await api("/api/services", { body });
      message.textContent = `${body.name} registered`;
      message.classList.add("ok");
      form.reset();
      await render();
    } catch (error) {
      message.textContent = error.message;
    }
  });
  list.addEventListener("click", (event) => {
    const check = event.target.closest("[data-check]");
    if (check) checkHealth(check.dataset.check);
    const removing = event.target.closest("[data-remove]");
    if (removing) remove(removing.dataset.remove);
  });

  return {
    name: "services",
    async enter() {
      state.shown = true;
      message.textContent = "";
      await render();
    },
    leave() {
      state.shown = false;
    },
  };
}
