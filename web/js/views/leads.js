// leads.js: the leads table. The view (filters, search, sort, page) lives in the URL's hash,
// so a reload, the back button or a shared link shows the same thing. Export CSV downloads
// every lead of the view (its filters and sort, all pages); Import CSV opens #/leads/import.
import { api, query, allUsers, download } from "../api.js";
import { h, mount, fmt, select, alertBox, say, STATUSES, SOURCES } from "../dom.js";

const PAGE = 20;
const SORTABLE = [
  ["name", "Name"],
  ["value", "Value"],
  ["created_at", "Created"],
  ["updated_at", "Updated"],
];
const FILTERS = ["q", "status", "source", "owner_id", "sort", "page"];
// A performance mark when the table is first drawn in this page load: make bench-console times
// the page to it.
const RENDERED_MARK = "crm:leads-rendered";

let state = null; // { main, ctx, view, refresh }

/** The view in the URL, with defaults. */
function viewOf(params) {
  const v = {};
  for (const k of FILTERS) v[k] = params.get(k) || "";
  v.page = Math.max(1, parseInt(v.page, 10) || 1);
  return v;
}

function hashOf(v) {
  const p = { ...v, page: v.page > 1 ? v.page : "" };
  return "#/leads" + query(p);
}

export async function render(main, ctx) {
  const v = viewOf(ctx.params);
  const manager = ctx.user.role !== "SALES_EXECUTIVE";
  const set = (changes) => ctx.go(hashOf({ ...v, page: 1, ...changes }));

  const search = h("input", { type: "search", name: "q", id: "f-q", value: v.q, placeholder: "Name, e-mail or company" });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter leads" },
    h("div", { class: "field" }, h("label", { for: "f-q" }, "Search"), search),
    h("div", { class: "field" }, h("label", { for: "f-status" }, "Status"), select({ id: "f-status", name: "status" }, STATUSES, v.status, "Any status")),
    h("div", { class: "field" }, h("label", { for: "f-source" }, "Source"), select({ id: "f-source", name: "source" }, SOURCES, v.source, "Any source")),
    manager ? h("div", { class: "field" }, h("label", { for: "f-owner" }, "Owner"), select({ id: "f-owner", name: "owner_id" }, [], v.owner_id, "Anyone")) : null,
    h("div", { class: "field" }, h("label", { for: "f-sort" }, "Sort"), select({ id: "f-sort", name: "sort" }, sortOptions(), v.sort || "-created_at")),
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    set({ q: search.value.trim() });
  });
  form.addEventListener("change", (e) => {
    if (e.target.tagName === "SELECT") set({ [e.target.name]: e.target.value, q: search.value.trim() });
  });

  const exportMsg = alertBox();
  const exportButton = h("button", { type: "button", id: "export-csv" }, "Export CSV");
  exportButton.addEventListener("click", async () => {
    exportButton.disabled = true;
    say(exportMsg, "Exporting…");
    try {
      // The list's own filters and sort; the export has no pages.
      const bytes = await download("/leads.csv" + query({ q: v.q, status: v.status, source: v.source, owner_id: v.owner_id, sort: v.sort }), "text/csv", "leads.csv");
      say(exportMsg, "Exported leads.csv (" + fmt.number(bytes) + " bytes).", "ok");
    } catch (e) {
      say(exportMsg, "The export failed: " + e.message, "error");
    } finally {
      exportButton.disabled = false;
    }
  });
  const status = h("p", { class: "muted", id: "leads-status", role: "status" }, "Loading…");
  const table = h("div", { class: "table-wrap" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  mount(
    main,
    h("div", { class: "title-row" }, h("h1", {}, "Leads"), h("div", { class: "actions" }, exportButton, h("a", { href: "#/leads/import", class: "button", id: "import-csv" }, "Import CSV"), h("a", { href: "#/leads/new", class: "button primary" }, "New lead"))),
    exportMsg,
    form,
    status,
    table,
    pager,
  );

  if (manager) {
    allUsers().then((list) => {
      const sel = form.querySelector("#f-owner");
      if (!sel || !ctx.alive()) return;
      for (const u of list) sel.append(h("option", { value: u.id, selected: String(u.id) === v.owner_id }, u.name));
    }, () => {});
  }

  const load = async () => {
    const r = await api("GET", "/leads" + query({ q: v.q, status: v.status, source: v.source, owner_id: v.owner_id, sort: v.sort, limit: PAGE, offset: (v.page - 1) * PAGE }));
    if (!ctx.alive()) return;
    drawTable(table, r.data, v, set);
    drawPager(pager, status, r.page, r.data.length, v, ctx);
    if (!performance.getEntriesByName(RENDERED_MARK).length) performance.mark(RENDERED_MARK);
  };
  state = { load, timer: null };
  await load();
}

// The words for a sort's two directions, descending first (the dates': newest, oldest).
const SORT_WORDS = { name: ["Z–A", "A–Z"], value: ["highest", "lowest"] };

function sortOptions() {
  const out = [];
  for (const [key, label] of SORTABLE) {
    const [down, up] = SORT_WORDS[key] || ["newest", "oldest"];
    out.push(["-" + key, label + " (" + down + ")"]);
    out.push([key, label + " (" + up + ")"]);
  }
  return out;
}

function drawTable(wrap, rows, v, set) {
  if (!rows.length) {
    mount(wrap, h("p", { class: "empty" }, "No leads match this view."));
    return;
  }
  const sort = v.sort || "-created_at";
  const th = (key, label) => {
    const dir = sort === key ? "ascending" : sort === "-" + key ? "descending" : null;
    const next = sort === "-" + key ? key : "-" + key;
    return h("th", { scope: "col", "aria-sort": dir || "none" }, h("button", { type: "button", class: "sort", onclick: () => set({ sort: next, page: v.page }) }, label, dir ? (dir === "ascending" ? " ▲" : " ▼") : ""));
  };
  mount(
    wrap,
    h(
      "table",
      { class: "leads" },
      h("caption", { class: "sr-only" }, "Leads"),
      h("thead", {}, h("tr", {}, th("name", "Name"), h("th", { scope: "col" }, "Company"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col", class: "hide-narrow" }, "Source"), h("th", { scope: "col", class: "hide-narrow" }, "Owner"), th("value", "Value"), th("created_at", "Created"))),
      h(
        "tbody",
        {},
        rows.map((l) =>
          h(
            "tr",
            { "data-lead-id": l.id },
            h("td", {}, h("a", { href: "#/leads/" + l.id, class: "lead-name" }, l.name)),
            h("td", {}, l.company || ""),
            h("td", {}, h("span", { class: "badge s-" + l.status.toLowerCase() }, fmt.label(l.status))),
            h("td", { class: "hide-narrow" }, fmt.label(l.source)),
            h("td", { class: "hide-narrow" }, l.owner ? l.owner.name : "—"),
            h("td", { class: "num" }, fmt.money(l.value)),
            h("td", {}, h("time", { datetime: l.created_at }, fmt.date(l.created_at))),
          ),
        ),
      ),
    ),
  );
}

/* The API pages by offset up to this many rows (docs/API.md "Paging"). */
const OFFSET_MAX = 10000;

/*
 * page.total is counted up to a bound: past it (total_exact false) the status says "1,000+",
 * the page count is not known and Next follows page.next_cursor's presence.
 */
function drawPager(pager, status, page, rows, v, ctx) {
  const first = page.offset + 1;
  const last = page.offset + rows;
  const of = fmt.number(page.total) + (page.total_exact ? "" : "+");
  status.textContent = last ? fmt.number(first) + "–" + fmt.number(last) + " of " + of : "";
  const pages = Math.max(1, Math.ceil(page.total / page.limit));
  const more = page.total_exact ? v.page < pages : page.next_cursor !== null && v.page * page.limit <= OFFSET_MAX;
  const to = (n) => () => ctx.go(hashOf({ ...v, page: n }));
  mount(
    pager,
    h("button", { type: "button", disabled: v.page <= 1, onclick: to(v.page - 1) }, "Previous"),
    h("span", {}, "Page " + fmt.number(v.page) + (page.total_exact ? " of " + fmt.number(pages) : "")),
    h("button", { type: "button", disabled: !more, onclick: to(v.page + 1) }, "Next"),
  );
}

/** A change to any lead may move rows in or out of this view: fetch it again (once per burst).
 * Tasks change no lead. */
export function onEvent(ev) {
  if (!state || ev.type.startsWith("task.")) return;
  const s = state;
  clearTimeout(s.timer);
  s.timer = setTimeout(() => s.load().catch(() => {}), 150);
}

export function leave() {
  if (state) clearTimeout(state.timer);
  state = null;
}
