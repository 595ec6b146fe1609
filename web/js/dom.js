// dom.js: builds elements from data. Every string goes in as a text node or an attribute value,
// never as markup, so a lead called "<img onerror=...>" is shown as those characters.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** h("a", {href: "#/leads", class: "x"}, "text", child...): an HTML element. */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** svg("rect", {x: 0, ...}): an SVG element (the charts are drawn with these). */
export function svg(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces everything in el with children. */
export function mount(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, children);
}

const numberFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const moneyFmt = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const pctFmt = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export const fmt = {
  number: (n) => numberFmt.format(Number(n) || 0),
  money: (n) => moneyFmt.format(Number(n) || 0),
  percent: (n) => pctFmt.format(Number(n) || 0),
  date: (s) => (s ? dateFmt.format(new Date(s)) : ""),
  // NEGOTIATION -> Negotiation, COLD_CALL -> Cold call
  label: (s) => (s ? s.charAt(0) + s.slice(1).toLowerCase().replace(/_/g, " ") : ""),
};

export const STATUSES = ["NEW", "CONTACTED", "QUALIFIED", "PROPOSAL", "NEGOTIATION", "WON", "LOST"];
export const SOURCES = ["WEBSITE", "REFERRAL", "SOCIAL", "EMAIL", "COLD_CALL", "EVENT", "OTHER"];
export const ROLES = ["ADMIN", "MANAGER", "SALES_EXECUTIVE"];

/** A <select> of values (labelled by fmt.label), with an optional first "any" option. */
export function select(attrs, values, selected, anyLabel) {
  const opts = values.map((v) => {
    const [value, label] = Array.isArray(v) ? v : [v, fmt.label(v)];
    return h("option", { value, selected: String(value) === String(selected ?? "") }, label);
  });
  if (anyLabel !== undefined) opts.unshift(h("option", { value: "", selected: !selected }, anyLabel));
  return h("select", attrs, opts);
}

/** A labelled form field with a place for its error; input gets id, aria-describedby. */
export function field(label, input, hint) {
  const id = input.id || "f-" + input.getAttribute("name");
  input.id = id;
  const err = h("span", { class: "field-error", id: id + "-error", "data-error-for": input.getAttribute("name") });
  input.setAttribute("aria-describedby", err.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("span", { class: "hint" }, hint) : null, err);
}

/** Shows an API error's fields next to their inputs in form; returns whether any was shown. */
export function showFieldErrors(form, fields) {
  let shown = false;
  for (const el of form.querySelectorAll(".field-error")) {
    const name = el.dataset.errorFor;
    const msg = fields && fields[name];
    el.textContent = msg || "";
    const input = form.elements.namedItem(name);
    if (input && input.setAttribute) {
      if (msg) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
    if (msg) shown = true;
  }
  return shown;
}

/** A message area (role=alert) for a form or a screen. */
export function alertBox() {
  return h("p", { class: "alert", role: "alert", hidden: true });
}

export function say(box, text, kind) {
  box.textContent = text || "";
  box.hidden = !text;
  box.className = "alert" + (kind ? " " + kind : "");
}
