// lead-new.js: the new lead form, and the lead fields it shares with the edit form.
import { api, allUsers } from "../api.js";
import { h, mount, field, select, showFieldErrors, alertBox, say, SOURCES } from "../dom.js";

export const EDITABLE = ["name", "company", "email", "phone", "source", "value", "notes"];

/** The inputs of a lead's editable fields, filled from lead (or empty). */
export function leadFields(lead) {
  const l = lead || {};
  const text = (name, label, attrs) => field(label, h("input", { name, value: l[name] ?? "", ...attrs }));
  return [
    text("name", "Name", { required: true, maxlength: 200, autocomplete: "off" }),
    text("company", "Company", { maxlength: 200, autocomplete: "organization" }),
    text("email", "E-mail", { type: "email", maxlength: 254, autocomplete: "off" }),
    text("phone", "Phone", { type: "tel", maxlength: 40, autocomplete: "off" }),
    field("Source", select({ name: "source" }, SOURCES, l.source || "OTHER")),
    text("value", "Value", { type: "number", min: 0, step: "0.01", inputmode: "decimal" }),
    field("Notes", h("textarea", { name: "notes", rows: 3, maxlength: 10000 }, l.notes ?? "")),
  ];
}

/** The form's lead fields as the API takes them; blanks are null (left out when omitBlank). */
export function leadBody(form, omitBlank) {
  const body = {};
  for (const name of EDITABLE) {
    const el = form.elements.namedItem(name);
    if (!el) continue;
    let v = name === "notes" ? el.value : el.value.trim();
    if (v === "") v = null;
    else if (name === "value") v = Number(v);
    if (v === null && omitBlank) continue;
    body[name] = v;
  }
  return body;
}

export async function render(main, ctx) {
  const msg = alertBox();
  const manager = ctx.user.role !== "SALES_EXECUTIVE";
  const owner = manager ? field("Owner", select({ name: "owner_id" }, [], "", "Me")) : null;
  const form = h("form", { novalidate: true, class: "card", id: "new-lead" }, msg, leadFields(null), owner, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create lead"), h("a", { href: "#/leads", class: "button" }, "Cancel")));
  mount(main, h("h1", {}, "New lead"), form);
  form.elements.namedItem("name").focus();
  if (manager) {
    allUsers().then((list) => {
      const sel = form.elements.namedItem("owner_id");
      for (const u of list) if (u.active && u.id !== ctx.user.id) sel.append(h("option", { value: u.id }, u.name + " (" + u.email + ")"));
    }, () => {});
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = leadBody(form, true);
    if (manager && form.elements.namedItem("owner_id").value) body.owner_id = Number(form.elements.namedItem("owner_id").value);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say(msg, "");
    try {
      const r = await api("POST", "/leads", body);
      ctx.go("#/leads/" + r.lead.id);
    } catch (err) {
      showFieldErrors(form, err.fields);
      say(msg, err.code === "validation_failed" ? "Please correct the fields marked below." : err.message, "error");
      const bad = form.querySelector("[aria-invalid=true]");
      if (bad) bad.focus();
      button.disabled = false;
    }
  });
}
