// dashboard.js (ADMIN, MANAGER): key figures, leads by status as an SVG bar chart, and the top
// sales executives over a period kept in the URL. Live events refresh it.
import { api, query } from "../api.js";
import { h, svg, mount, fmt, select } from "../dom.js";

const PERIODS = [
  ["", "All time"],
  ["7", "Last 7 days"],
  ["30", "Last 30 days"],
  ["90", "Last 90 days"],
  ["365", "Last 12 months"],
];
let state = null;

function since(days) {
  if (!days) return "";
  const d = new Date(Date.now() - Number(days) * 86400000);
  return d.toISOString().slice(0, 10);
}

export async function render(main, ctx) {
  const period = PERIODS.some(([v]) => v === (ctx.params.get("period") || "")) ? ctx.params.get("period") || "" : "";
  const cards = h("div", { class: "stats", id: "stats" }, h("p", { class: "muted" }, "Loading…"));
  const chart = h("div", { id: "by-status" });
  const top = h("div", { class: "table-wrap", id: "top-sales" });
  const periodSel = select({ id: "period", name: "period" }, PERIODS, period);
  periodSel.addEventListener("change", () => ctx.go("#/dashboard" + query({ period: periodSel.value })));
  mount(
    main,
    h("h1", {}, "Dashboard"),
    cards,
    h("div", { class: "detail" }, h("section", { class: "card", "aria-labelledby": "h-chart" }, h("h2", { id: "h-chart" }, "Leads by status"), chart), h("section", { class: "card", "aria-labelledby": "h-top" }, h("h2", { id: "h-top" }, "Top sales"), h("div", { class: "field" }, h("label", { for: "period" }, "Period (won in)"), periodSel), top)),
  );
  const load = async () => {
    const [stats, by, best] = await Promise.all([
      api("GET", "/dashboard/stats"),
      api("GET", "/dashboard/leads-by-status"),
      api("GET", "/dashboard/top-sales" + query({ limit: 5, from: since(period) })),
    ]);
    if (!ctx.alive()) return;
    drawStats(cards, stats);
    drawChart(chart, by.data);
    drawTop(top, best.data);
  };
  state = { load, timer: null };
  await load();
}

function drawStats(el, st) {
  const items = [
    ["Total leads", fmt.number(st.total_leads), "total_leads"],
    ["New in 7 days", fmt.number(st.new_leads_7d), "new_leads_7d"],
    ["Open", fmt.number(st.open), "open"],
    ["Won", fmt.number(st.won), "won"],
    ["Lost", fmt.number(st.lost), "lost"],
    ["Conversion", fmt.percent(st.conversion_rate), "conversion_rate"],
    ["Pipeline value", fmt.money(st.pipeline_value), "pipeline_value"],
    ["Won value", fmt.money(st.won_value), "won_value"],
    ["Activities in 7 days", fmt.number(st.activities_7d), "activities_7d"],
    ["Sales executives", fmt.number(st.users ? st.users.SALES_EXECUTIVE : 0), "sales_executives"],
  ];
  mount(el, items.map(([label, value, key]) => h("div", { class: "stat", "data-stat": key }, h("div", { class: "label" }, label), h("div", { class: "value" }, value))));
}

/** Horizontal bars, one per status, drawn to scale; the numbers are written next to them. */
function drawChart(el, data) {
  const rowH = 28, labelW = 110, barW = 260, countW = 60;
  const max = Math.max(1, ...data.map((d) => d.count));
  const width = labelW + barW + countW, height = rowH * data.length;
  const summary = data.map((d) => fmt.label(d.status) + " " + d.count).join(", ");
  mount(
    el,
    svg(
      "svg",
      { class: "chart", viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": "Leads by status: " + summary },
      data.map((d, i) => {
        const y = i * rowH;
        const w = Math.round((d.count / max) * barW);
        return svg(
          "g",
          { "data-status": d.status },
          svg("text", { x: labelW - 8, y: y + rowH / 2 + 4, "text-anchor": "end" }, fmt.label(d.status)),
          svg("rect", { class: "bar s-" + d.status.toLowerCase(), x: labelW, y: y + 4, width: Math.max(w, 1), height: rowH - 8, rx: 3 }),
          svg("text", { x: labelW + w + 6, y: y + rowH / 2 + 4, class: "count" }, fmt.number(d.count)),
        );
      }),
    ),
  );
}

function drawTop(el, rows) {
  if (!rows.length) return mount(el, h("p", { class: "empty" }, "No sales executive has won a lead in this period."));
  mount(
    el,
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col", class: "num" }, "Won"), h("th", { scope: "col", class: "num" }, "Won value"), h("th", { scope: "col", class: "num hide-narrow" }, "Leads"), h("th", { scope: "col", class: "num hide-narrow" }, "Activities"))),
      h("tbody", {}, rows.map((r) => h("tr", { "data-user-id": r.user.id }, h("td", {}, r.user.name), h("td", { class: "num" }, fmt.number(r.won)), h("td", { class: "num" }, fmt.money(r.won_value)), h("td", { class: "num hide-narrow" }, fmt.number(r.leads)), h("td", { class: "num hide-narrow" }, fmt.number(r.activities))))),
    ),
  );
}

export function onEvent() {
  if (!state) return;
  const s = state;
  clearTimeout(s.timer);
  s.timer = setTimeout(() => s.load().catch(() => {}), 300);
}

export function leave() {
  if (state) clearTimeout(state.timer);
  state = null;
}
