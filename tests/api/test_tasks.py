"""Follow-up tasks: the routes, their row security, If-Match, validation, the completion on the
timeline, and the reminders crm-mailer queues at due_at (one per due time, with two mailers too)
with their task.due events on the stream."""
import datetime
import email
import email.policy
import json
import os
import signal
import time
import uuid

import pytest

from conftest import VAR, make_user, own_json, request, sql
from sse import Stream
from test_mail import start_mailer, stop


@pytest.fixture(scope="module")
def people(admin):
    """A caller of each role, plus another sales executive whose leads are 'foreign'."""
    p = {"ADMIN": (admin["token"], admin["user"])}
    for role in ("MANAGER", "SALES_EXECUTIVE"):
        p[role] = make_user(admin["token"], role)
    p["OTHER"] = make_user(admin["token"], "SALES_EXECUTIVE")
    return p


def at(seconds):
    """An RFC 3339 time seconds from now, in milliseconds (the API's precision)."""
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def new_lead(people, owner_key, name="Task lead"):
    r = request("POST", "/api/leads", {"name": name, "owner_id": people[owner_key][1]["id"]},
                token=people["ADMIN"][0])
    assert r.status == 201, r.text
    return r.json["lead"]


def new_task(token, lead_id, **body):
    body.setdefault("title", "Call back")
    body.setdefault("due_at", at(3600))
    r = request("POST", "/api/leads/%d/tasks" % lead_id, body, token=token)
    assert r.status == 201, r.text
    return r.json["task"]


def task_state(task_id):
    """What a refused write must leave alone: the row and its events."""
    return (sql("SELECT title, notes, due_at, done_at, user_id, version FROM tasks"
                " WHERE id = :'p1'", task_id),
            sql("SELECT count(*) FROM events WHERE type LIKE 'task.%' AND payload->>'id' = :'p1'",
                task_id))


def reminders(smtp, address):
    """The reminder e-mails address received, parsed."""
    msgs = [email.message_from_bytes(raw, policy=email.policy.default)
            for raw in smtp.inbox.to(address)]
    return [m for m in msgs if m["Subject"].startswith("Reminder: ")]


def wait_reminders(smtp, address, count, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline and len(reminders(smtp, address)) < count:
        time.sleep(0.1)
    return reminders(smtp, address)


# --- the routes --------------------------------------------------------------------------------

def test_create_defaults_to_the_lead_owner_and_reads_back(people):
    token, me = people["SALES_EXECUTIVE"]
    lead = new_lead(people, "SALES_EXECUTIVE")
    r = request("POST", "/api/leads/%d/tasks" % lead["id"],
                {"title": "  Send the proposal  ", "due_at": "2031-05-04T09:30:00+02:00",
                 "notes": "with the discount"}, token=token)
    assert r.status == 201, r.text
    task = r.json["task"]
    assert task["title"] == "Send the proposal"  # trimmed
    assert task["due_at"] == "2031-05-04T07:30:00.000Z" and task["done_at"] is None
    assert task["user"] == {"id": me["id"], "name": me["name"]}
    assert task["created_by"]["id"] == me["id"] and task["lead_id"] == lead["id"]
    assert task["version"] == 1
    assert r.header("location") == "/api/tasks/%d" % task["id"]
    assert r.header("etag") == '"1"'
    got = request("GET", "/api/tasks/%d" % task["id"], token=token)
    assert got.status == 200 and got.json["task"] == task and got.header("etag") == '"1"'
    listed = request("GET", "/api/leads/%d/tasks" % lead["id"], token=token)
    assert listed.status == 200
    assert listed.json == {"data": [task], "page": {"limit": 20, "offset": 0, "total": 1}}
    mine = request("GET", "/api/tasks?filter=all&limit=100", token=token)
    assert task["id"] in [t["id"] for t in mine.json["data"]]
    # An unowned lead's task goes to whoever made it.
    r = request("POST", "/api/leads", {"name": "Nobody's"}, token=people["ADMIN"][0])
    manager_token, manager = people["MANAGER"]
    t = new_task(manager_token, r.json["lead"]["id"])
    assert t["user"]["id"] == manager["id"]


def test_task_pages_give_each_task_its_own_users(people):
    """The pages join each task's assignee and creator (lib/db.c TASK_USERS): told apart, they
    give what crm_task_json of the row gives, which looks them up by id."""
    lead = new_lead(people, "SALES_EXECUTIVE")
    sales = people["SALES_EXECUTIVE"]
    tasks = [new_task(people["ADMIN"][0], lead["id"], user_id=sales[1]["id"], due_at=at(60 + i))
             for i in range(2)]
    tasks.append(new_task(sales[0], lead["id"], due_at=at(90)))
    got = own_json("tasks", tasks)
    assert [g["created_by"]["id"] for g in got] == [people["ADMIN"][1]["id"]] * 2 + [
        sales[1]["id"]] and all(g["user"]["id"] == sales[1]["id"] for g in got)
    r = request("GET", "/api/leads/%d/tasks" % lead["id"], token=people["ADMIN"][0])
    assert r.status == 200 and r.json["data"] == got
    r = request("GET", "/api/tasks?filter=all&limit=100", token=sales[0])
    assert r.status == 200
    mine = [t for t in r.json["data"] if t["lead_id"] == lead["id"]]
    assert mine == got


def test_admin_assigns_anyone_active(people):
    lead = new_lead(people, "SALES_EXECUTIVE")
    other = people["OTHER"][1]
    t = new_task(people["ADMIN"][0], lead["id"], user_id=other["id"])
    assert t["user"]["id"] == other["id"]
    r = request("POST", "/api/leads/%d/tasks" % lead["id"],
                {"title": "x", "due_at": at(60), "user_id": 999999999}, token=people["ADMIN"][0])
    assert r.status == 422 and list(r.json["error"]["fields"]) == ["user_id"]
    r = request("PATCH", "/api/tasks/%d" % t["id"], {"user_id": 999999999},
                token=people["ADMIN"][0])
    assert r.status == 422 and list(r.json["error"]["fields"]) == ["user_id"]
    assert task_state(t["id"])[0][0][4] == str(other["id"])


def test_validation_names_the_field(people):
    token = people["SALES_EXECUTIVE"][0]
    lead = new_lead(people, "SALES_EXECUTIVE")
    path = "/api/leads/%d/tasks" % lead["id"]
    cases = [
        ({}, {"title", "due_at"}),
        ({"title": "", "due_at": at(60)}, {"title"}),
        ({"title": "   ", "due_at": at(60)}, {"title"}),
        ({"title": "x" * 201, "due_at": at(60)}, {"title"}),
        ({"title": "x", "due_at": "tomorrow"}, {"due_at"}),
        ({"title": "x", "due_at": "2026-02-30T10:00:00Z"}, {"due_at"}),
        ({"title": "x", "due_at": None}, {"due_at"}),
        ({"title": "x", "due_at": at(60), "notes": "n" * 10001}, {"notes"}),
        ({"title": "x", "due_at": at(60), "user_id": "me"}, {"user_id"}),
        ({"title": "x", "due_at": at(60), "done_at": at(0)}, {"done_at"}),
    ]
    for body, fields in cases:
        r = request("POST", path, body, token=token)
        assert r.status == 422, (body, r.text)
        assert r.error_code() == "validation_failed"
        assert set(r.json["error"]["fields"]) == fields, (body, r.json)
    assert sql("SELECT count(*) FROM tasks WHERE lead_id = :'p1'", lead["id"]) == [["0"]]
    t = new_task(token, lead["id"])
    before = task_state(t["id"])
    for body, fields in [({}, {"body"}), ({"title": None}, {"title"}),
                         ({"due_at": None}, {"due_at"}), ({"user_id": None}, {"user_id"}),
                         ({"lead_id": 3}, {"lead_id"})]:
        r = request("PATCH", "/api/tasks/%d" % t["id"], body, token=token)
        assert r.status == 422 and set(r.json["error"]["fields"]) == fields, (body, r.text)
    assert request("PATCH", "/api/tasks/%d" % t["id"], raw=b"{", token=token,
                   headers={"Content-Type": "application/json"}).status == 400
    assert task_state(t["id"]) == before


def test_patch_with_if_match(people):
    token = people["SALES_EXECUTIVE"][0]
    t = new_task(token, new_lead(people, "SALES_EXECUTIVE")["id"], notes="first")
    path = "/api/tasks/%d" % t["id"]
    r = request("PATCH", path, {"title": "Renamed", "notes": None}, token=token,
                headers={"If-Match": '"1"'})
    assert r.status == 200, r.text
    assert r.json["task"]["title"] == "Renamed" and r.json["task"]["notes"] is None
    assert r.json["task"]["version"] == 2 and r.header("etag") == '"2"'
    before = task_state(t["id"])
    for tag in ('"1"', "1", '"abc"', '"3"'):
        r = request("PATCH", path, {"title": "Lost update"}, token=token, headers={"If-Match": tag})
        assert r.status == 412 and r.error_code() == "precondition_failed", tag
    for method, sub in (("POST", "/complete"), ("DELETE", "")):
        r = request(method, path + sub, token=token, headers={"If-Match": '"1"'})
        assert r.status == 412, (method, sub)
    assert task_state(t["id"]) == before
    r = request("PATCH", path, {"due_at": "2032-01-01T00:00:00Z"}, token=token,
                headers={"If-Match": '"2"'})
    assert r.status == 200 and r.json["task"]["version"] == 3
    assert r.json["task"]["due_at"] == "2032-01-01T00:00:00.000Z"


def test_complete_writes_the_timeline_and_reopen(people):
    token, me = people["SALES_EXECUTIVE"]
    lead = new_lead(people, "SALES_EXECUTIVE")
    t = new_task(token, lead["id"], title="Demo follow-up")
    r = request("POST", "/api/tasks/%d/complete" % t["id"], token=token,
                headers={"If-Match": '"1"'})
    assert r.status == 200, r.text
    done, activity = r.json["task"], r.json["activity"]
    assert done["done_at"] is not None and done["version"] == 2 and r.header("etag") == '"2"'
    assert activity["type"] == "TASK_COMPLETED" and activity["content"] == "Demo follow-up"
    assert activity["meta"] == {"task_id": t["id"]} and activity["actor"]["id"] == me["id"]
    timeline = request("GET", "/api/leads/%d/activities" % lead["id"], token=token).json["data"]
    assert timeline[0] == activity
    # Completing it again changes nothing.
    again = request("POST", "/api/tasks/%d/complete" % t["id"], token=token)
    assert again.status == 200 and again.json == {"task": done, "activity": None}
    assert sql("SELECT count(*) FROM activities WHERE lead_id = :'p1' AND type = 'TASK_COMPLETED'",
               lead["id"]) == [["1"]]
    r = request("POST", "/api/tasks/%d/reopen" % t["id"], token=token)
    assert r.status == 200 and r.json["task"]["done_at"] is None and r.json["activity"] is None
    assert r.json["task"]["version"] == 3
    r = request("POST", "/api/tasks/%d/reopen" % t["id"], token=token)
    assert r.status == 200 and r.json["task"]["version"] == 3
    events = sql("SELECT type, actor_id, owner_id, prev_owner_id FROM events"
                 " WHERE type LIKE 'task.%' AND payload->>'id' = :'p1' ORDER BY id", t["id"])
    uid = str(me["id"])
    assert events == [["task.created", uid, uid, uid], ["task.completed", uid, uid, uid],
                      ["task.reopened", uid, uid, uid]]


def test_delete(people):
    token = people["SALES_EXECUTIVE"][0]
    t = new_task(token, new_lead(people, "SALES_EXECUTIVE")["id"])
    r = request("DELETE", "/api/tasks/%d" % t["id"], token=token, headers={"If-Match": '"1"'})
    assert r.status == 204 and r.body == b""
    assert request("GET", "/api/tasks/%d" % t["id"], token=token).status == 404
    assert request("DELETE", "/api/tasks/%d" % t["id"], token=token).status == 404
    assert sql("SELECT payload FROM events WHERE type = 'task.deleted' AND payload->>'id' = :'p1'",
               t["id"]) == [['{"id": %d, "lead_id": %d}' % (t["id"], t["lead_id"])]]
    # A lead's deletion takes its tasks.
    lead = new_lead(people, "SALES_EXECUTIVE")
    t = new_task(token, lead["id"])
    assert request("DELETE", "/api/leads/%d" % lead["id"], token=people["ADMIN"][0]).status == 204
    assert sql("SELECT count(*) FROM tasks WHERE id = :'p1'", t["id"]) == [["0"]]


def test_bad_ids_are_404(people):
    token = people["ADMIN"][0]
    for path in ("/api/tasks/0", "/api/tasks/abc", "/api/tasks/99999999999"):
        assert request("GET", path, token=token).status == 404
        assert request("PATCH", path, {"title": "x"}, token=token).status == 404
        assert request("POST", path + "/complete", token=token).status == 404
    r = request("POST", "/api/leads/99999999999/tasks", {"title": "x", "due_at": at(60)},
                token=token)
    assert r.status == 404
    assert request("GET", "/api/leads/99999999999/tasks", token=token).status == 404
    assert request("GET", "/api/tasks").status == 401


# --- row security ------------------------------------------------------------------------------

def test_sales_executive_sees_own_leads_tasks_and_its_own_only(people):
    me_token, me = people["SALES_EXECUTIVE"]
    other_token, other = people["OTHER"]
    admin = people["ADMIN"][0]
    foreign_lead = new_lead(people, "OTHER")
    foreign = new_task(other_token, foreign_lead["id"])
    # Assigned to me on a lead that is not mine: I see and work the task, not the lead.
    mine_there = new_task(admin, foreign_lead["id"], user_id=me["id"])
    before = task_state(foreign["id"])
    assert request("GET", "/api/tasks/%d" % foreign["id"], token=me_token).status == 404
    for method, sub, body in (("PATCH", "", {"title": "x"}), ("POST", "/complete", None),
                              ("POST", "/reopen", None), ("DELETE", "", None)):
        r = request(method, "/api/tasks/%d%s" % (foreign["id"], sub), body, token=me_token)
        assert r.status == 404, (method, sub, r.text)
    assert request("GET", "/api/leads/%d/tasks" % foreign_lead["id"], token=me_token).status == 404
    r = request("POST", "/api/leads/%d/tasks" % foreign_lead["id"],
                {"title": "x", "due_at": at(60)}, token=me_token)
    assert r.status == 404
    assert task_state(foreign["id"]) == before
    assert request("GET", "/api/tasks/%d" % mine_there["id"], token=me_token).status == 200
    r = request("PATCH", "/api/tasks/%d" % mine_there["id"], {"notes": "on it"}, token=me_token)
    assert r.status == 200
    # The lead's owner sees every task on it, mine included.
    listed = request("GET", "/api/leads/%d/tasks" % foreign_lead["id"], token=other_token).json
    assert {t["id"] for t in listed["data"]} == {foreign["id"], mine_there["id"]}
    # Another user's list, or assigning to another user: 403.
    r = request("GET", "/api/tasks?user_id=%d" % other["id"], token=me_token)
    assert r.status == 403 and r.error_code() == "forbidden"
    assert request("GET", "/api/tasks?user_id=%d" % me["id"], token=me_token).status == 200
    own_lead = new_lead(people, "SALES_EXECUTIVE")
    r = request("POST", "/api/leads/%d/tasks" % own_lead["id"],
                {"title": "x", "due_at": at(60), "user_id": other["id"]}, token=me_token)
    assert r.status == 403
    r = request("PATCH", "/api/tasks/%d" % mine_there["id"], {"user_id": other["id"]},
                token=me_token)
    assert r.status == 403
    mine = request("GET", "/api/tasks?filter=all&limit=100", token=me_token).json["data"]
    assert mine_there["id"] in [t["id"] for t in mine]
    assert all(t["user"]["id"] == me["id"] for t in mine)


@pytest.mark.parametrize("role", ["ADMIN", "MANAGER"])
def test_admin_and_manager_see_and_change_any(people, role):
    token = people[role][0]
    other_token, other = people["OTHER"]
    lead = new_lead(people, "OTHER")
    t = new_task(other_token, lead["id"])
    assert request("GET", "/api/tasks/%d" % t["id"], token=token).status == 200
    assert request("GET", "/api/leads/%d/tasks" % lead["id"], token=token).status == 200
    r = request("GET", "/api/tasks?user_id=%d&filter=all&limit=100" % other["id"], token=token)
    assert r.status == 200 and t["id"] in [x["id"] for x in r.json["data"]]
    assert request("PATCH", "/api/tasks/%d" % t["id"], {"title": "y"}, token=token).status == 200
    assert request("POST", "/api/tasks/%d/complete" % t["id"], token=token).status == 200
    assert request("DELETE", "/api/tasks/%d" % t["id"], token=token).status == 204


def test_filters_and_paging(admin):
    token, me = make_user(admin["token"], "SALES_EXECUTIVE")
    lead = request("POST", "/api/leads", {"name": "Filters"}, token=token).json["lead"]
    overdue = new_task(token, lead["id"], title="overdue", due_at=at(-7200))
    soon = new_task(token, lead["id"], title="soon", due_at=at(120))
    later = new_task(token, lead["id"], title="later", due_at=at(3 * 86400))
    done = new_task(token, lead["id"], title="done", due_at=at(-60))
    assert request("POST", "/api/tasks/%d/complete" % done["id"], token=token).status == 200

    def ids(query):
        r = request("GET", "/api/tasks?" + query, token=token)
        assert r.status == 200, r.text
        return [t["id"] for t in r.json["data"]]

    assert ids("") == [overdue["id"], soon["id"], later["id"]]  # open, by due time
    assert ids("filter=open") == [overdue["id"], soon["id"], later["id"]]
    assert ids("filter=overdue") == [overdue["id"]]
    assert ids("filter=upcoming") == [soon["id"], later["id"]]
    assert ids("filter=done") == [done["id"]]
    assert ids("filter=all") == [overdue["id"], done["id"], soon["id"], later["id"]]
    # today: open and due this UTC day, whatever the hour (skipped too close to midnight).
    now = datetime.datetime.now(datetime.timezone.utc)
    if datetime.timedelta(hours=2, minutes=5) < now - now.replace(hour=0, minute=0) < \
            datetime.timedelta(hours=23, minutes=57):
        assert ids("filter=today") == [overdue["id"], soon["id"]]
    r = request("GET", "/api/tasks?filter=all&limit=2&offset=1", token=token)
    assert [t["id"] for t in r.json["data"]] == [done["id"], soon["id"]]
    assert r.json["page"] == {"limit": 2, "offset": 1, "total": 4}
    for bad in ("filter=late", "filter=", "user_id=abc", "user_id=0", "limit=0", "offset=-1"):
        r = request("GET", "/api/tasks?" + bad, token=token)
        assert r.status == 400 and r.error_code() == "invalid_query", bad
    # Someone else's list, read by the ADMIN.
    r = request("GET", "/api/tasks?filter=overdue&user_id=%d" % me["id"], token=admin["token"])
    assert [t["id"] for t in r.json["data"]] == [overdue["id"]]


# --- reminders ---------------------------------------------------------------------------------

def check_reminder(msg, task, user, lead_name):
    assert msg["Subject"] == "Reminder: " + task["title"]
    assert msg["To"].addresses[0].addr_spec == user["email"]
    assert msg["Message-ID"].startswith("<task_due-")
    text = msg.get_body(("plain",)).get_content()
    assert task["title"] in text and lead_name in text and task["due_at"] in text


def test_reminder_once_at_its_time_with_its_event(admin, smtp):
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    watcher_token, _ = make_user(admin["token"], "SALES_EXECUTIVE")
    lead = request("POST", "/api/leads", {"name": "Zoë & <Co>"}, token=token).json["lead"]
    mine, manager_s, stranger = (Stream(token=token), Stream(token=admin["token"]),
                                 Stream(token=watcher_token))
    try:
        title = "Ring Zoë — ünïcode & <b>"
        task = new_task(token, lead["id"], title=title, due_at=at(3))
        due = time.time() + 3
        got = wait_reminders(smtp, user["email"], 1)
        assert len(got) == 1
        arrived = time.time()
        assert arrived >= due - 0.5, "sent before its due time"
        check_reminder(got[0], task, user, lead["name"])
        html = got[0].get_body(("html",)).get_content()
        assert "&lt;b&gt;" in html and "<b>" not in html

        def due_events(ms):
            return [m for m in ms if m["event"] == "task.due"
                    and json.loads(m["data"])["data"]["id"] == task["id"]]

        assert mine.wait(lambda ms: len(due_events(ms)) == 1)
        assert manager_s.wait(lambda ms: len(due_events(ms)) == 1)
        time.sleep(2.5)  # nothing more comes
        assert len(reminders(smtp, user["email"])) == 1
        assert len(due_events(mine.messages)) == 1
        assert due_events(stranger.messages) == []  # not its lead, not its task
        assert [m for m in stranger.messages
                if json.loads(m["data"])["lead_id"] == lead["id"]] == []
        rows = sql("SELECT kind, status FROM mail_outbox WHERE to_addr = :'p1' AND kind = 'task_due'",
                   user["email"])
        assert rows == [["task_due", "sent"]]
    finally:
        for s in (mine, manager_s, stranger):
            s.close()


def test_no_reminder_for_a_task_done_before_its_time(admin, smtp):
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    lead = request("POST", "/api/leads", {"name": "Done early"}, token=token).json["lead"]
    task = new_task(token, lead["id"], due_at=at(4))
    assert request("POST", "/api/tasks/%d/complete" % task["id"], token=token).status == 200
    past = new_task(token, lead["id"], due_at=at(-60), title="Already past")  # none either
    # Nor for one moved into the past: its due time is past when it is set.
    moved = new_task(token, lead["id"], due_at=at(3600), title="Moved to the past")
    r = request("PATCH", "/api/tasks/%d" % moved["id"], {"due_at": at(-30)}, token=token,
                headers={"If-Match": '"%d"' % moved["version"]})
    assert r.status == 200, r.text
    time.sleep(7)
    assert reminders(smtp, user["email"]) == []
    assert sql("SELECT count(*) FROM events WHERE type = 'task.due' AND payload->>'id' IN"
               " (:'p1', :'p2', :'p3')", task["id"], past["id"], moved["id"]) == [["0"]]


def test_moved_task_reminds_at_the_new_time_only(admin, smtp):
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    lead = request("POST", "/api/leads", {"name": "Moved"}, token=token).json["lead"]
    task = new_task(token, lead["id"], due_at=at(4))
    r = request("PATCH", "/api/tasks/%d" % task["id"], {"due_at": at(8)}, token=token)
    assert r.status == 200
    new_due = time.time() + 8
    time.sleep(6)
    assert reminders(smtp, user["email"]) == []  # not at the old time
    got = wait_reminders(smtp, user["email"], 1)
    assert len(got) == 1 and time.time() >= new_due - 0.5
    check_reminder(got[0], r.json["task"], user, lead["name"])
    # Moved again after its reminder: one more, at that time.
    r = request("PATCH", "/api/tasks/%d" % task["id"], {"due_at": at(2)}, token=token)
    assert len(wait_reminders(smtp, user["email"], 2)) == 2
    time.sleep(2)
    assert len(reminders(smtp, user["email"])) == 2


def test_two_mailers_send_each_reminder_once(admin, smtp, tmp_path):
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    lead = request("POST", "/api/leads", {"name": "Pair"}, token=token).json["lead"]
    log = open(tmp_path / "mailer2.log", "w")
    second = start_mailer(log)
    try:
        time.sleep(0.5)  # listening
        titles = ["Pair %02d %s" % (i, uuid.uuid4().hex[:6]) for i in range(20)]
        due = at(3)
        for title in titles:
            new_task(token, lead["id"], title=title, due_at=due)
        got = wait_reminders(smtp, user["email"], 20, timeout=30)
        time.sleep(2.5)  # a duplicate would have arrived by now
        got = reminders(smtp, user["email"])
        assert sorted(m["Subject"] for m in got) == sorted("Reminder: " + t for t in titles)
    finally:
        stop(second)
    assert sql("SELECT count(*) FROM events e JOIN tasks t ON t.id = (e.payload->>'id')::bigint"
               " WHERE e.type = 'task.due' AND t.lead_id = :'p1'", lead["id"]) == [["20"]]


def test_reminder_due_while_no_mailer_runs_goes_once_after_a_restart(admin, smtp, tmp_path):
    """The stack's mailer is paused; another mailer is stopped before the due time and a new one
    started after it: the new one sends the reminder, and the stack's, back, sends no second."""
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    lead = request("POST", "/api/leads", {"name": "Restart"}, token=token).json["lead"]
    pid = int(open(os.path.join(VAR, "run", "crm-mailer.pid")).read())
    path = tmp_path / "restart.log"
    log = open(path, "w")

    def running(count):
        """Waits until count mailers have said they started (and so handle SIGTERM)."""
        deadline = time.time() + 15
        while time.time() < deadline and path.read_text().count("started") < count:
            time.sleep(0.05)
        assert path.read_text().count("started") == count

    os.kill(pid, signal.SIGSTOP)
    try:
        first = start_mailer(log)
        running(1)
        new_task(token, lead["id"], due_at=at(2))
        stop(first)
        time.sleep(3.5)
        assert reminders(smtp, user["email"]) == []  # due, but nobody to send it
        again = start_mailer(log)
        running(2)
        try:
            assert len(wait_reminders(smtp, user["email"], 1)) == 1
        finally:
            stop(again)
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(2.5)
    assert len(reminders(smtp, user["email"])) == 1
