// users.js (ADMIN): every user, with their role and whether they may sign in.
import { api, query } from "../api.js";
import { h, mount, fmt, select, alertBox, say, ROLES } from "../dom.js";

const PAGE = 20;

export async function render(main, ctx) {
  const page = Math.max(1, parseInt(ctx.params.get("page"), 10) || 1);
  const msg = alertBox();
  const wrap = h("div", { class: "table-wrap" }, h("p", { class: "muted" }, "Loading…"));
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  mount(main, h("h1", {}, "Users"), msg, wrap, pager);
  const r = await api("GET", "/users" + query({ limit: PAGE, offset: (page - 1) * PAGE }));
  if (!ctx.alive()) return;

  const change = async (u, body, what) => {
    try {
      const res = await api("PATCH", "/users/" + u.id, body);
      Object.assign(u, res.user);
      say(msg, u.name + ": " + what + ".", "ok");
    } catch (e) {
      say(msg, u.name + ": " + (e.fields ? Object.values(e.fields).join("; ") : e.message), "error");
    }
    draw();
  };
  const draw = () =>
    mount(
      wrap,
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col", class: "hide-narrow" }, "E-mail"), h("th", { scope: "col" }, "Role"), h("th", { scope: "col" }, "Access"))),
        h(
          "tbody",
          {},
          r.data.map((u) => {
            const self = u.id === ctx.user.id;
            const role = select({ "aria-label": "Role of " + u.name, class: "role-select", disabled: self }, ROLES, u.role);
            role.addEventListener("change", () => change(u, { role: role.value }, "role is now " + fmt.label(role.value)));
            return h(
              "tr",
              { "data-user-id": u.id, class: u.active ? "" : "inactive" },
              h("td", {}, u.name, h("div", { class: "muted" }, u.active ? "" : "deactivated")),
              h("td", { class: "hide-narrow" }, u.email),
              h("td", {}, role),
              h(
                "td",
                {},
                h("button", { type: "button", class: "toggle-active", disabled: self, onclick: () => change(u, { active: !u.active }, u.active ? "deactivated" : "reactivated") }, u.active ? "Deactivate" : "Reactivate"),
              ),
            );
          }),
        ),
      ),
    );
  draw();
  const pages = Math.max(1, Math.ceil(r.page.total / PAGE));
  const to = (n) => () => ctx.go("#/users" + query({ page: n > 1 ? n : "" }));
  mount(pager, h("button", { type: "button", disabled: page <= 1, onclick: to(page - 1) }, "Previous"), h("span", {}, "Page " + page + " of " + pages), h("button", { type: "button", disabled: page >= pages, onclick: to(page + 1) }, "Next"));
}
