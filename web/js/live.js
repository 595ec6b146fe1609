// live.js: the one EventSource of the console, the toasts it raises, the bell (the user's
// notification inbox, its unread count kept current by the stream) and the connection state
// shown in the header.
import { api, query } from "./api.js";
import { h, mount, fmt } from "./dom.js";

const TYPES = ["lead.created", "lead.updated", "lead.status_changed", "lead.assigned", "lead.deleted", "activity.created", "task.created", "task.updated", "task.completed", "task.reopened", "task.deleted", "task.due"];

let source = null;
let me = null;
let handler = () => {};
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
  refreshCount();
  open(token);
}

export function stop() {
  clearTimeout(retryTimer);
  if (source) source.close();
  source = null;
  lastId = null;
  resetBell();
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
  if (INBOX_TYPES.includes(ev.type)) inboxMayHaveGrown();
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

// --- the bell: the user's notification inbox (GET /api/notifications) ---------------------------

const PAGE = 20; // notifications a page of the bell lists
// The events that may land in an inbox (docs/API.md "Notifications"); only the API knows whether
// one did (an activity's event does not say whose lead it is), so such an event refreshes the count.
const INBOX_TYPES = ["lead.created", "lead.assigned", "lead.status_changed", "activity.created", "task.due"];

let unread = 0;
let items = []; // the notifications the bell lists, newest first
let nextCursor = null;
let countTimer = null;
let generation = 0; // bumped at start and stop: answers for an earlier session are dropped

/** "Mo assigned you lead Acme", "Lead Acme: status → Won by Mo", "Task due: Call back (lead #7)" */
export function sentence(n) {
  const who = (n.actor && n.actor.name) || "Someone";
  const d = n.data || {};
  const lead = "lead " + (d.name || "#" + n.lead_id);
  switch (n.reason) {
    case "ASSIGNED":
      return n.type === "lead.created" ? who + " created " + lead + " for you" : who + " assigned you " + lead;
    case "UNASSIGNED":
      return who + " reassigned " + lead + (d.owner ? " to " + d.owner.name : "");
    case "STATUS_CHANGED":
      return "Lead " + (d.name || "#" + n.lead_id) + ": status → " + fmt.label(d.status) + " by " + who;
    case "ACTIVITY":
      return who + " added a " + fmt.label(d.type).toLowerCase() + " to lead #" + n.lead_id;
    case "TASK_DUE":
      return "Task due: " + d.title + " (lead #" + n.lead_id + ")";
    default:
      return who + " changed lead #" + n.lead_id;
  }
}

/** Runs fn (an API call) for the current session; its answer is dropped once the session ended,
 * and a failure leaves the bell as it was (a 401 signs out through api.js). */
async function forSession(fn) {
  const g = generation;
  try {
    const r = await fn();
    return g === generation ? r : null;
  } catch {
    return null;
  }
}

let countAsked = 0;

async function refreshCount() {
  const asked = ++countAsked;
  const r = await forSession(() => api("GET", "/notifications/unread-count"));
  if (r && asked === countAsked) setUnread(r.unread); // an earlier answer that came late is older
}

/** A pushed event that may be in the inbox: the count is asked again, once for a burst. */
function inboxMayHaveGrown() {
  clearTimeout(countTimer);
  countTimer = setTimeout(() => {
    refreshCount();
    if (!$("bell-panel").hidden) loadPage(false);
  }, 200);
}

function setUnread(n) {
  unread = Math.max(0, n);
  const count = $("bell-count");
  count.textContent = unread ? String(unread) : "";
  count.hidden = !unread;
  $("bell").setAttribute("aria-label", unread ? "Notifications: " + unread + " unread" : "Notifications");
}

/** The first page (more = false) or the next one (more = true) of the inbox. */
let listAsked = 0;

async function loadPage(more) {
  const asked = ++listAsked;
  const cursor = more ? nextCursor : null;
  const r = await forSession(() => api("GET", "/notifications" + query({ limit: PAGE, cursor })));
  if (!r || asked !== listAsked) return; // a later load (a fresh first page) wins
  items = more ? items.concat(r.data) : r.data;
  nextCursor = r.page.next_cursor;
  renderList();
}

async function markRead(n) {
  if (n.read_at) return;
  const r = await forSession(() => api("POST", "/notifications/" + n.id + "/read"));
  if (!r) return;
  n.read_at = r.notification.read_at;
  renderList();
  refreshCount();
}

async function markAllRead() {
  if (!items.length) return;
  const hadFocus = document.activeElement === $("bell-read-all");
  // Up to the newest one shown: one that arrived after the list was drawn stays unread.
  const r = await forSession(() => api("POST", "/notifications/read-all" + query({ up_to: items[0].id })));
  if (!r) return;
  await loadPage(false);
  refreshCount();
  // The button is disabled now (nothing unread): keyboard focus moves on to the first item.
  if (hadFocus) ($("bell-list").querySelector("a") || $("bell")).focus();
}

function renderList() {
  const list = items.map((n) =>
    h(
      "li",
      { class: n.read_at ? "" : "unread", "data-notification-id": n.id },
      h(
        "a",
        { href: "#/leads/" + n.lead_id, onclick: () => markRead(n) },
        n.read_at ? null : h("span", { class: "sr-only" }, "Unread: "),
        sentence(n),
      ),
      h("time", { datetime: n.created_at }, fmt.date(n.created_at)),
    ),
  );
  mount($("bell-list"), list.length ? list : h("li", { class: "empty" }, "No notifications."));
  $("bell-more").hidden = !nextCursor;
  $("bell-read-all").disabled = !items.some((n) => !n.read_at);
}

function resetBell() {
  generation++;
  clearTimeout(countTimer);
  items = [];
  nextCursor = null;
  setUnread(0);
  renderList();
}

function setPanel(open) {
  $("bell-panel").hidden = !open;
  $("bell").setAttribute("aria-expanded", String(open));
  if (open) loadPage(false);
}

/** Wires the bell button: opens and closes its panel (Escape or a click outside closes it). */
export function initBell() {
  resetBell();
  $("bell").addEventListener("click", () => setPanel($("bell-panel").hidden));
  $("bell-panel").addEventListener("click", (e) => {
    if (e.target.closest("a")) setPanel(false);
  });
  $("bell-more").addEventListener("click", () => loadPage(true));
  $("bell-read-all").addEventListener("click", () => markAllRead());
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
