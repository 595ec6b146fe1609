"""The notification inbox: which events fill whose inbox (and which do not), row security for
every role, ids shared with the event stream, the unread count, read and read-all, paging."""
import datetime
import json
import time

import pytest

from conftest import kept_plan, make_user, request, sql
from sse import Stream


def at(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def new_lead(token, owner_id=None, name="Inbox lead"):
    body = {"name": name}
    if owner_id is not None:
        body["owner_id"] = owner_id
    r = request("POST", "/api/leads", body, token=token)
    assert r.status == 201, r.text
    return r.json["lead"]


def inbox(token, query=""):
    """Every notification of the caller's inbox (all pages), newest first."""
    items, cursor = [], None
    while True:
        q = query + ("&cursor=" + cursor if cursor else "")
        r = request("GET", "/api/notifications?limit=100&" + q, token=token)
        assert r.status == 200, r.text
        items += r.json["data"]
        cursor = r.json["page"]["next_cursor"]
        if cursor is None:
            return items


def about(token, lead_id):
    """(type, reason) of the caller's notifications about one lead, oldest first."""
    return [(n["type"], n["reason"]) for n in reversed(inbox(token)) if n["lead_id"] == lead_id]


def unread(token):
    r = request("GET", "/api/notifications/unread-count", token=token)
    assert r.status == 200, r.text
    return r.json["unread"]


def rows_about(lead_id):
    """Every inbox row about a lead, whoever's: (user, type, reason)."""
    return sql("SELECT user_id, type, reason FROM notifications WHERE lead_id = :'p1'"
               " ORDER BY event_id, user_id", lead_id)


@pytest.fixture
def people(admin):
    p = {"ADMIN": (admin["token"], admin["user"])}
    for role in ("MANAGER", "SALES_EXECUTIVE"):
        p[role] = make_user(admin["token"], role)
    p["B"] = make_user(admin["token"], "SALES_EXECUTIVE")
    return p


# --- which events fill whose inbox ----------------------------------------------------------

def test_assignment_tells_the_new_owner_and_the_one_it_was_taken_from(people):
    mtoken, manager = people["MANAGER"]
    atoken, a = people["SALES_EXECUTIVE"]
    btoken, b = people["B"]
    lead = new_lead(mtoken, owner_id=a["id"])  # given to A at its creation, by another user
    r = request("PATCH", "/api/leads/%d/assign" % lead["id"], {"owner_id": b["id"]}, token=mtoken)
    assert r.status == 200, r.text
    assert about(btoken, lead["id"]) == [("lead.assigned", "ASSIGNED")]
    assert about(atoken, lead["id"]) == [("lead.created", "ASSIGNED"),
                                         ("lead.assigned", "UNASSIGNED")]
    assert about(mtoken, lead["id"]) == []  # its own actions
    got = inbox(btoken)[0]
    assert got["lead_id"] == lead["id"] and got["actor"] == {"id": manager["id"],
                                                             "name": manager["name"]}
    assert got["data"]["owner"]["id"] == b["id"] and got["read_at"] is None
    assert got["activity"]["type"] == "ASSIGNMENT"
    # Nobody else has a row about it.
    assert sorted(rows_about(lead["id"])) == sorted([[str(a["id"]), "lead.created", "ASSIGNED"],
                                                     [str(b["id"]), "lead.assigned", "ASSIGNED"],
                                                     [str(a["id"]), "lead.assigned",
                                                      "UNASSIGNED"]])


def test_the_inbox_page_gives_each_notification_its_own_actor(people):
    """The page joins each notification's actor (lib/db.c notification_page): it gives what
    crm_notification_json of the row gives, which looks the actor up by id."""
    mtoken, manager = people["MANAGER"]
    atoken, a = people["SALES_EXECUTIVE"]
    lead = new_lead(atoken)
    assert request("POST", "/api/leads/%d/activity" % lead["id"],
                   {"type": "CALL", "content": "called"}, token=mtoken).status == 201
    items = [n for n in inbox(atoken) if n["lead_id"] == lead["id"]]
    assert items and all(n["actor"] == {"id": manager["id"], "name": manager["name"]}
                         for n in items)
    got = {int(i): json.loads(j) for i, j in sql(
        "SELECT event_id, crm_notification_json(n) FROM notifications n"
        " WHERE user_id = :'p1' AND lead_id = :'p2'", a["id"], lead["id"])}
    assert items == [got[n["id"]] for n in items]


def test_own_actions_on_own_lead_tell_nobody(people):
    atoken, _ = people["SALES_EXECUTIVE"]
    lead = new_lead(atoken)
    before = unread(atoken)
    assert request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": "CONTACTED"},
                   token=atoken).status == 200
    assert request("POST", "/api/leads/%d/activity" % lead["id"],
                   {"type": "CALL", "content": "rang"}, token=atoken).status == 201
    assert request("PATCH", "/api/leads/%d" % lead["id"], {"company": "Acme"},
                   token=atoken).status == 200
    assert sql("SELECT count(*) FROM events WHERE lead_id = :'p1'", lead["id"]) == [["4"]]
    assert about(atoken, lead["id"]) == []
    assert unread(atoken) == before
    assert rows_about(lead["id"]) == []


def test_changes_by_someone_else_tell_the_owner(people):
    mtoken, _ = people["MANAGER"]
    atoken, a = people["SALES_EXECUTIVE"]
    lead = new_lead(atoken)
    r = request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": "QUALIFIED",
                                                               "note": "budget ok"}, token=mtoken)
    assert r.status == 200, r.text
    assert request("POST", "/api/leads/%d/activity" % lead["id"],
                   {"type": "MEETING", "content": "demo"}, token=mtoken).status == 201
    # An edit of the lead's fields is not one of the inbox's events (its field history is).
    assert request("PATCH", "/api/leads/%d" % lead["id"], {"phone": "123"},
                   token=mtoken).status == 200
    assert about(atoken, lead["id"]) == [("lead.status_changed", "STATUS_CHANGED"),
                                         ("activity.created", "ACTIVITY")]
    activity, status = inbox(atoken)[:2]
    assert status["data"]["status"] == "QUALIFIED"
    assert status["activity"]["meta"]["from"] == "NEW" and status["activity"]["meta"]["to"] == \
        "QUALIFIED" and status["activity"]["content"] == "budget ok"
    assert activity["data"]["content"] == "demo" and activity["activity"] is None
    assert [r[0] for r in rows_about(lead["id"])] == [str(a["id"])] * 2


def test_a_task_due_tells_its_assignee(people):
    atoken, a = people["SALES_EXECUTIVE"]
    mtoken, _ = people["MANAGER"]
    lead = new_lead(mtoken, owner_id=people["B"][1]["id"])
    # The manager gives A a task on B's lead; its reminder is A's, though A did not act.
    r = request("POST", "/api/leads/%d/tasks" % lead["id"],
                {"title": "Chase", "due_at": at(2), "user_id": a["id"]}, token=mtoken)
    assert r.status == 201, r.text
    task = r.json["task"]
    deadline = time.time() + 20
    while time.time() < deadline and not about(atoken, lead["id"]):
        time.sleep(0.2)
    assert about(atoken, lead["id"]) == [("task.due", "TASK_DUE")]
    assert inbox(atoken)[0]["data"]["id"] == task["id"]
    # The other task events (created: by someone else) are not in it; B's has the lead only.
    assert about(people["B"][0], lead["id"]) == [("lead.created", "ASSIGNED")]
    # Its own task falling due is in its inbox too: a reminder is not an action.
    own = request("POST", "/api/leads/%d/tasks" % new_lead(atoken)["id"],
                  {"title": "Mine", "due_at": at(1)}, token=atoken).json["task"]
    deadline = time.time() + 20
    while time.time() < deadline and not about(atoken, own["lead_id"]):
        time.sleep(0.2)
    assert about(atoken, own["lead_id"]) == [("task.due", "TASK_DUE")]


def test_a_completed_task_is_not_due(people):
    atoken, _ = people["SALES_EXECUTIVE"]
    lead = new_lead(atoken)
    task = request("POST", "/api/leads/%d/tasks" % lead["id"], {"title": "Done", "due_at": at(2)},
                   token=atoken).json["task"]
    assert request("POST", "/api/tasks/%d/complete" % task["id"], token=atoken).status == 200
    time.sleep(4)
    assert sql("SELECT count(*) FROM events WHERE type = 'task.due' AND lead_id = :'p1'",
               lead["id"]) == [["0"]]
    assert about(atoken, lead["id"]) == []


# --- ids shared with the stream ---------------------------------------------------------------

def test_a_pushed_event_id_is_the_notification_to_mark_read(people):
    mtoken, _ = people["MANAGER"]
    btoken, b = people["B"]
    stream = Stream(token=btoken)
    try:
        lead = new_lead(mtoken, owner_id=people["SALES_EXECUTIVE"][1]["id"])
        request("PATCH", "/api/leads/%d/assign" % lead["id"], {"owner_id": b["id"]}, token=mtoken)
        assert stream.wait(lambda ms: any(m["event"] == "lead.assigned" for m in ms))
        pushed = [m for m in stream.messages if m["event"] == "lead.assigned"][0]
        assert json.loads(pushed["data"])["lead_id"] == lead["id"]
        assert inbox(btoken)[0]["id"] == pushed["id"]
        r = request("POST", "/api/notifications/%d/read" % pushed["id"], token=btoken)
        assert r.status == 200, r.text
        n = r.json["notification"]
        assert n["id"] == pushed["id"] and n["read_at"] is not None
        assert n["data"] == json.loads(pushed["data"])["data"]
    finally:
        stream.close()


# --- routes, roles and row security -----------------------------------------------------------

@pytest.mark.parametrize("role", ["ADMIN", "MANAGER", "SALES_EXECUTIVE"])
def test_every_role_reads_and_marks_its_own_inbox_only(people, role):
    token, me = make_user(people["ADMIN"][0], role)
    otoken, other = make_user(people["ADMIN"][0], "SALES_EXECUTIVE")
    giver = people["MANAGER"][0]
    mine = [new_lead(giver, owner_id=me["id"])["id"] for _ in range(3)]
    theirs = new_lead(giver, owner_id=other["id"])["id"]
    items = inbox(token)
    assert [n["lead_id"] for n in items] == mine[::-1]  # newest first, nothing else
    assert [n["lead_id"] for n in inbox(otoken)] == [theirs]
    assert unread(token) == 3
    their_id = inbox(otoken)[0]["id"]
    # Another user's notification is not found, for every role (an ADMIN's inbox is its own).
    r = request("POST", "/api/notifications/%d/read" % their_id, token=token)
    assert r.status == 404 and r.error_code() == "not_found"
    assert r.header("x-request-id")
    assert unread(otoken) == 1
    assert sql("SELECT read_at IS NULL FROM notifications WHERE event_id = :'p1'",
               their_id) == [["t"]]
    # Read one: twice, the same read_at.
    first = request("POST", "/api/notifications/%d/read" % items[1]["id"], token=token)
    assert first.status == 200 and first.json["notification"]["read_at"] is not None
    again = request("POST", "/api/notifications/%d/read" % items[1]["id"], token=token)
    assert again.status == 200 and again.json == first.json
    assert unread(token) == 2
    assert [n["id"] for n in inbox(token, "unread=1")] == [items[0]["id"], items[2]["id"]]
    # Read all: the rest of its own, not the other's; again marks nothing.
    r = request("POST", "/api/notifications/read-all", token=token)
    assert r.status == 200 and r.json == {"marked": 2}
    assert request("POST", "/api/notifications/read-all", token=token).json == {"marked": 0}
    assert unread(token) == 0 and inbox(token, "unread=1") == []
    assert unread(otoken) == 1
    assert all(n["read_at"] is not None for n in inbox(token))


def test_read_all_up_to_leaves_newer_ones_unread(people):
    token, me = make_user(people["ADMIN"][0], "SALES_EXECUTIVE")
    for _ in range(3):
        new_lead(people["MANAGER"][0], owner_id=me["id"])
    ids = [n["id"] for n in inbox(token)]
    r = request("POST", "/api/notifications/read-all?up_to=%d" % ids[1], token=token)
    assert r.status == 200 and r.json == {"marked": 2}
    assert [n["id"] for n in inbox(token, "unread=1")] == [ids[0]]
    r = request("POST", "/api/notifications/read-all?up_to=0", token=token)
    assert r.status == 400 and r.error_code() == "invalid_query"
    assert unread(token) == 1


def test_unauthenticated_and_bad_ids(people):
    for method, path in (("GET", "/api/notifications"),
                         ("GET", "/api/notifications/unread-count"),
                         ("POST", "/api/notifications/1/read"),
                         ("POST", "/api/notifications/read-all")):
        r = request(method, path)
        assert r.status == 401 and r.error_code() == "unauthenticated"
        r = request(method, path, token="not.a.token")
        assert r.status == 401
    token = people["SALES_EXECUTIVE"][0]
    for bad in ("0", "-1", "abc", "99999999999999999999", "9223372036854775807"):
        r = request("POST", "/api/notifications/%s/read" % bad, token=token)
        assert r.status == 404 and r.error_code() == "not_found", bad
    r = request("DELETE", "/api/notifications/1/read", token=token)
    assert r.status == 405 and r.header("Allow") == "POST"


# --- paging ---------------------------------------------------------------------------------

def test_pages_newest_first_by_cursor(people):
    token, me = make_user(people["ADMIN"][0], "SALES_EXECUTIVE")
    otoken, _ = make_user(people["ADMIN"][0], "SALES_EXECUTIVE")
    for _ in range(5):
        new_lead(people["MANAGER"][0], owner_id=me["id"])
    everything = [n["id"] for n in inbox(token)]
    assert len(everything) == 5 and everything == sorted(everything, reverse=True)
    seen, cursor, pages = [], None, 0
    while True:
        r = request("GET", "/api/notifications?limit=2" + ("&cursor=" + cursor if cursor else ""),
                    token=token)
        assert r.status == 200 and r.json["page"]["limit"] == 2
        assert len(r.json["data"]) <= 2
        seen += [n["id"] for n in r.json["data"]]
        pages += 1
        cursor = r.json["page"]["next_cursor"]
        if cursor is None:
            break
    assert seen == everything and pages == 3
    # The unread filter pages the same way; a cursor is bound to its filter and its caller.
    request("POST", "/api/notifications/%d/read" % everything[1], token=token)
    r = request("GET", "/api/notifications?limit=2&unread=1", token=token)
    assert [n["id"] for n in r.json["data"]] == [everything[0], everything[2]]
    cursor = r.json["page"]["next_cursor"]
    r = request("GET", "/api/notifications?limit=2&unread=1&cursor=" + cursor, token=token)
    assert [n["id"] for n in r.json["data"]] == everything[3:]
    assert r.json["page"]["next_cursor"] is None
    for query, t in (("unread=0&cursor=" + cursor, token), ("unread=1&cursor=" + cursor, otoken),
                     ("cursor=garbage", token), ("unread=yes", token), ("limit=0", token),
                     ("limit=101", token)):
        r = request("GET", "/api/notifications?" + query, token=t)
        assert r.status == 400 and r.error_code() == "invalid_query", query
    r = request("GET", "/api/notifications?limit=5&unread=0", token=token)
    assert [n["id"] for n in r.json["data"]] == everything
    assert r.json["page"]["next_cursor"] is None


def test_the_inbox_outlives_the_events_purge(people):
    """crm-events purges events after 24 hours; the inbox keeps its copy (as the purge does,
    the event row is deleted here)."""
    token, me = make_user(people["ADMIN"][0], "SALES_EXECUTIVE")
    lead = new_lead(people["MANAGER"][0], owner_id=me["id"], name="Kept")
    n = inbox(token)[0]
    sql("DELETE FROM events WHERE id = :'p1'", n["id"])
    assert sql("SELECT count(*) FROM events WHERE id = :'p1'", n["id"]) == [["0"]]
    assert inbox(token) == [n] and n["data"]["name"] == "Kept" and n["lead_id"] == lead["id"]
    r = request("POST", "/api/notifications/%d/read" % n["id"], token=token)
    assert r.status == 200 and r.json["notification"]["data"] == n["data"]


def test_each_inbox_page_keeps_one_plan_that_reads_its_index():
    """The inbox's two pages (all, unread only) are prepared, so that the notification's JSON
    is planned once a connection; their kept plan serves every call, so it must read the index
    each page needs, with a cursor's bound in the index condition, cursor or not (lib/db.c
    NOTIFICATION_PAGE)."""
    for name, index in (("notification_page", "notifications_pkey"),
                        ("notification_unread_page", "notifications_unread")):
        for values in ("1, 21, NULL", "1, 21, 1000"):
            plan = kept_plan(name, "bigint, bigint, bigint", values)
            assert "Index Scan Backward using %s " % index in plan, plan
            assert "event_id < COALESCE($3" in plan, plan
