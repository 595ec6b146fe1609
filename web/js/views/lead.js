// lead.js: one lead: its facts, the edit form (If-Match, with a conflict screen on 412), its
// follow-up tasks, status change, assignment and deletion (ADMIN, MANAGER), and the timeline
// (edits with their field history). Live events for this lead update it in place.
import { api, query, allUsers } from "../api.js";
import { h, mount, fmt, select, field, showFieldErrors, alertBox, say, STATUSES } from "../dom.js";
import { leadFields, leadBody, EDITABLE } from "./lead-new.js";
import { toast } from "../live.js";
import { taskList, newTaskForm } from "./tasks.js";

const TYPES = ["NOTE", "CALL", "MEETING", "EMAIL"];
let s = null; // the screen's state while it is on show

export async function render(main, ctx) {
  const id = Number(ctx.match[1]);
  let r;
  try {
    r = await api("GET", "/leads/" + id);
  } catch (e) {
    if (e.status !== 404) throw e;
    mount(main, h("h1", {}, "Lead not found"), h("p", {}, "It does not exist, or you may not see it. ", h("a", { href: "#/leads" }, "Back to the leads")));
    return;
  }
  if (!ctx.alive()) return;
  const manager = ctx.user.role !== "SALES_EXECUTIVE";
  s = { id, ctx, manager, lead: r.lead, base: r.lead, dirty: false, acts: new Map(), before: null };
  addActivities(r.activities, r.activities.length >= 50);

  s.title = h("h1", { id: "lead-title" });
  s.badge = h("span", { class: "badge", id: "lead-status" });
  s.banner = alertBox();
  s.facts = h("dl", { class: "facts" });
  s.timeline = h("ul", { class: "timeline", id: "timeline" });
  s.more = h("button", { type: "button", id: "load-more", onclick: loadMore }, "Load more");

  mount(
    main,
    h("p", {}, h("a", { href: "#/leads" }, "← Leads")),
    h("div", { class: "title-row" }, s.title, s.badge),
    s.banner,
    h(
      "div",
      { class: "detail" },
      h("div", {}, h("section", { class: "card", "aria-labelledby": "h-facts" }, h("h2", { id: "h-facts" }, "Details"), s.facts), editCard(), timelineCard()),
      h("div", {}, tasksCard(), statusCard(), manager ? assignCard() : null, manager ? deleteCard() : null),
    ),
  );
  showLead(r.lead);
  fillForm(r.lead);
  drawTimeline();
  await s.tasks.reload();
}

function showLead(l) {
  s.lead = l;
  s.title.textContent = l.name;
  s.badge.textContent = fmt.label(l.status);
  s.badge.className = "badge s-" + l.status.toLowerCase();
  const rows = [
    ["Company", l.company],
    ["E-mail", l.email],
    ["Phone", l.phone],
    ["Source", fmt.label(l.source)],
    ["Value", fmt.money(l.value)],
    ["Owner", l.owner ? l.owner.name : "Nobody"],
    ["Created by", l.created_by ? l.created_by.name : ""],
    ["Created", fmt.date(l.created_at)],
    ["Updated", fmt.date(l.updated_at)],
  ];
  mount(s.facts, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v || "—")]));
  if (s.statusSel) s.statusSel.value = l.status;
  if (s.ownerSel && l.owner) s.ownerSel.value = String(l.owner.id);
}

// --- editing -------------------------------------------------------------------------------

function editCard() {
  s.editMsg = alertBox();
  s.conflict = h("div", { class: "conflict", id: "conflict", hidden: true });
  s.form = h("form", { novalidate: true, id: "edit-lead" }, leadFields(null), h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save changes"), h("button", { type: "button", onclick: () => fillForm(s.lead) }, "Undo my edits")));
  s.form.addEventListener("input", () => (s.dirty = true));
  s.form.addEventListener("submit", (e) => {
    e.preventDefault();
    save(s.base.version);
  });
  return h("section", { class: "card", "aria-labelledby": "h-edit" }, h("h2", { id: "h-edit" }, "Edit"), s.editMsg, s.conflict, s.form);
}

/** Puts lead's values in the edit form; it becomes the version a save is checked against. */
function fillForm(l) {
  s.base = l;
  s.dirty = false;
  for (const name of EDITABLE) {
    const el = s.form.elements.namedItem(name);
    el.value = l[name] ?? (name === "source" ? "OTHER" : "");
  }
  showFieldErrors(s.form, null);
  s.conflict.hidden = true;
}

/** The fields whose form value differs from base: what the user changed. */
function changes(base) {
  const body = leadBody(s.form, false);
  const out = {};
  for (const [k, v] of Object.entries(body)) if ((base[k] ?? null) !== v) out[k] = v;
  return out;
}

/** Saves the user's changes (body: those found in the form) if the lead is still at version. */
async function save(version, body = changes(s.base)) {
  say(s.editMsg, "");
  if (!Object.keys(body).length) return say(s.editMsg, "Nothing to save: no field was changed.", "info");
  try {
    const r = await api("PATCH", "/leads/" + s.id, body, { version });
    showLead(r.lead);
    fillForm(r.lead);
    if (r.activity) addActivities([r.activity]);
    drawTimeline();
    say(s.editMsg, r.activity ? "Saved." : "Nothing to save: the lead has these values already.", r.activity ? "ok" : "info");
  } catch (e) {
    if (e.status === 412) return conflict(body);
    showFieldErrors(s.form, e.fields);
    say(s.editMsg, e.code === "validation_failed" ? "Please correct the fields marked below." : e.message, "error");
  }
}

/** 412: someone saved first. Show their version next to the user's edits; let the user apply
 * the edits on top of theirs (checked against their version) or drop them. */
async function conflict(mine) {
  const theirs = (await api("GET", "/leads/" + s.id)).lead;
  showLead(theirs);
  const show = (k, v) => (k === "value" ? fmt.money(v) : k === "source" ? fmt.label(v) : v ?? "—");
  const rows = Object.keys(mine).map((k) => h("tr", {}, h("th", { scope: "row" }, fmt.label(k)), h("td", { class: "theirs" }, String(show(k, theirs[k]))), h("td", { class: "mine" }, String(show(k, mine[k])))));
  mount(
    s.conflict,
    h("p", { class: "alert warn", role: "alert" }, "Someone else changed this lead while you were editing" + (theirs.updated_at ? " (" + fmt.date(theirs.updated_at) + ")" : "") + ". Your changes were not saved."),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Theirs (saved)"), h("th", { scope: "col" }, "Yours"))), h("tbody", {}, rows)),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "primary", id: "reapply", onclick: () => save(theirs.version, mine) }, "Apply my changes over theirs"),
      h("button", { type: "button", id: "discard", onclick: () => { fillForm(theirs); say(s.editMsg, "Your changes were discarded.", "info"); } }, "Discard mine, keep theirs"),
    ),
  );
  s.conflict.hidden = false;
  s.conflict.querySelector("#reapply").focus();
}

// --- tasks ----------------------------------------------------------------------------------

function tasksCard() {
  const cur = s;
  s.tasks = taskList({
    manager: s.manager,
    empty: "No tasks yet.",
    load: async () => {
      const r = await api("GET", "/leads/" + cur.id + "/tasks" + query({ limit: 100 }));
      return s === cur ? r : null;
    },
    // Completing a task writes its TASK_COMPLETED entry on the timeline.
    onChange: (what, r) => {
      if (r && r.activity && s === cur) {
        addActivities([r.activity]);
        drawTimeline();
      }
    },
  });
  const form = newTaskForm(s.id, { manager: s.manager, onCreated: () => cur.tasks.reload() });
  return h(
    "section",
    { class: "card", "aria-labelledby": "h-tasks", id: "lead-tasks" },
    h("h2", { id: "h-tasks" }, "Tasks"),
    s.tasks.el,
    h("details", { class: "add-task" }, h("summary", {}, "Add a task"), form),
  );
}

// --- status, owner, delete -------------------------------------------------------------------

function statusCard() {
  const msg = alertBox();
  s.statusSel = select({ name: "status", id: "new-status" }, STATUSES, s.lead.status);
  const note = h("input", { name: "note", id: "status-note", maxlength: 10000, autocomplete: "off" });
  const form = h("form", { id: "status-form" }, h("div", { class: "field" }, h("label", { for: "new-status" }, "Status"), s.statusSel), field("Note (optional)", note), h("button", { type: "submit" }, "Change status"), msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { status: s.statusSel.value };
    if (note.value.trim()) body.note = note.value.trim();
    try {
      const r = await api("PATCH", "/leads/" + s.id + "/status", body);
      showLead(r.lead);
      if (r.activity) addActivities([r.activity]);
      drawTimeline();
      note.value = "";
      say(msg, "Status is now " + fmt.label(r.lead.status) + ".", "ok");
    } catch (err) {
      say(msg, err.message, "error");
    }
  });
  return h("section", { class: "card", "aria-labelledby": "h-status" }, h("h2", { id: "h-status" }, "Status"), form);
}

function assignCard() {
  const msg = alertBox();
  s.ownerSel = select({ name: "owner_id", id: "new-owner" }, s.lead.owner ? [[s.lead.owner.id, s.lead.owner.name]] : [], s.lead.owner && s.lead.owner.id);
  allUsers().then((list) => {
    if (!s) return;
    const current = s.lead.owner ? s.lead.owner.id : null;
    mount(s.ownerSel, list.filter((u) => u.active).map((u) => h("option", { value: u.id, selected: u.id === current }, u.name + " (" + fmt.label(u.role) + ")")));
  }, () => {});
  const form = h("form", { id: "assign-form" }, h("div", { class: "field" }, h("label", { for: "new-owner" }, "Owner"), s.ownerSel), h("button", { type: "submit" }, "Assign"), msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const r = await api("PATCH", "/leads/" + s.id + "/assign", { owner_id: Number(s.ownerSel.value) });
      showLead(r.lead);
      if (r.activity) addActivities([r.activity]);
      drawTimeline();
      say(msg, "Assigned to " + (r.lead.owner ? r.lead.owner.name : "nobody") + ".", "ok");
    } catch (err) {
      say(msg, err.fields ? Object.values(err.fields).join("; ") : err.message, "error");
    }
  });
  return h("section", { class: "card", "aria-labelledby": "h-assign" }, h("h2", { id: "h-assign" }, "Owner"), form);
}

function deleteCard() {
  const msg = alertBox();
  const confirmBox = h(
    "div",
    { id: "delete-confirm", hidden: true, role: "alertdialog", "aria-labelledby": "delete-q" },
    h("p", { id: "delete-q" }, "Delete this lead and its whole timeline? This cannot be undone."),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "danger", id: "delete-yes", onclick: remove }, "Delete permanently"),
      h("button", { type: "button", id: "delete-no", onclick: () => { confirmBox.hidden = true; ask.focus(); } }, "Cancel"),
    ),
    msg,
  );
  const ask = h("button", { type: "button", id: "delete-lead", onclick: () => { confirmBox.hidden = false; confirmBox.querySelector("#delete-no").focus(); } }, "Delete lead…");
  async function remove() {
    try {
      await api("DELETE", "/leads/" + s.id);
      toast("Lead deleted.");
      s.ctx.go("#/leads");
    } catch (err) {
      say(msg, err.message, "error");
    }
  }
  return h("section", { class: "card", "aria-labelledby": "h-delete" }, h("h2", { id: "h-delete" }, "Delete"), ask, confirmBox);
}

// --- the timeline ----------------------------------------------------------------------------

function timelineCard() {
  const msg = alertBox();
  const form = h(
    "form",
    { id: "add-activity", novalidate: true },
    field("Type", select({ name: "type" }, TYPES, "NOTE")),
    field("What happened", h("textarea", { name: "content", rows: 2, maxlength: 10000, required: true })),
    h("button", { type: "submit" }, "Add to timeline"),
    msg,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    say(msg, "");
    try {
      const r = await api("POST", "/leads/" + s.id + "/activity", { type: form.elements.type.value, content: form.elements.content.value });
      addActivities([r.activity]);
      drawTimeline();
      form.elements.content.value = "";
      showFieldErrors(form, null);
    } catch (err) {
      showFieldErrors(form, err.fields);
      if (!err.fields) say(msg, err.message, "error");
    }
  });
  return h("section", { class: "card", "aria-labelledby": "h-timeline" }, h("h2", { id: "h-timeline" }, "Timeline"), form, s.timeline, s.more);
}

/** Adds activities (any order, duplicates ignored); more says older ones may exist. */
function addActivities(list, more) {
  for (const a of list) s.acts.set(a.id, a);
  if (more !== undefined) s.before = more && list.length ? Math.min(...list.map((a) => a.id)) : null;
}

async function loadMore() {
  const r = await api("GET", "/leads/" + s.id + "/activities" + query({ before_id: s.before, limit: 20 }));
  if (!s) return;
  for (const a of r.data) s.acts.set(a.id, a);
  s.before = r.page.next_before_id;
  drawTimeline();
}

/* The names the edit form gives the fields, for the field history. */
const FIELD_LABELS = { name: "Name", company: "Company", email: "E-mail", phone: "Phone", source: "Source", status: "Status", value: "Value", notes: "Notes", owner_id: "Owner" };

function describe(a) {
  if (a.type === "STATUS_CHANGE" && a.meta && a.meta.to) return "Status: " + fmt.label(a.meta.from) + " → " + fmt.label(a.meta.to);
  if (a.type === "ASSIGNMENT") return "Assigned";
  if (a.type === "CREATED") return "Created";
  if (a.type === "UPDATED" && a.meta && a.meta.changes) return "Edited " + a.meta.changes.map((c) => (FIELD_LABELS[c.field] || c.field).toLowerCase()).join(", ");
  return fmt.label(a.type);
}

/** A field's value in the history, as the details show it. */
function changeValue(field, v) {
  if (v === null || v === undefined || v === "") return "(none)";
  if (field === "value") return fmt.money(v);
  if (field === "source" || field === "status") return fmt.label(v);
  return String(v);
}

/** An edit's field history, one entry a field: "Phone: (none) → +1 555 0100". */
function changeLines(a) {
  if (a.type !== "UPDATED" || !a.meta || !a.meta.changes) return null;
  return h(
    "ul",
    { class: "changes" },
    a.meta.changes.map((c) =>
      h("li", { "data-field": c.field }, h("span", { class: "field-name" }, FIELD_LABELS[c.field] || c.field), ": ", h("del", {}, changeValue(c.field, c.from)), " → ", h("ins", {}, changeValue(c.field, c.to))),
    ),
  );
}

function drawTimeline() {
  const list = [...s.acts.values()].sort((a, b) => b.id - a.id);
  mount(
    s.timeline,
    list.length
      ? list.map((a) =>
          h(
            "li",
            { "data-activity-id": a.id },
            h("div", {}, h("strong", {}, describe(a))),
            a.content ? h("div", { class: "content" }, a.content) : null,
            changeLines(a),
            h("div", { class: "meta" }, (a.actor ? a.actor.name + " · " : "") + fmt.date(a.occurred_at || a.created_at)),
          ),
        )
      : h("li", { class: "empty" }, "Nothing yet."),
  );
  s.more.hidden = !s.before;
}

// --- live ------------------------------------------------------------------------------------

export async function onEvent(ev) {
  if (!s || ev.lead_id !== s.id) return;
  const cur = s;
  if (ev.type.startsWith("task.")) {
    s.tasks.later();
    // A completion writes a timeline entry that the event does not carry.
    if (ev.type === "task.completed") await refreshTimeline(cur);
    return;
  }
  if (ev.type === "lead.deleted") {
    say(s.banner, "This lead was deleted" + (ev.actor ? " by " + ev.actor.name : "") + ".", "warn");
    for (const b of document.querySelectorAll("main form button, #delete-lead")) b.disabled = true;
    return;
  }
  if (ev.type === "activity.created") {
    addActivities([ev.data]);
    drawTimeline();
    return;
  }
  // A change to the lead: its new state is in the event. The form follows it unless the user is
  // editing; then a save is checked against the old version and meets the conflict screen.
  if (ev.data && ev.data.version > s.lead.version) {
    showLead(ev.data);
    if (!s.dirty) fillForm(ev.data);
    else say(s.editMsg, (ev.actor ? ev.actor.name : "Someone") + " has just changed this lead.", "warn");
  }
  // Edits, status changes and assignments write a timeline entry of their own, in the event.
  if (ev.activity) {
    addActivities([ev.activity]);
    drawTimeline();
    return;
  }
  await refreshTimeline(cur);
}

/** Fetches the newest page of the timeline of the lead cur shows. */
async function refreshTimeline(cur) {
  try {
    const r = await api("GET", "/leads/" + cur.id + "/activities?limit=20");
    if (s !== cur) return;
    addActivities(r.data);
    drawTimeline();
  } catch (e) {
    if (e.status === 404 && s === cur) say(s.banner, "You can no longer see this lead.", "warn");
  }
}

export function leave() {
  s = null;
}
