// The server's `.pyi` stubs (`/api/stubs/hero_logic.pyi`) read into what the
// editor offers: the members of `flow`, `services` and each service, with
// signatures and docs, for completion and hover. Pure: no DOM, no Monaco.

/** Parse the stub text: classes with their members, and the module globals. */
export function parseStubs(text) {
  const classes = new Map();
  const globals = new Map();
  const lines = text.split("\n");
  let current = null;
  let last = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m;
    if ((m = /^class (\w+)/.exec(line))) {
      current = { name: m[1], doc: "", members: new Map() };
      classes.set(m[1], current);
      last = current;
      continue;
    }
    if ((m = /^(\w+): ([\w.]+)/.exec(line))) {
      globals.set(m[1], m[2]);
      current = null;
      continue;
    }
    if (/^\S/.test(line)) current = null;
    if (!current) continue;
    if ((m = /^ {4}def (\w+)\((.*)\)( -> .*)?:/.exec(line))) {
      // `request` is each method's deferred form for `services.gather`.
      if (m[1].startsWith("_") || m[1] === "request") {
        last = null;
        continue;
      }
      const params = m[2].replace(/^self,?\s*/, "").replace(/^\*,\s*/, "");
      const returns = (m[3] || "").replace(/^ -> /, "").replace(/:$/, "").replace(/"/g, "").trim();
      last = { name: m[1], kind: "method", signature: `${m[1]}(${params})${(m[3] || "").replace(/:$/, "")}`, params: m[2], returns, doc: "" };
      current.members.set(m[1], last);
    } else if ((m = /^ {4}(\w+): (.+)$/.exec(line))) {
      last = { name: m[1], kind: "property", signature: `${m[1]}: ${m[2]}`, type: m[2].trim(), doc: "" };
      current.members.set(m[1], last);
    } else if ((m = /^ {4}(\w+) = (\w+)$/.exec(line))) {
      last = { name: m[1], kind: "class", signature: m[1], type: m[2], doc: "" };
      current.members.set(m[1], last);
    } else if ((m = /^ {4,8}"""(.*)$/.exec(line)) && last) {
      // A docstring, on one line or several.
      let doc = m[1];
      while (!doc.includes('"""') && i + 1 < lines.length) doc += "\n" + lines[++i];
      last.doc = doc.replace(/"""\s*$/, "").trim();
    }
  }
  return { classes, globals };
}

/** The class an expression like `services.weather` has, or null; `locals`
 * maps names the source bound (`localTypes`) to their class. */
export function typeOf(stubs, path, locals = new Map()) {
  let type = locals.get(path[0]) ?? stubs.globals.get(path[0]);
  for (const part of path.slice(1)) {
    const member = type && stubs.classes.get(type)?.members.get(part);
    type = member?.type;
  }
  return type && stubs.classes.has(type) ? stubs.classes.get(type) : null;
}

/**
 * The names `source` binds with `with CALL(...) as NAME:` to the class CALL
 * returns, as in `with flow.step("fetch") as s:` (s is a Step). A name bound
 * twice keeps its last binding above the cursor.
 */
export function localTypes(stubs, source) {
  const locals = new Map();
  for (const m of source.matchAll(/\bwith\s+([A-Za-z_][\w.]*)\s*\(.*\)\s+as\s+([A-Za-z_]\w*)\s*:/g)) {
    const path = m[1].split(".");
    const owner = typeOf(stubs, path.slice(0, -1), locals);
    const returns = owner?.members.get(path[path.length - 1])?.returns;
    if (returns && stubs.classes.has(returns)) locals.set(m[2], returns);
    else locals.delete(m[2]);
  }
  return locals;
}

/** Split a parameter list at its top-level commas (types hold commas in brackets). */
function splitParams(text) {
  const parts = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "[" || c === "(") depth++;
    else if (c === "]" || c === ")") depth--;
    else if (c === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter(Boolean);
}

/**
 * What completing `member` inserts, as a Monaco snippet: a method with its
 * required parameters as tab stops (`step(${1:name})`, keyword-only ones
 * as `key=${1:key}`), a property or class by its name alone.
 */
export function snippetFor(member) {
  if (member.kind !== "method") return member.name;
  let keywordOnly = false;
  const stops = [];
  for (const param of splitParams(member.params || "")) {
    if (param === "self") continue;
    if (param === "*") {
      keywordOnly = true;
      continue;
    }
    if (param.startsWith("*") || param.includes("=")) continue;
    const name = param.split(":")[0].trim();
    const stop = `\${${stops.length + 1}:${name}}`;
    stops.push(keywordOnly ? `${name}=${stop}` : stop);
  }
  return `${member.name}(${stops.length ? stops.join(", ") : "$0"})`;
}

/** Members to complete after `text` (the line up to the cursor), or [];
 * `locals` as `localTypes` gives them. */
export function completionsAt(stubs, text, locals = new Map()) {
  const m = /([A-Za-z_][\w.]*)\.(\w*)$/.exec(text);
  if (!m) {
    const word = /(\w*)$/.exec(text)[1];
    return [...stubs.globals.keys()].filter((g) => g.startsWith(word)).map((name) => ({ name, kind: "variable", signature: name, doc: "" }));
  }
  const owner = typeOf(stubs, m[1].split("."), locals);
  if (!owner) return [];
  return [...owner.members.values()].filter((member) => member.name.startsWith(m[2]));
}

/** What to show when hovering the last name of `path` (e.g. ["flow", "step"]). */
export function hoverFor(stubs, path) {
  if (path.length === 1) {
    const type = stubs.globals.get(path[0]);
    const owner = type && stubs.classes.get(type);
    return owner ? { signature: `${path[0]}: ${type}`, doc: owner.doc } : null;
  }
  const owner = typeOf(stubs, path.slice(0, -1));
  const member = owner?.members.get(path[path.length - 1]);
  if (!member) return null;
  const target = member.type && stubs.classes.get(member.type);
  return { signature: member.signature, doc: member.doc || target?.doc || "" };
}
