// The run's input form under the editor: one field per input the flow
// declares, and a box for raw JSON that wins when it is not empty.

import { escapeHtml } from "./page.js";

/** A value of each input type, to show what a field or the raw JSON takes. */
const EXAMPLES = { string: "text", integer: 42, number: 1.5, boolean: true, object: {}, array: [], any: null };

/** The raw JSON box's placeholder: an input these declared inputs accept,
 * each input's default or an example of its type. */
export function exampleInput(inputs) {
  const example = {};
  for (const [name, spec] of Object.entries(inputs || {})) {
    example[name] = spec.default !== undefined && spec.default !== null ? spec.default : (EXAMPLES[spec.type] ?? null);
  }
  return JSON.stringify(example);
}

/** What a field holds as the input's value; a field of another type than
 * string must hold JSON of its type. Throws an error naming the field and
 * what it needs. */
export function fieldValue(name, type, text) {
  if (type === "string") return text;
  const needs = `"${name}" needs ${type === "any" ? "a JSON value" : `a${/^[aeiou]/.test(type) ? "n" : ""} ${type}`}, like ${JSON.stringify(EXAMPLES[type] ?? 1)}`;
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${needs}; "${text}" is not one`);
  }
  const fits = {
    integer: Number.isInteger(value),
    number: typeof value === "number",
    boolean: typeof value === "boolean",
    object: value !== null && typeof value === "object" && !Array.isArray(value),
    array: Array.isArray(value),
  }[type];
  if (fits === false) throw new Error(`${needs}; "${text}" is not one`);
  return value;
}

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
      <label style="flex: 1 1 100%">raw JSON input (used when not empty)<textarea name="__raw" data-testid="input-json" placeholder="${escapeHtml(exampleInput(this.inputs))}"></textarea></label>`;
    for (const field of this.fields()) {
      if (typed[field.name]) field.value = typed[field.name];
    }
  }

  /** Put `input` in the raw JSON box, which then wins over the fields. */
  setRaw(input) {
    this.form.elements.__raw.value = JSON.stringify(input, null, 2);
  }

  /** Do the fields follow these declared inputs already? */
  declares(inputs) {
    return JSON.stringify(inputs) === JSON.stringify(this.inputs);
  }

  /** The run's input: the raw JSON when given, else the fields. Throws an
   * error that says what is wrong: the raw JSON, or which field needs what. */
  read() {
    const raw = this.form.elements.__raw.value.trim();
    if (raw) {
      try {
        return JSON.parse(raw);
      } catch (error) {
        throw new Error(`the raw JSON input is not valid JSON: ${error.message}`);
      }
    }
    const input = {};
    for (const field of this.form.querySelectorAll("input[name]")) {
      if (field.value === "") continue;
      input[field.name] = fieldValue(field.name, field.dataset.type, field.value);
    }
    return input;
  }

  fields() {
    return [...this.form.querySelectorAll("input[name], textarea[name]")];
  }
}
