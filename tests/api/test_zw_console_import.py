"""The console's CSV import screen (#/leads/import) in a real headless Chromium against the real
stack: a file is chosen in the page's file input, Check shows the dry run's report (compared
with the API's own answer for the same bytes) and writes nothing, Import creates the leads (the
API lists them) and says how many, a duplicate e-mail is a problem or, with the box ticked,
skipped, an unreadable file shows the API's message, and a file over 10 MiB is refused in the
page without being sent. Any JavaScript error in a browser's console fails the test
(test_zw_console's fixture)."""
import os
import uuid

import pytest

import chromium
from conftest import request
# The browser, its fixtures (no_console_errors is autouse) and helpers of the console's tests.
from test_zw_console import (Browser, browsers, no_console_errors, admin_browser,  # noqa: F401
                             sales_user, sales_browser, new_lead, unnamed_controls)

PROBLEMS_JS = ("return [...document.querySelectorAll('#import-problems tbody tr')]"
               ".map((tr) => [...tr.cells].map((td) => td.textContent))")


@pytest.fixture
def csv_file(tmp_path):
    """write(text or bytes) -> the path of a file the browser (maybe another user) can read."""
    os.chmod(tmp_path, 0o755)

    def write(content, name="leads.csv"):
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chmod(path, 0o644)
        return str(path)
    return write


def tag():
    return "imp" + uuid.uuid4().hex[:10]


def leads_named(token, q):
    r = request("GET", "/api/leads?limit=100&q=" + q, token=token)
    assert r.status == 200, r.text
    return r.json["data"]


def api_report(token, content, query):
    r = request("POST", "/api/leads/import?" + query, raw=content.encode(), token=token,
                headers={"Content-Type": "text/csv"})
    return r.status, r.json


def choose(b, path, skip=False):
    """Opens the import screen afresh, chooses the file and sets the skip box."""
    b.open("/leads/import")
    b.one("#import-file").send_keys(path)
    box = b.one("#import-skip")
    if box.is_selected() != skip:
        box.click()


def summary(b, text, timeout=10):
    return b.wait_text("#import-summary", text, timeout).text


def requests_to_import(b):
    return b.js("return performance.getEntriesByType('resource')"
                ".filter((e) => e.name.includes('/api/leads/import')).length")


def test_the_leads_list_links_to_the_import_screen(sales_browser):
    b = sales_browser
    b.open("/leads")
    b.click("#import-csv")
    b.wait(lambda: b.hash() == "#/leads/import", what="the import screen")
    assert b.text("main h1") == "Import leads from CSV"
    assert unnamed_controls(b) == []
    # The file input and the box are labelled by what they are.
    assert b.js("return document.getElementById('import-file').labels[0].textContent") == "CSV file"
    assert "Skip rows whose e-mail is already there" in b.js(
        "return document.getElementById('import-skip').labels[0].textContent")
    assert b.one("#import-summary").get_attribute("role") == "status"


def test_check_shows_the_bad_row_and_nothing_is_written(sales_browser, sales_user, csv_file):
    token = sales_user[0]
    t = tag()
    content = "name,email,value\n%s One,%s1@example.com,10\n%s Two,not-an-email,20\n" % (t, t, t)
    b = sales_browser
    choose(b, csv_file(content))
    b.click("#import-check")
    summary(b, "1 problem found: nothing would be imported")
    status, want = api_report(token, content, "dry_run=1")
    assert status == 200 and want["errors_total"] == 1, want
    assert b.js(PROBLEMS_JS) == [[str(e["row"]), e["field"], e["problem"]] for e in want["errors"]]
    assert b.js(PROBLEMS_JS)[0][:2] == ["3", "email"]
    assert b.text("#import-count") == "1" and b.text("#import-errors") == "1"
    assert leads_named(token, t) == []
    # Import anyway: the API's 422 carries the same report, and still nothing is written.
    b.click("#import-run")
    summary(b, "1 problem found: nothing was imported")
    assert b.js(PROBLEMS_JS)[0][:2] == ["3", "email"]
    assert b.find("#import-done") == []
    assert leads_named(token, t) == []


def test_import_creates_the_leads_and_says_how_many(sales_browser, sales_user, csv_file):
    token, user = sales_user
    t = tag()
    names = ["%s Alpha" % t, "%s Beta" % t, "%s Gamma" % t]
    content = "name,company,source,value\r\n" + "".join(
        "%s,Acme,REFERRAL,%d.50\r\n" % (n, i) for i, n in enumerate(names))
    b = sales_browser
    choose(b, csv_file(content))
    b.click("#import-check")
    summary(b, "No problems: 3 leads would be imported.")
    assert leads_named(token, t) == []  # the check wrote nothing
    b.click("#import-run")
    summary(b, "Imported 3 leads.")
    assert b.text("#import-count") == "3"
    got = leads_named(token, t)
    assert sorted(l["name"] for l in got) == names
    assert all(l["owner"]["id"] == user["id"] and l["source"] == "REFERRAL" for l in got)
    b.click("#import-done")
    b.wait(lambda: b.hash() == "#/leads", what="the leads list")


def test_a_duplicate_is_a_problem_or_skipped_with_the_box_ticked(sales_browser, sales_user,
                                                                 csv_file):
    token = sales_user[0]
    t = tag()
    email = "%s@example.com" % t
    new_lead(token, name="%s Existing" % t, email=email)
    content = "email,name\n%s,%s Again\n,%s New\n" % (email.upper(), t, t)
    path = csv_file(content)
    b = sales_browser
    choose(b, path)
    b.click("#import-check")
    summary(b, "1 problem found")
    assert b.js(PROBLEMS_JS)[0][:2] == ["2", "email"]
    choose(b, path, skip=True)
    b.click("#import-check")
    summary(b, "No problems: 1 lead would be imported, 1 skipped")
    b.click("#import-run")
    summary(b, "Imported 1 lead, 1 skipped (e-mail already there).")
    assert b.text("#import-skipped") == "1"
    assert sorted(l["name"] for l in leads_named(token, t)) == ["%s Existing" % t, "%s New" % t]


def test_an_unreadable_file_shows_the_apis_message(sales_browser, sales_user, csv_file):
    token = sales_user[0]
    t = tag()
    content = 'name\n%s ok\n"%s never closed\n' % (t, t)
    status, want = api_report(token, content, "dry_run=1")
    assert status == 400 and want["error"]["code"] == "invalid_csv", want
    b = sales_browser
    choose(b, csv_file(content))
    b.click("#import-check")
    alert = b.wait_text("form .alert.error", "The file cannot be read: ", 10)
    assert alert.text == "The file cannot be read: " + want["error"]["message"]
    assert b.find("#import-problems") == []
    assert leads_named(token, t) == []


def test_a_file_over_10_mib_is_refused_before_sending(sales_browser, sales_user, csv_file):
    b = sales_browser
    choose(b, csv_file(b"name\n" + b"x" * (10 * 1024 * 1024), "big.csv"))
    b.click("#import-run")
    alert = b.wait_text("form .alert.error", "at most 10 MiB")
    assert "10,485,765 bytes" in alert.text
    assert b.one("#import-file").get_attribute("aria-invalid") == "true"
    assert requests_to_import(b) == 0
    # No file at all is said too, and nothing is sent either.
    b.open("/leads/import")
    b.click("#import-check")
    b.wait_text("form .alert.error", "Choose a CSV file first.")
    assert requests_to_import(b) == 0


def test_the_report_fits_360_px(browsers, sales_user, csv_file):
    """At 360 px the screen with a report of long problems is no wider than the window (the
    table scrolls in its own box); screenshots at 360 and 1440 px go to <test var>/screens/."""
    t = tag()
    long = "Supercalifragilisticexpialidocious" * 3
    content = "name,email,source\n%s %s,%s,NOWHERE\n,x,OTHER\n" % (t, long, long)
    b = browsers()
    b.use_session(*sales_user)
    choose(b, csv_file(content))
    b.click("#import-check")
    summary(b, "problems found")
    assert len(b.js(PROBLEMS_JS)) >= 2
    b.screenshot("import")
    chromium.viewport(b.driver, 360, 740)
    w = b.js("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert w[1] == 360 and w[0] <= w[1], w
