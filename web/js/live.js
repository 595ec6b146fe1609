// live.js: the one EventSource of the console, the toasts it raises, the bell that counts what
// came since it was last opened, and the connection state shown in the header.
import { api } from "./api.js";
import { h, mount, fmt } from "./dom.js";

const TYPES = ["lead.created", "lead.updated", "lead.status_changed", "lead.assigned", "lead.deleted", "activity.created", "task.created", "task.updated", "task.completed", "task.reopened", "task.deleted", "task.due"];
const KEEP = 50; // events the bell lists

let source = null;
let me = null;
let handler = () => {};
let unseen = 0;
let recent = [];
let lastId = null;
let retryTimer = null;

const $ = (id) => document.getElementById(id);

function setState(state, text) {
  const el = $("conn");
  el.dataset.state = state;
  el.textContent = text;
}

/** Opens the stream for token; fn(ev) gets every event (the open screen updates itself). */
export function start(token, user, fn) {
  stop();
  me = user;
  handler = fn;
  open(token);
}

export function stop() {
  clearTimeout(retryTimer);
  if (source) source.close();
  source = null;
  unseen = 0;
  recent = [];
  lastId = null;
  renderBell();
  setState("off", "");
}

function open(token) {
  // EventSource resumes with Last-Event-ID by itself; a stream opened anew after it gave up
  // passes the last id it saw in the query instead.
  let url = "/api/events?access_token=" + encodeURIComponent(token);
  if (lastId) url += "&last_event_id=" + encodeURIComponent(lastId);
  const es = new EventSource(url);
  source = es;
  setState("connecting", "Connecting…");
  es.onopen = () => setState("live", "Live");
  es.onerror = () => {
    if (source !== es) return;
    if (es.readyState === EventSource.CONNECTING) {
      setState("reconnecting", "Reconnecting…");
      return;
    }
    // Closed for good (refused: 401, 503). A 401 from /auth/me signs the user out; otherwise
    // the stream is opened again in a few seconds.
    setState("reconnecting", "Reconnecting…");
    es.close();
    retryTimer = setTimeout(async () => {
      try {
        await api("GET", "/auth/me");
      } catch (e) {
        if (e.status === 401) return;
      }
      if (source === es) open(token);
    }, 3000);
  };
  for (const type of TYPES) es.addEventListener(type, (m) => receive(m));
}

function receive(m) {
  let ev;
  try {
    ev = JSON.parse(m.data);
  } catch {
    return;
  }
  lastId = m.lastEventId || lastId;
  setState("live", "Live");
  handler(ev);
  if (!worthTelling(ev)) return;
  recent.unshift(ev);
  recent.length = Math.min(recent.length, KEEP);
  if (document.getElementById("bell-panel").hidden) unseen++;
  renderBell();
  toast(describe(ev), ev.type === "task.due" ? "due" : "");
}

/** One's own changes are already on one's screen: no toast, no bell. A task coming due is the
 * reminder of its assignee only (its actor), not news to the others who may see it. */
function worthTelling(ev) {
  const mine = ev.actor && me && ev.actor.id === me.id;
  return ev.type === "task.due" ? mine : !mine;
}

/** "Asha changed the status of lead #7 to Won" */
export function describe(ev) {
  const who = (ev.actor && ev.actor.name) || "Someone";
  const d = ev.data || {};
  const lead = d.name ? '"' + d.name + '"' : "lead #" + ev.lead_id;
  const task = '"' + d.title + '"';
  switch (ev.type) {
    case "lead.created":
      return who + " created " + lead;
    case "lead.updated":
      return who + " edited " + lead;
    case "lead.status_changed":
      return who + " moved " + lead + " to " + fmt.label(d.status);
    case "lead.assigned":
      return who + " assigned " + lead + (d.owner ? " to " + d.owner.name : "");
    case "lead.deleted":
      return who + " deleted lead #" + ev.lead_id;
    case "activity.created":
      return who + " added a " + fmt.label(d.type) + " to lead #" + ev.lead_id;
    case "task.created":
      return who + " added the task " + task + " to lead #" + ev.lead_id;
    case "task.updated":
      return who + " edited the task " + task;
    case "task.completed":
      return who + " completed the task " + task;
    case "task.reopened":
      return who + " reopened the task " + task;
    case "task.deleted":
      return who + " deleted a task of lead #" + ev.lead_id;
    case "task.due":
      return "Due now: " + task + " (lead #" + ev.lead_id + ")";
    default:
      return who + " changed lead #" + ev.lead_id;
  }
}

export function toast(text, kind) {
  const t = h("div", { class: "toast" + (kind ? " " + kind : ""), role: "status" }, text);
  $("toasts").append(t);
  setTimeout(() => t.remove(), 5000);
}

function renderBell() {
  const count = $("bell-count");
  count.textContent = unseen ? String(unseen) : "";
  count.hidden = !unseen;
  $("bell").setAttribute("aria-label", unseen ? "Notifications: " + unseen + " new" : "Notifications");
  const list = recent.map((ev) =>
    h(
      "li",
      {},
      ev.type.endsWith(".deleted") ? describe(ev) : h("a", { href: "#/leads/" + ev.lead_id }, describe(ev)),
      h("time", { datetime: ev.at }, fmt.date(ev.at)),
    ),
  );
  mount($("bell-list"), list.length ? list : h("li", { class: "empty" }, "Nothing new."));
}

function setPanel(open) {
  $("bell-panel").hidden = !open;
  $("bell").setAttribute("aria-expanded", String(open));
  if (open) {
    unseen = 0; // opened: everything listed is seen
    renderBell();
  }
}

/** Wires the bell button: opens and closes its panel (Escape or a click outside closes it). */
export function initBell() {
  renderBell();
  $("bell").addEventListener("click", () => setPanel($("bell-panel").hidden));
  $("bell-panel").addEventListener("click", (e) => {
    if (e.target.closest("a")) setPanel(false);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("bell-panel").hidden) {
      setPanel(false);
      $("bell").focus();
    }
  });
  document.addEventListener("click", (e) => {
    if (!e.target.closest(".bell")) $("bell-panel").hidden || setPanel(false);
  });
}
