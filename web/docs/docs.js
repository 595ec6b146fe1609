// docs.js: renders /api/openapi.json (docs/openapi.yaml as JSON) for people: the operations
// grouped by tag with their parameters, bodies, responses and examples, then every schema.
// No framework and nothing from elsewhere: the page works offline and behind any firewall.
"use strict";

const esc = (s) => String(s).replace(/[&<>"']/g, (c) =>
  ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// The little Markdown the spec's descriptions use: paragraphs, lists, indented code, `code`.
function inline(s) {
  return esc(s).replace(/`([^`]+)`/g, "<code>$1</code>").replace(/\*\*([^*]+)\*\*/g, "<b>$1</b>");
}
function md(text) {
  if (!text) return "";
  const out = [];
  let para = [], list = [], code = [];
  const flush = () => {
    if (para.length) out.push("<p>" + inline(para.join(" ")) + "</p>");
    if (list.length) out.push("<ul>" + list.map((i) => "<li>" + inline(i) + "</li>").join("") + "</ul>");
    if (code.length) out.push("<pre>" + esc(code.join("\n")) + "</pre>");
    para = []; list = []; code = [];
  };
  for (const line of String(text).split("\n")) {
    if (/^ {4}/.test(line) && !list.length) { if (para.length) flush(); code.push(line.slice(4)); }
    else if (/^- /.test(line)) { if (para.length || code.length) flush(); list.push(line.slice(2)); }
    else if (/^ {2}\S/.test(line) && list.length) list[list.length - 1] += " " + line.trim();
    else if (line.trim() === "") flush();
    else { if (list.length || code.length) flush(); para.push(line.trim()); }
  }
  flush();
  return out.join("");
}

let spec;
const refName = (ref) => ref.split("/").pop();
function deref(obj) {
  while (obj && obj.$ref) obj = obj.$ref.split("/").slice(1).reduce((o, k) => o[k], spec);
  return obj;
}

// One line saying what a schema is: its type, with links to named schemas and its constraints.
function typeOf(s) {
  if (!s) return "any";
  if (s.$ref) {
    const n = refName(s.$ref);
    return `<a href="#schema-${esc(n)}">${esc(n)}</a>`;
  }
  if (s.const !== undefined) return "<code>" + esc(JSON.stringify(s.const)) + "</code>";
  for (const k of ["oneOf", "anyOf"]) if (s[k]) return s[k].map(typeOf).join(" | ");
  if (s.allOf) return s.allOf.map(typeOf).join(" & ");
  let t = Array.isArray(s.type) ? s.type.join(" | ") : s.type || "";
  if (t === "array" || (Array.isArray(s.type) && s.items)) t = "array of " + typeOf(s.items);
  const c = [];
  if (s.enum) c.push("one of " + s.enum.map((v) => "<code>" + esc(v) + "</code>").join(", "));
  if (s.format) c.push(esc(s.format));
  if (s.minLength !== undefined || s.maxLength !== undefined) c.push(`length ${s.minLength ?? 0}..${s.maxLength ?? "∞"}`);
  if (s.minimum !== undefined || s.maximum !== undefined) c.push(`${s.minimum ?? "−∞"}..${s.maximum ?? "∞"}`);
  if (s.minItems !== undefined || s.maxItems !== undefined) c.push(`${s.minItems ?? 0}..${s.maxItems ?? "∞"} items`);
  if (s.pattern) c.push("pattern <code>" + esc(s.pattern) + "</code>");
  if (s.default !== undefined) c.push("default <code>" + esc(JSON.stringify(s.default)) + "</code>");
  if (s.additionalProperties === false) c.push("no other members");
  if (s.minProperties) c.push(`at least ${s.minProperties} member(s)`);
  return `<span class="type">${esc(t || (s.properties ? "object" : "any"))}</span>` + (c.length ? " — " + c.join("; ") : "");
}

// An object's members as a table, nested objects inline; anything else as its type line.
function schemaHtml(s) {
  if (!s) return "";
  if (s.$ref || !s.properties) {
    let h = "<p>" + typeOf(s) + "</p>";
    if (s.items && !s.items.$ref && s.items.properties) h += '<div class="schema">' + schemaHtml(s.items) + "</div>";
    if (s.allOf) h += s.allOf.filter((x) => !x.$ref).map(schemaHtml).join("");
    if (s.oneOf && !s.properties) h += s.oneOf.filter((x) => !x.$ref && x.properties).map(schemaHtml).join("");
    return h;
  }
  const req = new Set(s.required || []);
  const rows = Object.entries(s.properties).map(([name, p]) => {
    const nested = !p.$ref && (p.properties || (p.items && p.items.properties)) ?
      '<div class="schema">' + schemaHtml(p.properties ? p : p.items) + "</div>" : "";
    return `<tr><td><code>${esc(name)}</code>${req.has(name) ? ' <span class="req">required</span>' : ""}</td>` +
      `<td>${typeOf(p)}${md(p.description)}${nested}</td></tr>`;
  });
  let h = (s.additionalProperties === false ? "<p>Object; no other members.</p>" : "") +
    "<table><tr><th>member</th><th>type</th></tr>" + rows.join("") + "</table>";
  if (s.oneOf) h += "<p>And one of:</p>" + s.oneOf.map((x) => '<div class="schema">' + schemaHtml(x) + "</div>").join("");
  return h;
}

// A body: a named schema is linked and also shown in full, so nothing needs a second click.
const bodyHtml = (s) => s && s.$ref ? "<p>" + typeOf(s) + "</p>" + schemaHtml(deref(s)) : schemaHtml(s);

const example = (media) => media && media.example !== undefined ?
  "<details><summary>Example</summary><pre>" +
  esc(typeof media.example === "string" ? media.example : JSON.stringify(media.example, null, 2)) +
  "</pre></details>" : "";

function paramsHtml(params) {
  if (!params.length) return "";
  return "<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th></tr>" + params.map((p) => {
    p = deref(p);
    return `<tr><td><code>${esc(p.name)}</code>${p.required ? ' <span class="req">required</span>' : ""}</td>` +
      `<td>${esc(p.in)}</td><td>${typeOf(p.schema)}${md(p.description)}</td></tr>`;
  }).join("") + "</table>";
}

function responsesHtml(responses) {
  return "<h4>Responses</h4>" + Object.entries(responses).map(([status, r]) => {
    const name = r.$ref ? refName(r.$ref) : "";
    r = deref(r);
    const headers = Object.entries(r.headers || {}).map(([h, v]) =>
      `<code>${esc(h)}</code>: ${md(deref(v).description)}`).join("");
    const body = Object.entries(r.content || {}).map(([type, m]) =>
      `<p><code>${esc(type)}</code></p>` + bodyHtml(m.schema) + example(m)).join("");
    return `<details><summary><span class="status s${esc(status[0])}">${esc(status)}</span> ` +
      `${inline(r.description || name)}</summary><div class="schema">${headers ? "<p>Headers:</p>" + headers : ""}${body}</div></details>`;
  }).join("");
}

function operationHtml(method, path, item, op) {
  const id = op.operationId || method + path;
  const roles = op["x-roles"] || [];
  const params = (item.parameters || []).concat(op.parameters || []);
  let body = "";
  if (op.requestBody) {
    body = "<h4>Request body</h4>" + Object.entries(op.requestBody.content).map(([type, m]) =>
      `<p><code>${esc(type)}</code></p>` + bodyHtml(m.schema) + example(m)).join("");
  }
  return `<section class="op" id="op-${esc(id)}"><h3><span class="method ${esc(method)}">` +
    `${esc(method.toUpperCase())}</span><span class="path">${esc(path)}</span></h3>` +
    `<p>${inline(op.summary || "")} <span class="roles">— ${roles.length ? "roles: " + roles.map(esc).join(", ") : "public"}</span></p>` +
    md(op.description) + paramsHtml(params) + body + responsesHtml(op.responses) + "</section>";
}

function render() {
  const methods = ["get", "post", "put", "patch", "delete"];
  const byTag = new Map((spec.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const m of methods) {
      if (!item[m]) continue;
      const tag = (item[m].tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
      byTag.get(tag).ops.push([m, path, item, item[m]]);
    }
  }
  let nav = `<strong>${esc(spec.info.title)}</strong><br><small>${esc(spec.info.version)} · ` +
    `<a style="display:inline" href="/api/openapi.yaml">openapi.yaml</a></small>`;
  let main = `<h1>${esc(spec.info.title)}</h1>` + md(spec.info.description);
  for (const { tag, ops } of byTag.values()) {
    nav += `<h2>${esc(tag.name)}</h2>` + ops.map(([m, p, , op]) =>
      `<a href="#op-${esc(op.operationId || m + p)}">${esc(m.toUpperCase())} ${esc(p)}</a>`).join("");
    main += `<h2 id="tag-${esc(tag.name)}">${esc(tag.name)}</h2>` + md(tag.description) +
      ops.map(([m, p, item, op]) => operationHtml(m, p, item, op)).join("");
  }
  const schemas = Object.entries(spec.components.schemas || {});
  nav += "<h2>schemas</h2>" + schemas.map(([n]) => `<a href="#schema-${esc(n)}">${esc(n)}</a>`).join("");
  main += "<h2>Schemas</h2>" + schemas.map(([n, s]) =>
    `<section class="op" id="schema-${esc(n)}"><h3>${esc(n)}</h3>${md(s.description)}${schemaHtml(s)}</section>`).join("");
  main += "<h2>Authentication</h2>" + Object.entries(spec.components.securitySchemes || {}).map(([n, s]) =>
    `<h3>${esc(n)}</h3>` + md(s.description)).join("");
  document.getElementById("nav").innerHTML = nav;
  document.getElementById("main").innerHTML = main;
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

fetch("/api/openapi.json")
  .then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
  .then((s) => { spec = s; render(); })
  .catch((e) => {
    document.getElementById("nav").textContent = "Could not load /api/openapi.json: " + e.message;
  });
