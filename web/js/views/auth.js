// auth.js: the sign-in and registration screens, and the two of a forgotten password: asking
// for the e-mailed link, and the page that link opens (#/reset-password?token=...).
import { api } from "../api.js";
import { h, mount, field, showFieldErrors, alertBox, say } from "../dom.js";

function screen(main, ctx, { title, fields, submit, path, other, intro, extra, done, explain }) {
  const msg = alertBox();
  const form = h("form", { novalidate: true, class: "card narrow" }, h("h1", {}, title), msg, intro ? h("p", {}, intro) : null, fields, h("button", { type: "submit", class: "primary" }, submit), h("p", {}, other));
  const notice = ctx.notice();
  if (notice) say(msg, notice, "info");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { ...Object.fromEntries(new FormData(form)), ...(extra || {}) };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say(msg, "");
    showFieldErrors(form, null);
    try {
      const r = await api("POST", path, body, { public: true });
      if (done) done(r, msg, form);
      else ctx.signedIn(r.token, r.user);
    } catch (err) {
      if (explain && explain(err)) say(msg, explain(err), "error");
      else if (!showFieldErrors(form, err.fields) || err.code !== "validation_failed") say(msg, err.message, "error");
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
      other: ["No account yet? ", h("a", { href: "#/register" }, "Register"), " · ", h("a", { href: "#/forgot-password" }, "Forgot your password?")],
    });
  },
};

export const forgot = {
  render(main, ctx) {
    screen(main, ctx, {
      title: "Forgot your password?",
      intro: "Give the e-mail address you sign in with: we send it a link to choose a new password. The link works once, for an hour.",
      path: "/auth/password-reset",
      submit: "Send the link",
      fields: [field("E-mail", h("input", { name: "email", type: "email", autocomplete: "username", required: true }))],
      other: [h("a", { href: "#/login" }, "Back to sign in")],
      // The same answer whether or not the address has an account: say what the server says.
      done: (r, msg, form) => {
        say(msg, r.message, "info");
        form.querySelector("button[type=submit]").disabled = false;
      },
    });
  },
};

export const reset = {
  render(main, ctx) {
    screen(main, ctx, {
      title: "Choose a new password",
      intro: "Every session and API token of your account ends when it is set.",
      path: "/auth/password-reset/confirm",
      submit: "Set the password",
      extra: { token: ctx.params.get("token") || "" },
      fields: [field("New password", h("input", { name: "password", type: "password", autocomplete: "new-password", required: true }), "8 to 72 characters")],
      other: [h("a", { href: "#/forgot-password" }, "Ask for a new link")],
      done: () => ctx.signedOut("Your password is set: sign in with it."),
      explain: (err) => err.fields && err.fields.token && "This link has been used or has expired: ask for a new one.",
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
