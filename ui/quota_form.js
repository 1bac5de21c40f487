// The run form's quotas: one field per quota the server has (`GET
// /api/quotas`), empty for the server's default, bounded by its maximum.
// Only what the reader set goes with the run; the server caps it anyway.

import { escapeHtml } from "./page.js";

/** How a quota's unit reads in the form, and what one of it is in the API's unit. */
const UNITS = { seconds: ["s", 1000], mebibytes: ["MiB", 1048576], count: ["", 1] };

/** A quota's field value (as typed) in the API's unit; throws naming the quota and its bounds. */
export function quotaValue(quota, text) {
  const [unit, scale] = UNITS[quota.flag_unit] ?? UNITS.count;
  const value = Number(text);
  const most = quota.max / scale;
  const least = quota.min / scale;
  const bounds = `from ${+least.toFixed(3)} to ${+most.toFixed(3)}${unit ? ` ${unit}` : ""}`;
  if (text.trim() === "" || !Number.isFinite(value)) throw new Error(`the ${quota.label} quota needs a number ${bounds}; "${text}" is not one`);
  if (value < least || value > most) throw new Error(`the ${quota.label} quota can be ${bounds} on this server; ${value} is not`);
  const raw = value * scale;
  return quota.flag_unit === "count" ? Math.floor(raw) : Math.round(raw);
}

export class QuotaForm {
  /** @param {HTMLElement} fields where the fields are drawn */
  constructor(fields) {
    this.fields = fields;
    this.table = [];
  }

  /** Draw a field per quota of `table` (`GET /api/quotas`). */
  setQuotas(table) {
    this.table = table;
    this.fields.innerHTML = table
      .map((quota) => {
        const [unit, scale] = UNITS[quota.flag_unit] ?? UNITS.count;
        return `<label title="${escapeHtml(quota.help)}">${escapeHtml(quota.label)}${unit ? ` <small>${unit}</small>` : ""}
          <input type="number" step="any" min="${quota.min / scale}" max="${quota.max / scale}" name="${escapeHtml(quota.field)}"
            placeholder="${+(quota.default / scale).toFixed(3)}" data-testid="quota-${escapeHtml(quota.name)}"></label>`;
      })
      .join("");
  }

  /** The quotas the reader set, in the API's units, or undefined for none; throws on a bad one. */
  read() {
    const asked = {};
    for (const quota of this.table) {
      const input = this.fields.querySelector(`input[name="${quota.field}"]`);
      if (input && input.value.trim() !== "") asked[quota.field] = quotaValue(quota, input.value);
    }
    return Object.keys(asked).length ? asked : undefined;
  }
}
