// lead-import.js: the CSV import (POST /api/leads/import). "Check" is a dry run that shows the
// report (counts and the problems by row); "Import" is the real run, which writes every row or,
// when any row has a problem, none. The file goes to the API as it is on disk (the browser
// streams the File), so what is checked is byte for byte what the user chose.
import { upload, query } from "../api.js";
import { h, mount, fmt, alertBox, say } from "../dom.js";

// The API's limit (docs/API.md "CSV import"): a larger file is refused here, before sending.
const MAX_BYTES = 10 * 1024 * 1024;

export async function render(main, ctx) {
  const msg = alertBox();
  const file = h("input", { type: "file", name: "file", id: "import-file", accept: ".csv,text/csv", "aria-describedby": "import-file-hint" });
  const skip = h("input", { type: "checkbox", name: "skip", id: "import-skip" });
  const check = h("button", { type: "button", id: "import-check" }, "Check");
  const run = h("button", { type: "submit", class: "primary", id: "import-run" }, "Import");
  // The summary is a live region: a screen reader hears the outcome of Check and Import.
  const summary = h("p", { id: "import-summary", role: "status", "aria-live": "polite" });
  const report = h("div", { id: "import-report" });
  const form = h(
    "form",
    { class: "card", id: "import-form", novalidate: true },
    msg,
    h(
      "div",
      { class: "field" },
      h("label", { for: "import-file" }, "CSV file"),
      file,
      h("span", { class: "hint", id: "import-file-hint" }, "At most 10 MiB. The first row names the columns, as Export CSV writes them: name (required), email, phone, company, source, status, value, notes, owner_id."),
    ),
    h("div", { class: "field" }, h("label", { for: "import-skip", class: "check" }, skip, " Skip rows whose e-mail is already there")),
    h("div", { class: "actions" }, check, run, h("a", { href: "#/leads", class: "button" }, "Back to the leads")),
  );
  mount(main, h("h1", {}, "Import leads from CSV"), form, summary, report);

  // A report belongs to the file and the box it was made with: a change clears it.
  const clear = () => {
    say(msg, "");
    file.removeAttribute("aria-invalid");
    summary.textContent = "";
    report.replaceChildren();
  };
  file.addEventListener("change", clear);
  skip.addEventListener("change", clear);

  const go = async (dryRun) => {
    clear();
    const f = file.files[0];
    if (!f || f.size > MAX_BYTES) {
      say(msg, f ? "The file is " + fmt.number(f.size) + " bytes: the import takes at most 10 MiB (" + fmt.number(MAX_BYTES) + " bytes). Split it into smaller files." : "Choose a CSV file first.", "error");
      file.setAttribute("aria-invalid", "true");
      file.focus();
      return;
    }
    check.disabled = run.disabled = true;
    summary.textContent = dryRun ? "Checking " + f.name + "…" : "Importing " + f.name + "…";
    try {
      const path = "/leads/import" + query({ dry_run: dryRun ? 1 : "", on_duplicate: skip.checked ? "skip" : "" });
      const r = await upload(path, f, "text/csv");
      if (ctx.alive()) show(summary, report, r, dryRun);
    } catch (err) {
      if (!ctx.alive()) return;
      if (err.status === 422 && err.body && Array.isArray(err.body.errors)) {
        show(summary, report, err.body, dryRun);
      } else {
        summary.textContent = "";
        say(msg, (err.code === "invalid_csv" ? "The file cannot be read: " : dryRun ? "The check failed: " : "The import failed: ") + err.message, "error");
      }
    } finally {
      check.disabled = run.disabled = false;
    }
  };
  check.addEventListener("click", () => go(true));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    go(false);
  });
}

/** The outcome in words, the counts and the table of problems. */
function show(summary, report, r, dryRun) {
  const n = fmt.number;
  const count = (k, one, many) => n(k) + " " + (k === 1 ? one : many);
  const skipped = r.skipped ? ", " + n(r.skipped) + " skipped (e-mail already there)" : "";
  if (r.errors_total) {
    summary.textContent = count(r.errors_total, "problem", "problems") + " found: nothing " + (dryRun ? "would be" : "was") + " imported. Correct the file and try again.";
  } else if (dryRun) {
    summary.textContent = "No problems: " + count(r.imported, "lead", "leads") + " would be imported" + skipped + ".";
  } else {
    summary.textContent = "Imported " + count(r.imported, "lead", "leads") + skipped + ".";
  }
  mount(
    report,
    h(
      "dl",
      { class: "facts card" },
      // A dry run counts the rows without a problem; a run, the leads it created.
      h("dt", {}, dryRun ? "Rows without problems" : "Imported"),
      h("dd", { id: "import-count" }, n(r.imported)),
      h("dt", {}, "Skipped"),
      h("dd", { id: "import-skipped" }, n(r.skipped)),
      h("dt", {}, "Problems"),
      h("dd", { id: "import-errors" }, n(r.errors_total)),
    ),
    r.errors.length ? problems(r) : null,
    !dryRun && !r.errors_total ? h("p", {}, h("a", { href: "#/leads", id: "import-done" }, "Go to the leads")) : null,
  );
}

function problems(r) {
  const caption = r.errors_total > r.errors.length ? "Problems: the first " + fmt.number(r.errors.length) + " of " + fmt.number(r.errors_total) : "Problems";
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { id: "import-problems" },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Row"), h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Problem"))),
      h(
        "tbody",
        {},
        r.errors.map((e) => h("tr", {}, h("td", {}, String(e.row)), h("td", {}, e.field === null ? "(the whole row)" : e.field), h("td", {}, e.problem))),
      ),
    ),
  );
}
