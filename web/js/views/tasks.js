// tasks.js: follow-up tasks. The Tasks screen (the caller's tasks, or for ADMIN and MANAGER
// another user's, filtered as GET /api/tasks filters them; the view lives in the URL), and the
// task list with its actions and forms that the lead page shows too.
import { api, query, allUsers } from "../api.js";
import { h, mount, fmt, select, field, showFieldErrors, alertBox, say } from "../dom.js";

const FILTERS = [
  ["open", "Open"],
  ["overdue", "Overdue"],
  ["today", "Due today"],
  ["upcoming", "Upcoming"],
  ["done", "Done"],
  ["all", "All"],
];
const PAGE = 50;
const RELOAD_MS = 150; // live events come in bursts: one reload per burst

let state = null; // the Tasks screen while it is on show: { list }

// --- due times -------------------------------------------------------------------------------

/** An API time as a datetime-local input's value, in the browser's time zone. */
function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return p(d.getFullYear(), 4) + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
}

/** A datetime-local value (local time) as the API's RFC 3339; what cannot be read goes as it
 * is, for the API to name the field. */
function apiTime(value) {
  const d = new Date(value);
  return isNaN(d) ? value : d.toISOString();
}

// --- the form --------------------------------------------------------------------------------

/** An assignee menu: current (or, with anyLabel, "nobody chosen") first, then every active user. */
function userSelect(id, current, anyLabel) {
  const sel = select({ name: "user_id", id }, current ? [[current.id, current.name]] : [], current && current.id, anyLabel);
  allUsers().then((list) => {
    for (const u of list) if (u.active && !(current && u.id === current.id)) sel.append(h("option", { value: u.id }, u.name + " (" + fmt.label(u.role) + ")"));
  }, () => {});
  return sel;
}

/**
 * A task's form (a new one when task is null). prefix keeps its ids unique on the page; the
 * assignee menu is there for ADMIN and MANAGER only (a SALES_EXECUTIVE assigns to itself).
 */
function taskForm(prefix, task, { manager, submit, cancel }) {
  const t = task || {};
  const input = (name, attrs) => h("input", { name, id: prefix + name, ...attrs });
  const msg = alertBox();
  const form = h(
    "form",
    { novalidate: true, class: "task-form" },
    field("Title", input("title", { value: t.title ?? "", required: true, maxlength: 200, autocomplete: "off" })),
    field("Due", input("due_at", { type: "datetime-local", value: localInput(t.due_at), required: true }), "Your local time; a reminder e-mail goes out then."),
    field("Notes", h("textarea", { name: "notes", id: prefix + "notes", rows: 2, maxlength: 10000 }, t.notes ?? "")),
    manager ? field("Assigned to", userSelect(prefix + "user_id", t.user, task ? undefined : "The lead's owner")) : null,
    msg,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, submit), cancel ? h("button", { type: "button", class: "cancel", onclick: cancel }, "Cancel") : null),
  );
  form.msg = msg;
  return form;
}

/** The form's values as the API takes them: for a new task (base null) those filled in, for an
 * edit those that differ from base. */
function taskBody(form, base) {
  const v = (name) => form.elements.namedItem(name);
  const out = {};
  const title = v("title").value.trim();
  const notes = v("notes").value === "" ? null : v("notes").value;
  const due = v("due_at").value;
  const user = v("user_id") ? v("user_id").value : "";
  if (!base) {
    out.title = title;
    if (due) out.due_at = apiTime(due);
    if (notes !== null) out.notes = notes;
    if (user) out.user_id = Number(user);
    return out;
  }
  if (title !== base.title) out.title = title;
  if (notes !== (base.notes ?? null)) out.notes = notes;
  // Compared to the minute, as the input shows it: an untouched time keeps its seconds.
  if (due !== localInput(base.due_at)) out.due_at = due ? apiTime(due) : null;
  if (user && Number(user) !== base.user.id) out.user_id = Number(user);
  return out;
}

function formError(form, err) {
  showFieldErrors(form, err.fields);
  say(form.msg, err.code === "validation_failed" ? "Please correct the fields marked above." : err.message, "error");
}

/** The form to add a task to lead leadId; onCreated(task) runs after each one. */
export function newTaskForm(leadId, { manager, onCreated }) {
  const form = taskForm("nt-", null, { manager, submit: "Add task" });
  form.id = "new-task";
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    say(form.msg, "");
    try {
      const r = await api("POST", "/leads/" + leadId + "/tasks", taskBody(form, null));
      form.reset();
      showFieldErrors(form, null);
      say(form.msg, "Task added: " + r.task.title + ".", "ok");
      onCreated(r.task);
    } catch (err) {
      formError(form, err);
    }
  });
  return form;
}

// --- the list --------------------------------------------------------------------------------

/**
 * A list of tasks with their actions: complete or reopen, edit, delete (each sent with If-Match:
 * a 412 reloads the list and says so). load() fetches a page ({data, page}); showLead links
 * each task to its lead; onChange(what, answer) runs after each change made here. Returns
 * { el, reload, later } (later: reload soon, once per burst of calls).
 */
export function taskList({ load, showLead, manager, empty, onChange = () => {} }) {
  const msg = alertBox();
  const ul = h("ul", { class: "tasks" });
  let tasks = [];
  let open = null; // { task, node }: the task (as first shown) whose edit form or delete question is shown
  let timer = null;

  async function reload() {
    const r = await load();
    if (!r) return;
    tasks = r.data;
    if (open) {
      const now = tasks.find((t) => t.id === open.task.id);
      if (!now) open = null;
      // An open form keeps the version it was opened at: a save meets the 412 below.
      else if (now.version !== open.task.version && open.node.msg) say(open.node.msg, "Someone else has just changed this task.", "warn");
    }
    draw();
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(() => reload().catch(() => {}), RELOAD_MS);
  }

  function draw() {
    const focused = document.activeElement && ul.contains(document.activeElement) ? document.activeElement : null;
    mount(ul, tasks.length ? tasks.map(item) : h("li", { class: "empty" }, empty));
    // A re-render keeps the focus where it was: in the open question or form, which is moved
    // into the new entry (moving an element blurs it), or on the same task's same button.
    if (focused && ul.contains(focused)) {
      if (document.activeElement !== focused) focused.focus();
    } else if (focused && focused.dataset.action) {
      const again = ul.querySelector("[data-task-id='" + focused.closest("[data-task-id]")?.dataset.taskId + "'] [data-action=" + focused.dataset.action + "]");
      if (again) again.focus();
    }
  }

  function item(t) {
    const li = h("li", { class: "task" + (t.done_at ? " done" : ""), "data-task-id": t.id });
    if (open && open.task.id === t.id) return fill(li, open.node);
    const overdue = !t.done_at && new Date(t.due_at) < Date.now();
    const titleId = "task-title-" + t.id;
    const button = (action, label, cls, onclick) => h("button", { type: "button", class: cls, "data-action": action, "aria-describedby": titleId, onclick }, label);
    return fill(
      li,
      h("div", { class: "task-head" }, h("strong", { id: titleId, class: "task-title" }, t.title), t.done_at ? h("span", { class: "badge s-won" }, "Done") : overdue ? h("span", { class: "badge s-lost" }, "Overdue") : null),
      t.notes ? h("div", { class: "content" }, t.notes) : null,
      h(
        "div",
        { class: "meta" },
        "Due ",
        h("time", { datetime: t.due_at, class: "task-due" }, fmt.date(t.due_at)),
        t.done_at ? [" · done ", h("time", { datetime: t.done_at }, fmt.date(t.done_at))] : null,
        " · ",
        h("span", { class: "task-user" }, t.user.name),
        showLead ? [" · ", h("a", { href: "#/leads/" + t.lead_id, class: "task-lead" }, "Lead #" + t.lead_id)] : null,
      ),
      h(
        "div",
        { class: "actions" },
        t.done_at ? button("reopen", "Reopen", "reopen", () => act(t, "reopen")) : button("complete", "Complete", "complete", () => act(t, "complete")),
        button("edit", "Edit", "edit", () => edit(t)),
        button("delete", "Delete…", "delete", () => askDelete(t)),
      ),
    );
  }

  function fill(li, ...children) {
    li.append(...children.flat().filter(Boolean));
    return li;
  }

  /** Shows node in place of task's entry (null: back to the entry, the focus on its button). */
  function show(task, node, focusAction) {
    open = node ? { task, node } : null;
    draw();
    if (!node && focusAction) {
      const b = ul.querySelector("[data-task-id='" + task.id + "'] [data-action=" + focusAction + "]");
      if (b) b.focus();
    }
  }

  function replace(task) {
    tasks = tasks.map((t) => (t.id === task.id ? task : t));
    draw();
  }

  /** A refused change: 412 (changed meanwhile) and 404 (gone) show the list as it is now. */
  async function refused(t, err) {
    if (err.status !== 412 && err.status !== 404) return say(msg, err.message, "error");
    await reload();
    say(
      msg,
      err.status === 412 ? "“" + t.title + "” was changed by someone else meanwhile: the list shows it as it is now. Nothing was changed; try again if you still want to." : "“" + t.title + "” no longer exists, or you may no longer see it.",
      "warn",
    );
  }

  async function act(t, what) {
    say(msg, "");
    try {
      const r = await api("POST", "/tasks/" + t.id + "/" + what, undefined, { version: t.version });
      replace(r.task);
      say(msg, (what === "complete" ? "Done: " : "Open again: ") + r.task.title + ".", "ok");
      onChange(what, r);
    } catch (err) {
      await refused(t, err);
    }
  }

  /** The edit form: it sends the fields the user changed from t, at t's version; after a 412
   * the same changes, at the version found then ("apply mine over theirs"). */
  function edit(t) {
    let version = t.version;
    const form = taskForm("et-" + t.id + "-", t, { manager, submit: "Save task", cancel: () => show(t, null, "edit") });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = taskBody(form, t);
      if (!Object.keys(body).length) return show(t, null, "edit");
      try {
        const r = await api("PATCH", "/tasks/" + t.id, body, { version });
        show(t, null);
        replace(r.task);
        say(msg, "Saved: " + r.task.title + ".", "ok");
        onChange("update", r);
      } catch (err) {
        if (err.status !== 412) return formError(form, err);
        await reload();
        const theirs = tasks.find((x) => x.id === t.id);
        if (!open || !theirs) return say(msg, "“" + t.title + "” no longer exists, or you may no longer see it.", "warn");
        version = theirs.version;
        say(form.msg, "Someone else changed this task meanwhile (it is now “" + theirs.title + "”, due " + fmt.date(theirs.due_at) + "). Your changes were not saved: save again to apply them over theirs, or cancel.", "warn");
      }
    });
    show(t, form);
    form.elements.namedItem("title").focus();
  }

  function askDelete(t) {
    const q = "task-delete-q-" + t.id;
    const node = h(
      "div",
      { role: "alertdialog", "aria-labelledby": q, class: "confirm" },
      h("p", { id: q }, "Delete the task “" + t.title + "”? This cannot be undone."),
      h("div", { class: "actions" }, h("button", { type: "button", class: "danger delete-yes", onclick: () => remove(t) }, "Delete task"), h("button", { type: "button", class: "delete-no", onclick: () => show(t, null, "delete") }, "Cancel")),
    );
    show(t, node);
    node.querySelector(".delete-no").focus();
  }

  async function remove(t) {
    say(msg, "");
    try {
      await api("DELETE", "/tasks/" + t.id, undefined, { version: t.version });
      open = null;
      tasks = tasks.filter((x) => x.id !== t.id);
      draw();
      say(msg, "Deleted: " + t.title + ".", "ok");
      onChange("delete", null);
    } catch (err) {
      open = null;
      await refused(t, err);
    }
  }

  return { el: h("div", { class: "task-list" }, msg, ul), reload, later };
}

// --- the Tasks screen ------------------------------------------------------------------------

function viewOf(params, manager) {
  const filter = params.get("filter");
  return {
    filter: FILTERS.some(([f]) => f === filter) ? filter : "open",
    user_id: manager ? params.get("user_id") || "" : "",
    page: Math.max(1, parseInt(params.get("page"), 10) || 1),
  };
}

function hashOf(v) {
  return "#/tasks" + query({ filter: v.filter === "open" ? "" : v.filter, user_id: v.user_id, page: v.page > 1 ? v.page : "" });
}

export async function render(main, ctx) {
  const manager = ctx.user.role !== "SALES_EXECUTIVE";
  const v = viewOf(ctx.params, manager);
  const set = (changes) => ctx.go(hashOf({ ...v, page: 1, ...changes }));

  const filters = h(
    "nav",
    { class: "tabs", "aria-label": "Which tasks" },
    h("ul", {}, FILTERS.map(([f, label]) => h("li", {}, h("a", { href: hashOf({ ...v, filter: f, page: 1 }), "data-filter": f, "aria-current": f === v.filter ? "page" : null }, label)))),
  );
  let whose = null;
  if (manager) {
    const sel = select({ id: "t-user", name: "user_id" }, [], v.user_id, "Mine");
    sel.addEventListener("change", () => set({ user_id: sel.value }));
    allUsers().then((list) => {
      if (!ctx.alive()) return;
      for (const u of list) if (u.id !== ctx.user.id) sel.append(h("option", { value: u.id, selected: String(u.id) === v.user_id }, u.name + (u.active ? "" : " (deactivated)")));
    }, () => {});
    whose = h("div", { class: "field whose" }, h("label", { for: "t-user" }, "Whose tasks"), sel);
  }
  const status = h("p", { class: "muted", id: "tasks-status", role: "status" }, "Loading…");
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  const list = taskList({
    showLead: true,
    manager,
    empty: v.filter === "open" ? "Nothing to do." : "No tasks here.",
    load: async () => {
      const r = await api("GET", "/tasks" + query({ filter: v.filter, user_id: v.user_id, limit: PAGE, offset: (v.page - 1) * PAGE }));
      if (!ctx.alive()) return null;
      drawPager(pager, status, r.page, r.data.length, v, ctx);
      return r;
    },
  });
  mount(main, h("h1", {}, "Tasks"), h("div", { class: "task-filters" }, filters, whose), h("p", { class: "hint" }, "“Due today” is the day in UTC. Add tasks on a lead's page."), status, list.el, pager);
  state = { list };
  await list.reload();
}

function drawPager(pager, status, page, rows, v, ctx) {
  const first = page.offset + 1;
  const last = page.offset + rows;
  status.textContent = last ? fmt.number(first) + "–" + fmt.number(last) + " of " + fmt.number(page.total) : "";
  const pages = Math.max(1, Math.ceil(page.total / page.limit));
  const to = (n) => () => ctx.go(hashOf({ ...v, page: n }));
  if (pages <= 1) return mount(pager);
  mount(
    pager,
    h("button", { type: "button", disabled: v.page <= 1, onclick: to(v.page - 1) }, "Previous"),
    h("span", {}, "Page " + fmt.number(v.page) + " of " + fmt.number(pages)),
    h("button", { type: "button", disabled: v.page >= pages, onclick: to(v.page + 1) }, "Next"),
  );
}

/** Task changes, and leads deleted or moved (their tasks go or become visible), refresh it. */
export function onEvent(ev) {
  if (state && (ev.type.startsWith("task.") || ev.type === "lead.deleted" || ev.type === "lead.assigned")) state.list.later();
}

export function leave() {
  state = null;
}
