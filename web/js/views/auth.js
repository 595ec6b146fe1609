// auth.js: the sign-in and registration screens.
import { api } from "../api.js";
import { h, mount, field, showFieldErrors, alertBox, say } from "../dom.js";

function screen(main, ctx, { title, fields, submit, path, other }) {
  const msg = alertBox();
  const form = h("form", { novalidate: true, class: "card narrow" }, h("h1", {}, title), msg, fields, h("button", { type: "submit", class: "primary" }, submit), h("p", {}, other));
  const notice = ctx.notice();
  if (notice) say(msg, notice, "info");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = Object.fromEntries(new FormData(form));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say(msg, "");
    showFieldErrors(form, null);
    try {
      const r = await api("POST", path, body, { public: true });
      ctx.signedIn(r.token, r.user);
    } catch (err) {
      if (!showFieldErrors(form, err.fields) || err.code !== "validation_failed") say(msg, err.message, "error");
      else say(msg, "Please correct the fields below.", "error");
      button.disabled = false;
    }
  });
  mount(main, h("div", { class: "center" }, form));
  form.querySelector("input").focus();
}

export const signIn = {
  render(main, ctx) {
    screen(main, ctx, {
      title: "Sign in",
      path: "/auth/login",
      submit: "Sign in",
      fields: [
        field("E-mail", h("input", { name: "email", type: "email", autocomplete: "username", required: true })),
        field("Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
      ],
      other: ["No account yet? ", h("a", { href: "#/register" }, "Register")],
    });
  },
};

export const register = {
  render(main, ctx) {
    screen(main, ctx, {
      title: "Register",
      path: "/auth/register",
      submit: "Create account",
      fields: [
        field("Name", h("input", { name: "name", autocomplete: "name", required: true })),
        field("E-mail", h("input", { name: "email", type: "email", autocomplete: "email", required: true })),
        field("Password", h("input", { name: "password", type: "password", autocomplete: "new-password", required: true }), "8 to 72 characters"),
      ],
      other: ["Already registered? ", h("a", { href: "#/login" }, "Sign in")],
    });
  },
};
