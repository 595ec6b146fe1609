// app.js: the console's shell: the hash router, the header (menu, bell, sign out) and the
// session's life. Each screen is a module with render(main, ctx) and, optionally, onEvent(ev).
import { api, session, saveSession, clearSession, whenUnauthorized } from "./api.js";
import { h, mount } from "./dom.js";
import * as live from "./live.js";
import * as auth from "./views/auth.js";
import * as leads from "./views/leads.js";
import * as leadForm from "./views/lead-new.js";
import * as leadImport from "./views/lead-import.js";
import * as lead from "./views/lead.js";
import * as dashboard from "./views/dashboard.js";
import * as users from "./views/users.js";
import * as tasks from "./views/tasks.js";

const MANAGERS = ["ADMIN", "MANAGER"];
const ROUTES = [
  { re: /^login$/, view: auth.signIn, public: true },
  { re: /^register$/, view: auth.register, public: true },
  { re: /^forgot-password$/, view: auth.forgot, public: true },
  { re: /^reset-password$/, view: auth.reset, public: true },
  { re: /^leads$/, view: leads },
  { re: /^leads\/new$/, view: leadForm },
  { re: /^leads\/import$/, view: leadImport },
  { re: /^leads\/(\d+)$/, view: lead },
  { re: /^tasks$/, view: tasks },
  { re: /^dashboard$/, view: dashboard, roles: MANAGERS },
  { re: /^users$/, view: users, roles: ["ADMIN"] },
];
const MENU = [
  { href: "#/leads", label: "Leads", path: /^leads/ },
  { href: "#/tasks", label: "Tasks", path: /^tasks/ },
  { href: "#/dashboard", label: "Dashboard", path: /^dashboard/, roles: MANAGERS },
  { href: "#/users", label: "Users", path: /^users/, roles: ["ADMIN"] },
];

const main = document.getElementById("main");
let current = null; // the screen on show: { view, token }
let notice = ""; // a message for the next sign-in screen

/** Where the hash points: { path: "leads/7", params: URLSearchParams }. */
export function where() {
  const raw = location.hash.replace(/^#\/?/, "");
  const i = raw.indexOf("?");
  return {
    path: i < 0 ? raw : raw.slice(0, i),
    params: new URLSearchParams(i < 0 ? "" : raw.slice(i + 1)),
  };
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function me() {
  const s = session();
  return s && s.user;
}

function renderHeader(path) {
  const user = me();
  const header = document.getElementById("top");
  header.hidden = !user;
  if (!user) return;
  const items = MENU.filter((m) => !m.roles || m.roles.includes(user.role)).map((m) =>
    h("li", {}, h("a", { href: m.href, "aria-current": m.path.test(path) ? "page" : null }, m.label)),
  );
  mount(document.getElementById("menu"), items);
  mount(document.getElementById("me"), user.name, " ", h("span", { class: "role" }, user.role.replace("_", " ").toLowerCase()));
}

function forbidden() {
  return {
    render(el) {
      mount(
        el,
        h("h1", { tabindex: "-1" }, "Not allowed"),
        h("p", { class: "alert error", role: "alert", id: "not-allowed" }, "Your role does not allow you to see this page."),
        h("p", {}, h("a", { href: "#/leads" }, "Back to the leads")),
      );
    },
  };
}

function notFound() {
  return {
    render(el) {
      mount(el, h("h1", { tabindex: "-1" }, "Page not found"), h("p", {}, h("a", { href: "#/leads" }, "Go to the leads")));
    },
  };
}

async function route() {
  const { path, params } = where();
  const user = me();
  const r = ROUTES.find((x) => x.re.test(path));
  if (!user && !(r && r.public)) return go("#/login");
  if (user && r && r.public) return go("#/leads");
  if (!r && path === "") return go(user ? "#/leads" : "#/login");
  if (current && current.view.leave) current.view.leave();
  const view = !r ? notFound() : r.roles && !r.roles.includes(user.role) ? forbidden() : r.view;
  const token = {};
  current = { view, token };
  renderHeader(path);
  const ctx = {
    params,
    match: r ? path.match(r.re) : null,
    user,
    alive: () => current && current.token === token,
    notice: () => {
      const n = notice;
      notice = "";
      return n;
    },
    signedIn,
    signedOut: signOut,
    go,
  };
  main.setAttribute("aria-busy", "true");
  try {
    await view.render(main, ctx);
  } catch (e) {
    if (e.status !== 401 && ctx.alive()) {
      mount(main, h("h1", {}, "Something went wrong"), h("p", { class: "alert error", role: "alert" }, e.message));
    }
  } finally {
    main.removeAttribute("aria-busy");
  }
  // Focus moves to the new screen's heading, so keyboard and screen-reader users land there.
  const h1 = main.querySelector("h1");
  if (h1 && ctx.alive() && !main.contains(document.activeElement)) {
    h1.setAttribute("tabindex", "-1");
    h1.focus({ preventScroll: true });
  }
}

/** After sign-in or registration: keep the session, open the live stream, go to the leads. */
function signedIn(token, user) {
  saveSession(token, user);
  live.start(token, user, onLiveEvent);
  go("#/leads");
}

function signOut(message) {
  live.stop();
  clearSession();
  notice = message || "";
  go("#/login");
}

function onLiveEvent(ev) {
  if (current && current.view.onEvent) current.view.onEvent(ev);
}

whenUnauthorized((message) => signOut(message));
document.getElementById("signout").addEventListener("click", () => signOut("You have signed out."));
window.addEventListener("hashchange", route);

async function boot() {
  const s = session();
  if (s && s.token) {
    // The role may have changed since the last visit: the server's word counts.
    try {
      const r = await api("GET", "/auth/me");
      saveSession(s.token, r.user);
      live.start(s.token, r.user, onLiveEvent);
    } catch (e) {
      if (e.status === 401) return; // whenUnauthorized has already gone to sign-in
    }
  }
  route();
}

live.initBell();
boot();
