// The run's input form under the editor: one field per input the flow
// declares, and a box for raw JSON that wins when it is not empty.

import { escapeHtml } from "./page.js";

export class InputForm {
  /** @param {HTMLFormElement} form the element the fields are drawn in */
  constructor(form) {
    this.form = form;
    /** The declared inputs the fields were built from. */
    this.inputs = {};
  }

  /** Build the fields for `inputs` (`{name: {type, required, default, description}}`).
   * Values already typed stay when the inputs change. */
  setInputs(inputs) {
    const typed = Object.fromEntries(this.fields().map((f) => [f.name, f.value]));
    this.inputs = inputs || {};
    const fields = Object.entries(this.inputs).map(([name, spec]) => {
      const value = spec.default !== undefined && spec.default !== null ? JSON.stringify(spec.default) : "";
      const shown = spec.type === "string" && value ? JSON.parse(value) : value;
      return `<label title="${escapeHtml(spec.description || "")}">${escapeHtml(name)}${spec.required ? "" : "?"} <small>${escapeHtml(spec.type)}</small>
        <input name="${escapeHtml(name)}" data-type="${escapeHtml(spec.type)}" data-testid="input-${escapeHtml(name)}" value="${escapeHtml(shown)}"></label>`;
    });
    this.form.innerHTML = `${fields.join("")}
      <label style="flex: 1 1 100%">raw JSON input (used when not empty)<textarea name="__raw" data-testid="input-json" placeholder='{"who": "ada"}'></textarea></label>`;
    for (const field of this.fields()) {
      if (typed[field.name]) field.value = typed[field.name];
    }
  }

  /** Do the fields follow these declared inputs already? */
  declares(inputs) {
    return JSON.stringify(inputs) === JSON.stringify(this.inputs);
  }

  /** The run's input: the raw JSON when given, else the fields. Throws when
   * the JSON (or a non-string field) does not parse. */
  read() {
    const raw = this.form.elements.__raw.value.trim();
    if (raw) return JSON.parse(raw);
    const input = {};
    for (const field of this.form.querySelectorAll("input[name]")) {
      if (field.value === "") continue;
      input[field.name] = field.dataset.type === "string" ? field.value : JSON.parse(field.value);
    }
    return input;
  }

  fields() {
    return [...this.form.querySelectorAll("input[name], textarea[name]")];
  }
}
