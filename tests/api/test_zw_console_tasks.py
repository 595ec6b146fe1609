"""The console's follow-up tasks, field history and CSV export (issue 16) in a real headless
Chromium against the real stack: tasks made, completed, reopened, edited and deleted through the
UI with the API's state checked after each step, the Tasks screen's filters and a MANAGER's pick
of a user against GET /api/tasks, a 412 that reloads, a PATCH's field diff in the timeline, the
Export CSV button's file byte for byte against GET /api/leads.csv, and task.due from the stream.
Any JavaScript error in a browser's console fails the test (test_zw_console's fixture)."""
import datetime
import os
import shutil
import time
import uuid

import pytest
from selenium.webdriver.support.ui import Select

from conftest import VAR, make_user, request, sql
# The browser, its fixtures (no_console_errors is autouse) and helpers of the console's tests.
from test_zw_console import (Browser, browsers, no_console_errors, admin_browser,  # noqa: F401
                             sales_user, sales_browser, new_lead, unnamed_controls)

DOWNLOADS = os.path.join(VAR, "downloads")


def at(seconds):
    """An RFC 3339 time seconds from now."""
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def new_task(token, lead_id, **body):
    body.setdefault("title", "Task " + uuid.uuid4().hex[:8])
    body.setdefault("due_at", at(3600))
    r = request("POST", "/api/leads/%d/tasks" % lead_id, body, token=token)
    assert r.status == 201, r.text
    return r.json["task"]


def task(token, task_id):
    r = request("GET", "/api/tasks/%d" % task_id, token=token)
    return r.status, r.json and r.json.get("task")


def shown_ids(b):
    return [int(x) for x in b.js("return [...document.querySelectorAll('.tasks li[data-task-id]')]"
                                 ".map((li) => li.dataset.taskId)")]


def api_ids(token, query):
    r = request("GET", "/api/tasks?limit=50&" + query, token=token)
    assert r.status == 200, r.text
    return [t["id"] for t in r.json["data"]]


def task_id(b, scope, title):
    """The id of the task titled title in the list under scope, once it is shown (live events
    re-render the list: the element is looked up by the page itself)."""
    found = b.wait(lambda: b.js(
        "const li = [...document.querySelectorAll(arguments[0] + ' li[data-task-id]')]"
        ".find((li) => (li.querySelector('.task-title') || {}).textContent === arguments[1]);"
        "return li ? li.dataset.taskId : null", scope, title), what="the task " + title)
    return int(found)


def set_due(b, css, local):
    """Puts local (YYYY-MM-DDTHH:MM) in a datetime-local input, as the picker would."""
    b.js("const el = document.querySelector(arguments[0]); el.value = arguments[1];"
         "el.dispatchEvent(new Event('input', {bubbles: true}))", css, local)


def in_task(task_id, css=""):
    return ("li[data-task-id='%d'] " % task_id) + css


# --- a lead's tasks -----------------------------------------------------------------------------

def test_lead_page_adds_completes_reopens_and_deletes_a_task(sales_browser, sales_user):
    token, user = sales_user
    b = sales_browser
    lead = new_lead(token)
    b.open("/leads/%d" % lead["id"])
    b.wait_text("#lead-tasks", "No tasks yet.")
    b.click("#lead-tasks summary")
    title = "Call back " + uuid.uuid4().hex[:6]
    b.fill("#new-task", title=title, notes="Ask about <b>the renewal</b>")
    set_due(b, "#nt-due_at", "2031-03-04T09:30")
    b.click("#new-task button[type=submit]")
    b.wait_text("#new-task .alert.ok", "Task added")
    tid = task_id(b, "#lead-tasks", title)
    status, t = task(token, tid)
    assert status == 200 and t["title"] == title and t["notes"] == "Ask about <b>the renewal</b>"
    assert t["lead_id"] == lead["id"] and t["user"]["id"] == user["id"] and t["done_at"] is None
    # The browser's local 09:30, as the API stores it.
    assert t["due_at"] == b.js("return new Date('2031-03-04T09:30').toISOString()")
    assert "<b>the renewal</b>" in b.text(in_task(tid, ".content"))  # markup shown as text

    b.click(in_task(tid, "button.complete"))
    b.wait_text(in_task(tid, ".badge"), "Done")
    status, t = task(token, tid)
    assert t["done_at"] is not None
    # Completing writes its entry on the timeline, shown at once.
    b.wait_text("#timeline li", "Task completed")
    assert title in b.text("#timeline li")

    b.click(in_task(tid, "button.reopen"))
    b.one(in_task(tid, "button.complete"))
    assert task(token, tid)[1]["done_at"] is None

    b.click(in_task(tid, "button.delete"))
    b.wait_text(in_task(tid, "[role=alertdialog]"), title)
    assert b.js("return document.activeElement.className") == "delete-no"
    b.click(in_task(tid, "button.delete-no"))  # cancel: nothing happens
    b.one(in_task(tid, "button.delete"))
    assert task(token, tid)[0] == 200
    b.click(in_task(tid, "button.delete"))
    b.click(in_task(tid, "button.delete-yes"))
    b.wait_text("#lead-tasks .alert.ok", "Deleted")
    assert task(token, tid)[0] == 404
    b.wait(lambda: tid not in shown_ids(b), what="the task gone from the list")


def test_a_live_reload_keeps_the_focus_in_an_open_question_or_form(sales_browser, sales_user):
    """Another task added to the lead (its task.created event reloads the list) while this
    task's delete question, then its edit form, is open: the focus stays where the user left it
    (CI once saw it lost after a reopen's own event re-rendered the list)."""
    token, _ = sales_user
    b = sales_browser
    lead = new_lead(token)
    tid = new_task(token, lead["id"])["id"]
    b.open("/leads/%d" % lead["id"])
    b.one(in_task(tid, "button.delete"))
    b.click(in_task(tid, "button.delete"))
    b.wait(lambda: b.js("return document.activeElement.className") == "delete-no",
           what="focus on Cancel")
    other = new_task(token, lead["id"])["id"]
    b.wait(lambda: other in shown_ids(b), what="the other task shown live")
    assert b.js("return document.activeElement.className") == "delete-no"
    b.click(in_task(tid, "button.delete-no"))

    b.click(in_task(tid, "button.edit"))
    b.wait(lambda: b.js("return document.activeElement.id") == "et-%d-title" % tid,
           what="focus in the edit form")
    third = new_task(token, lead["id"])["id"]
    b.wait(lambda: third in shown_ids(b), what="the third task shown live")
    assert b.js("return document.activeElement.id") == "et-%d-title" % tid


def test_manager_assigns_a_new_task_and_the_form_shows_field_errors(admin_browser, admin,
                                                                      sales_user):
    b = admin_browser
    _, sales = sales_user
    lead = new_lead(admin["token"])
    b.open("/leads/%d" % lead["id"])
    b.click("#lead-tasks summary")
    b.click("#new-task button[type=submit]")  # nothing filled in: the API names the fields
    b.wait(lambda: b.js("return document.querySelector('#nt-title').getAttribute('aria-invalid')")
           == "true", what="title marked invalid")
    assert b.js("return document.querySelector('#nt-due_at').getAttribute('aria-invalid')") == "true"
    title = "For sales " + uuid.uuid4().hex[:6]
    b.fill("#new-task", title=title)
    set_due(b, "#nt-due_at", "2031-05-06T14:00")
    b.one("#nt-user_id option[value='%d']" % sales["id"])
    Select(b.one("#nt-user_id")).select_by_value(str(sales["id"]))
    b.click("#new-task button[type=submit]")
    tid = task_id(b, "#lead-tasks", title)
    t = task(admin["token"], tid)[1]
    assert t["user"]["id"] == sales["id"] and t["created_by"]["id"] == admin["user"]["id"]
    assert b.text(in_task(tid, ".task-user")) == sales["name"]


# --- the Tasks screen ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def worker(admin):
    """A sales executive of its own, with one task of each kind: overdue, due later today or
    tomorrow, next week, done."""
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    lead = new_lead(token, name="Tasks screen lead")
    tasks = {
        "overdue": new_task(token, lead["id"], title="Was due an hour ago", due_at=at(-3600)),
        "soon": new_task(token, lead["id"], title="Due in half an hour", due_at=at(1800)),
        "week": new_task(token, lead["id"], title="Due next week", due_at=at(7 * 86400)),
        "done": new_task(token, lead["id"], title="Done already", due_at=at(-7200)),
    }
    r = request("POST", "/api/tasks/%d/complete" % tasks["done"]["id"], token=token)
    assert r.status == 200, r.text
    return token, user, lead, tasks


def test_tasks_screen_filters_match_the_api_and_link_to_the_lead(browsers, worker):
    token, user, lead, tasks = worker
    b = browsers()
    b.use_session(token, user, "/tasks")
    b.wait_text("#menu a[aria-current=page]", "Tasks")
    ids = {k: t["id"] for k, t in tasks.items()}
    b.wait(lambda: sorted(shown_ids(b)) == sorted([ids["overdue"], ids["soon"], ids["week"]]),
           what="the open tasks")
    assert b.text("#tasks-status") == "1–3 of 3"
    for f in ("overdue", "today", "upcoming", "done", "all", "open"):
        b.click(".tabs a[data-filter=%s]" % f)
        want = api_ids(token, "filter=" + f)
        # The new screen (its tab current) with its list loaded.
        b.wait(lambda: b.js("return (document.querySelector('.tabs a[aria-current=page]') || {})"
                            ".dataset.filter") == f and shown_ids(b) == want,
               what="the %s tasks %s" % (f, want))
        assert ("filter=" + f in b.hash()) == (f != "open")
    # What each filter means, not only that the two agree.
    assert api_ids(token, "filter=overdue") == [ids["overdue"]]
    assert api_ids(token, "filter=done") == [ids["done"]]
    assert ids["week"] in api_ids(token, "filter=upcoming")
    b.open("/tasks?filter=overdue")
    b.wait(lambda: shown_ids(b) == [ids["overdue"]], what="the overdue task")
    assert b.text(in_task(ids["overdue"], ".badge")) == "Overdue"
    b.open("/tasks?filter=done")
    b.wait(lambda: shown_ids(b) == [ids["done"]], what="the done task")
    b.click(in_task(ids["done"], "a.task-lead"))
    b.wait(lambda: b.hash() == "#/leads/%d" % lead["id"], what="the task's lead")
    b.wait_text("#lead-title", lead["name"])
    b.wait_text("#lead-tasks", "Done already")


def test_manager_picks_a_user_and_a_sales_executive_cannot(admin_browser, admin, worker,
                                                          browsers):
    token, user, _, _ = worker
    b = admin_browser
    b.open("/tasks?filter=all")
    b.one("#t-user option[value='%d']" % user["id"])
    Select(b.one("#t-user")).select_by_value(str(user["id"]))
    want = api_ids(admin["token"], "filter=all&user_id=%d" % user["id"])
    assert len(want) == 4
    b.wait(lambda: shown_ids(b) == want, what="the worker's tasks")
    assert "user_id=%d" % user["id"] in b.hash() and "filter=all" in b.hash()
    assert all(user["name"] in el.text for el in b.find(".tasks .task-user"))
    # A SALES_EXECUTIVE has no such menu, and a user_id in its address is not read.
    s = browsers()
    s.use_session(token, user, "/tasks?user_id=%d" % admin["user"]["id"])
    s.wait(lambda: sorted(shown_ids(s)) == sorted(api_ids(token, "filter=open")), what="its own")
    assert s.find("#t-user") == []


def test_edit_and_a_412_reloads(browsers, admin, worker):
    token, user, _, tasks = worker
    tid = tasks["week"]["id"]
    b = browsers()
    b.use_session(token, user, "/tasks?filter=upcoming")
    b.click(in_task(tid, "button.edit"))
    b.wait(lambda: b.js("return document.activeElement.id") == "et-%d-title" % tid,
           what="focus in the edit form")
    new_title = "Renamed " + uuid.uuid4().hex[:6]
    b.fill(in_task(tid), title=new_title, notes="Bring the contract")
    set_due(b, "#et-%d-due_at" % tid, "2032-01-02T08:15")
    b.click(in_task(tid, "button[type=submit]"))
    b.wait_text(".task-list > .alert.ok", "Saved")
    t = task(token, tid)[1]
    assert t["title"] == new_title and t["notes"] == "Bring the contract"
    assert t["due_at"] == b.js("return new Date('2032-01-02T08:15').toISOString()")
    b.wait_text(in_task(tid, ".task-title"), new_title)

    # The task changes without the screen hearing of it (as when its event is still on the way:
    # here written past the API, so no event comes): Complete, sent with the version the screen
    # has, is refused, the list shows the task as it is now, and nothing is completed.
    theirs = "Theirs " + uuid.uuid4().hex[:6]
    sql("UPDATE tasks SET title = :'p1', version = version + 1 WHERE id = :'p2'", theirs, tid)
    b.click(in_task(tid, "button.complete"))
    b.wait_text(".task-list > .alert.warn", "changed by someone else")
    b.wait_text(in_task(tid, ".task-title"), theirs)
    assert task(token, tid)[1]["done_at"] is None

    # The same in the edit form, with the change coming live while it is open: the form says
    # so, keeps the user's edits and the version it was opened at; the save is refused, and
    # the next one applies the user's changes (the title only) over theirs (the notes).
    b.click(in_task(tid, "button.edit"))
    mine = "Mine " + uuid.uuid4().hex[:6]
    b.fill(in_task(tid), title=mine)
    r = request("PATCH", "/api/tasks/%d" % tid, {"notes": "their notes"}, token=admin["token"])
    assert r.status == 200, r.text
    b.wait_text(in_task(tid, ".alert.warn"), "has just changed this task")
    b.click(in_task(tid, "button[type=submit]"))
    b.wait_text(in_task(tid, ".alert.warn"), "Your changes were not saved")
    assert task(token, tid)[1]["title"] == theirs
    assert b.js("return document.querySelector('#et-%d-title').value" % tid) == mine
    b.click(in_task(tid, "button[type=submit]"))
    b.wait_text(".task-list > .alert.ok", "Saved")
    t = task(token, tid)[1]
    assert t["title"] == mine and t["notes"] == "their notes"


def test_every_task_control_has_an_accessible_name(admin_browser, admin):
    b = admin_browser
    lead = new_lead(admin["token"])
    t = new_task(admin["token"], lead["id"])
    b.open("/tasks?filter=all")
    b.one("#t-user option:nth-child(2)")
    assert unnamed_controls(b) == []
    b.open("/leads/%d" % lead["id"])
    b.click("#lead-tasks summary")
    b.one("#nt-user_id option:nth-child(2)")
    b.click(in_task(t["id"], "button.edit"))
    b.one("#et-%d-user_id option:nth-child(2)" % t["id"])
    assert unnamed_controls(b) == []


# --- live: task.due -----------------------------------------------------------------------------

def test_task_due_from_the_stream_shows_a_notice_and_refreshes_the_list(browsers, admin):
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    lead = new_lead(token)
    b = browsers()
    b.use_session(token, user, "/tasks?filter=overdue")
    b.wait_text(".tasks", "No tasks here.")
    title = "Due in a moment " + uuid.uuid4().hex[:6]
    t = new_task(token, lead["id"], title=title, due_at=at(3))
    # crm-mailer sends the reminder and the task.due event at its due time: the console says so
    # and the overdue list, reloaded by the event, now holds it.
    b.wait_text(".toast.due", title, timeout=20)
    b.wait(lambda: shown_ids(b) == [t["id"]], timeout=5, what="the task in the overdue list")
    b.click("#bell")
    b.wait_text("#bell-list", "Task due: %s (lead #%d)" % (title, lead["id"]))
    b.click("#bell")


# --- field history in the timeline ---------------------------------------------------------------

def test_a_patch_shows_its_field_diff_in_the_timeline(sales_browser, sales_user):
    token, _ = sales_user
    lead = new_lead(token, name="Before rename", source="OTHER", value=1200)
    b = sales_browser
    b.open("/leads/%d" % lead["id"])
    r = request("PATCH", "/api/leads/%d" % lead["id"],
                {"name": "After rename", "phone": "+1 555 0100", "source": "REFERRAL",
                 "value": 2500.5, "notes": "<i>not markup</i>"}, token=token)
    assert r.status == 200, r.text
    act = r.json["activity"]
    # The sales executive's own edit reaches its open page through the stream.
    li = b.one("#timeline li[data-activity-id='%d']" % act["id"], timeout=5)
    assert li.find_element("css selector", "strong").text == "Edited name, phone, source, value, notes"
    lines = {el.get_attribute("data-field"): el.text
             for el in b.find("#timeline li[data-activity-id='%d'] .changes li" % act["id"])}
    assert lines == {
        "name": "Name: Before rename → After rename",
        "phone": "Phone: (none) → +1 555 0100",
        "source": "Source: Other → Referral",
        "value": "Value: 1,200.00 → 2,500.50",
        "notes": "Notes: (none) → <i>not markup</i>",
    }
    # The same after a reload, from GET /api/leads/:id.
    b.open("/leads/%d" % lead["id"])
    b.wait_text("#timeline li[data-activity-id='%d'] .changes" % act["id"], "Before rename → After rename")


# --- CSV export ---------------------------------------------------------------------------------

def downloads_into(b, path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    b.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                             {"behavior": "allow", "downloadPath": path})


def downloaded(b, path, name="leads.csv", timeout=10):
    """The bytes of the file once the browser has finished writing it."""
    def done():
        files = os.listdir(path)
        return name in files and not any(f.endswith(".crdownload") for f in files)
    b.wait(done, timeout, "the download of " + name)
    with open(os.path.join(path, name), "rb") as f:
        return f.read()


def test_export_button_downloads_the_lists_filters_and_sort(browsers, admin):
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    tag = "exp" + uuid.uuid4().hex[:8]
    for name, status, value in (("%s Alpha, Inc." % tag, "NEW", 10), ("%s =1+1" % tag, "NEW", 30),
                                ('%s "Quoted"' % tag, "NEW", 20), ("%s Other" % tag, "WON", 99)):
        lead = new_lead(token, name=name, value=value, phone="+1 555 0100")
        if status != "NEW":
            r = request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": status}, token=token)
            assert r.status == 200, r.text
    b = browsers()
    b.use_session(token, user, "/leads?q=%s&status=NEW&sort=-value" % tag)
    b.wait(lambda: len(b.find("tr[data-lead-id]")) == 3, what="the three NEW leads")
    path = os.path.join(DOWNLOADS, tag)
    downloads_into(b, path)
    b.click("#export-csv")
    b.wait_text(".alert.ok", "Exported leads.csv")
    got = downloaded(b, path)
    r = request("GET", "/api/leads.csv?q=%s&status=NEW&sort=-value" % tag, token=token)
    assert r.status == 200
    assert got == r.body
    rows = got.decode().split("\r\n")
    assert len(rows) == 5 and rows[-1] == ""  # header, three leads, the last CRLF
    assert [row.split(",")[1] for row in rows[1:4]] == ["%s =1+1" % tag, '"%s ""Quoted"""' % tag,
                                                         '"%s Alpha' % tag]
    # Another view, another file: every status, oldest first.
    b.open("/leads?q=%s&sort=created_at" % tag)
    b.wait(lambda: len(b.find("tr[data-lead-id]")) == 4, what="the four leads")
    os.remove(os.path.join(path, "leads.csv"))
    b.click("#export-csv")
    got = downloaded(b, path)
    r = request("GET", "/api/leads.csv?q=%s&sort=created_at" % tag, token=token)
    assert got == r.body and got.count(b"\r\n") == 5


def test_refused_export_downloads_nothing_and_ends_the_session(browsers, admin):
    """The export's 401 is handled as every request's: back to sign-in, no file."""
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    b = browsers()
    b.use_session(token, user, "/leads")
    path = os.path.join(DOWNLOADS, "refused-" + uuid.uuid4().hex[:6])
    downloads_into(b, path)
    b.js("const s = JSON.parse(sessionStorage.getItem('crm.session'));"
         "s.token = 'not-a-token'; sessionStorage.setItem('crm.session', JSON.stringify(s))")
    b.click("#export-csv")
    b.wait_text("main .alert", "session has ended")
    assert b.hash() == "#/login"
    time.sleep(0.5)  # a download would have started by now
    assert os.listdir(path) == []
