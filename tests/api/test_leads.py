"""Leads: validation rule by rule, paging, filters, sorting, If-Match, the timeline, atomicity."""
import json
import os
import uuid

import pytest

from conftest import VAR, make_user, register, request, sql, unique_email


@pytest.fixture(scope="module")
def tok(admin):
    return admin["token"]


def create(tok, **fields):
    body = {"name": "Lead %s" % uuid.uuid4().hex[:6]}
    body.update(fields)
    r = request("POST", "/api/leads", body, token=tok)
    assert r.status == 201, r.text
    return r.json["lead"]


# --- validation -------------------------------------------------------------------------------

INVALID = [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": 5}, "name"),
    ({"name": None}, "name"),
    ({"name": "a", "email": "not-an-address"}, "email"),
    ({"name": "a", "email": "a@" + "b" * 250 + ".io"}, "email"),
    ({"name": "a", "phone": "1" * 41}, "phone"),
    ({"name": "a", "company": "c" * 201}, "company"),
    ({"name": "a", "notes": "n" * 10001}, "notes"),
    ({"name": "a", "source": "TV"}, "source"),
    ({"name": "a", "status": "DONE"}, "status"),
    ({"name": "a", "value": -1}, "value"),
    ({"name": "a", "value": 1.005}, "value"),
    ({"name": "a", "value": "10"}, "value"),
    ({"name": "a", "value": 1e12}, "value"),
    ({"name": "a", "owner_id": 0}, "owner_id"),
    ({"name": "a", "owner_id": 1.5}, "owner_id"),
    ({"name": "a", "owner_id": 999999999}, "owner_id"),
    ({"name": "a", "colour": "red"}, "colour"),
]


@pytest.mark.parametrize("body,field", INVALID, ids=["%s-%d" % (f, i) for i, (b, f) in
                                                     enumerate(INVALID)])
def test_create_refuses(tok, body, field):
    before = sql("SELECT count(*) FROM leads")
    r = request("POST", "/api/leads", body, token=tok)
    assert r.status == 422, r.text
    assert r.error_code() == "validation_failed"
    assert field in r.json["error"]["fields"]
    assert sql("SELECT count(*) FROM leads") == before


def test_create_limits_and_defaults(tok):
    lead = create(tok, name="x" * 200, phone="1" * 40, company="c" * 200, notes="n" * 10000,
                  value=999999999999.99, email=" Buyer@Example.COM ")
    assert lead["value"] == 999999999999.99
    assert sql("SELECT value::text FROM leads WHERE id = :'p1'", lead["id"]) == \
        [["999999999999.99"]]
    assert lead["email"] == "Buyer@Example.COM"
    assert (lead["status"], lead["source"], lead["version"], lead["owner"]) == \
        ("NEW", "OTHER", 1, None)
    plain = create(tok, value=0.1)
    assert plain["value"] == 0.1
    assert create(tok, name="Å" * 200)["name"] == "Å" * 200  # characters, not bytes


def test_create_inactive_owner_is_422(tok, admin):
    _, user = make_user(tok, "SALES_EXECUTIVE")
    assert request("PATCH", "/api/users/%d" % user["id"], {"active": False}, token=tok).status \
        == 200
    r = request("POST", "/api/leads", {"name": "a", "owner_id": user["id"]}, token=tok)
    assert r.status == 422 and "owner_id" in r.json["error"]["fields"]


def test_malformed_bodies(tok):
    lead = create(tok)
    for method, path in (("POST", "/api/leads"), ("PATCH", "/api/leads/%d" % lead["id"]),
                         ("PATCH", "/api/leads/%d/status" % lead["id"]),
                         ("POST", "/api/leads/%d/activity" % lead["id"])):
        r = request(method, path, raw=b'{"name": ', token=tok,
                    headers={"Content-Type": "application/json"})
        assert r.status == 400 and r.error_code() == "invalid_json", path
        r = request(method, path, raw=b'["a"]', token=tok,
                    headers={"Content-Type": "application/json"})
        assert r.status == 400 and r.error_code() == "invalid_json", path
        r = request(method, path, raw=b'name=a', token=tok,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == 415 and r.error_code() == "unsupported_media_type", path
    r = request("POST", "/api/leads", {"name": "a", "notes": "n" * 70000}, token=tok)
    assert r.status == 413 and r.error_code() == "payload_too_large"


@pytest.mark.parametrize("raw", [False, True], ids=["escaped", "raw"])
def test_nul_in_any_body_is_refused(tok, raw):
    """A NUL (\\u0000, or the raw byte) would end the value there: every JSON body of the API
    refuses it with 422 naming the member, and nothing changes."""
    email, tag = unique_email("nul"), uuid.uuid4().hex[:8]
    assert register(email=email, password="password123").status == 201
    user = make_user(tok, "SALES_EXECUTIVE")[1]
    lead = create(tok)
    before = (sql("SELECT version, status, notes FROM leads WHERE id = :'p1'", lead["id"]),
              sql("SELECT count(*) FROM activities WHERE lead_id = :'p1'", lead["id"]),
              sql("SELECT name FROM users WHERE id = :'p1'", user["id"]))
    lead_path = "/api/leads/%d" % lead["id"]
    for method, path, body, field in (
            ("POST", "/api/auth/register",
             {"name": "Nul\0" + tag, "email": "nul-%s@example.com" % tag,
              "password": "password123"}, "name"),
            ("POST", "/api/auth/login", {"email": email, "password": "password123\0x"},
             "password"),
            ("PATCH", "/api/users/%d" % user["id"], {"name": "Nul\0x"}, "name"),
            ("POST", "/api/leads", {"name": "Nul\0" + tag}, "name"),
            ("PATCH", lead_path, {"notes": "a\0b"}, "notes"),
            ("PATCH", lead_path + "/status", {"status": "WON", "note": "a\0b"}, "note"),
            ("PATCH", lead_path + "/assign", {"owner_id": "\0"}, "owner_id"),
            ("POST", lead_path + "/activity", {"type": "NOTE", "content": "a\0b"}, "content")):
        data = json.dumps(body).encode()
        assert b"\\u0000" in data
        if raw:
            data = data.replace(b"\\u0000", b"\0")
        r = request(method, path, raw=data, token=tok,
                    headers={"Content-Type": "application/json"})
        assert r.status == 422 and r.error_code() == "validation_failed", (path, r.text)
        assert r.json["error"]["fields"] == {field: "must not contain a NUL character"}, path
    assert sql("SELECT count(*) FROM users WHERE email = :'p1'", "nul-%s@example.com" % tag) == \
        [["0"]]
    assert sql("SELECT count(*) FROM leads WHERE name LIKE :'p1'", "Nul%" + tag + "%") == [["0"]]
    assert (sql("SELECT version, status, notes FROM leads WHERE id = :'p1'", lead["id"]),
            sql("SELECT count(*) FROM activities WHERE lead_id = :'p1'", lead["id"]),
            sql("SELECT name FROM users WHERE id = :'p1'", user["id"])) == before


@pytest.mark.parametrize("path", ["/api/leads/abc", "/api/leads/0", "/api/leads/-1",
                                  "/api/leads/99999999999"])
def test_bad_ids_are_404(tok, path):
    r = request("GET", path, token=tok)
    assert r.status in (404, 405) and r.json["error"]["code"] in ("not_found",
                                                                  "method_not_allowed")
    r = request("PATCH", path, {"notes": "x"}, token=tok)
    assert r.status == 404 and r.error_code() == "not_found"


def test_bad_id_with_valid_body_is_404(tok):
    r = request("PATCH", "/api/leads/1x/status", {"status": "WON"}, token=tok)
    assert r.status == 404 and r.error_code() == "not_found"
    r = request("POST", "/api/leads/x/activity", {"type": "NOTE", "content": "c"}, token=tok)
    assert r.status == 404 and r.error_code() == "not_found"


def test_method_not_allowed(tok):
    r = request("PUT", "/api/leads/1", {"name": "x"}, token=tok)
    assert r.status == 405 and r.error_code() == "method_not_allowed"
    assert set(r.header("Allow").replace(" ", "").split(",")) == {"GET", "HEAD", "PATCH",
                                                                   "DELETE"}


# --- edit -------------------------------------------------------------------------------------

def test_edit_changes_what_is_given_and_clears_null(tok):
    lead = create(tok, email="a@b.io", phone="123", company="Acme", notes="n", value=5)
    r = request("PATCH", "/api/leads/%d" % lead["id"],
                {"phone": None, "company": "Acme 2", "value": 7.25}, token=tok)
    assert r.status == 200, r.text
    got = r.json["lead"]
    assert (got["phone"], got["company"], got["value"], got["email"], got["notes"]) == \
        (None, "Acme 2", 7.25, "a@b.io", "n")
    assert got["version"] == 2 and got["updated_at"] >= lead["updated_at"]
    assert sql("SELECT type FROM events WHERE lead_id = :'p1' ORDER BY id", lead["id"]) == \
        [["lead.created"], ["lead.updated"]]


@pytest.mark.parametrize("body,field,message", [
    ({"status": "WON"}, "status", "PATCH /api/leads/:id/status"),
    ({"owner_id": 1}, "owner_id", "PATCH /api/leads/:id/assign"),
    ({}, "body", "no field"),
    ({"name": None}, "name", "null"),
    ({"value": -3}, "value", "number"),
])
def test_edit_refuses(tok, body, field, message):
    lead = create(tok)
    r = request("PATCH", "/api/leads/%d" % lead["id"], body, token=tok)
    assert r.status == 422, r.text
    assert message in r.json["error"]["fields"][field]
    assert sql("SELECT version FROM leads WHERE id = :'p1'", lead["id"]) == [["1"]]


# --- If-Match ---------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix,body", [("", {"notes": "x"}), ("/status", {"status": "LOST"}),
                                         ("/assign", "admin")])
def test_if_match(tok, admin, suffix, body):
    if body == "admin":
        body = {"owner_id": admin["user"]["id"]}
    lead = create(tok)
    path = "/api/leads/%d%s" % (lead["id"], suffix)
    assert request("PATCH", "/api/leads/%d" % lead["id"], {"notes": "v2"}, token=tok).status == 200
    for stale in ('"1"', "1", '"abc"', "W/\"2\"x"):
        r = request("PATCH", path, body, token=tok, headers={"If-Match": stale})
        assert r.status == 412 and r.error_code() == "precondition_failed", stale
    assert sql("SELECT version, notes FROM leads WHERE id = :'p1'", lead["id"]) == [["2", "v2"]]
    # CREATED and the UPDATED of the notes: the refused writes recorded nothing.
    assert sql("SELECT count(*) FROM activities WHERE lead_id = :'p1'", lead["id"]) == [["2"]]
    r = request("PATCH", path, body, token=tok, headers={"If-Match": '"2"'})
    assert r.status == 200 and r.json["lead"]["version"] == 3
    r = request("PATCH", "/api/leads/%d" % lead["id"], {"notes": "any"}, token=tok,
                headers={"If-Match": "*"})
    assert r.status == 200 and r.json["lead"]["version"] == 4


def test_etag_is_what_if_match_takes(tok, admin):
    """Every answer with a lead has its ETag ("<version>"); sent back as If-Match, it applies
    until the lead changes, then it is refused."""
    r = request("POST", "/api/leads", {"name": "Tagged"}, token=tok)
    assert r.status == 201 and r.header("ETag") == '"1"'
    path = "/api/leads/%d" % r.json["lead"]["id"]
    tag = request("GET", path, token=tok).header("ETag")
    assert tag == '"1"'
    r = request("PATCH", path, {"notes": "one"}, token=tok, headers={"If-Match": tag})
    assert r.status == 200 and r.header("ETag") == '"2"'
    r = request("PATCH", path + "/status", {"status": "CONTACTED"}, token=tok,
                headers={"If-Match": r.header("ETag")})
    assert r.status == 200 and r.header("ETag") == '"3"' == '"%d"' % r.json["lead"]["version"]
    r = request("PATCH", path, {"notes": "stale"}, token=tok, headers={"If-Match": tag})
    assert r.status == 412 and r.header("ETag") is None
    r = request("PATCH", path + "/assign", {"owner_id": admin["user"]["id"]},
                token=admin["token"], headers={"If-Match": '"3"'})
    assert r.status == 200 and r.header("ETag") == '"4"'


def test_if_match_on_missing_lead_is_404(tok):
    r = request("PATCH", "/api/leads/999999999", {"notes": "x"}, token=tok,
                headers={"If-Match": '"1"'})
    assert r.status == 404


# --- status, assignment, activities -----------------------------------------------------------

def test_status_change_logs_and_notifies(tok):
    lead = create(tok, value=100)
    r = request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": "WON", "note": "signed"},
                token=tok)
    assert r.status == 200, r.text
    assert r.json["lead"]["status"] == "WON" and r.json["lead"]["version"] == 2
    act = r.json["activity"]
    assert (act["type"], act["content"], act["meta"]) == \
        ("STATUS_CHANGE", "signed", {"from": "NEW", "to": "WON", "changes": [
            {"field": "status", "from": "NEW", "to": "WON"}]})
    assert sql("SELECT won_at IS NOT NULL FROM leads WHERE id = :'p1'", lead["id"]) == [["t"]]
    ev = sql("SELECT type, payload->>'status' FROM events WHERE lead_id = :'p1' ORDER BY id",
             lead["id"])
    assert ev == [["lead.created", "NEW"], ["lead.status_changed", "WON"]]
    # The same status again changes nothing and logs nothing.
    r = request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": "WON"}, token=tok)
    assert r.status == 200 and r.json["activity"] is None and r.json["lead"]["version"] == 2
    assert sql("SELECT count(*) FROM events WHERE lead_id = :'p1'", lead["id"]) == [["2"]]
    r = request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": "LOST"}, token=tok)
    assert r.json["activity"]["content"] is None
    assert sql("SELECT won_at IS NULL FROM leads WHERE id = :'p1'", lead["id"]) == [["t"]]


@pytest.mark.parametrize("body,field", [({}, "status"), ({"status": "won"}, "status"),
                                        ({"status": "WON", "note": ""}, "note"),
                                        ({"status": "WON", "extra": 1}, "extra")])
def test_status_refuses(tok, body, field):
    lead = create(tok)
    r = request("PATCH", "/api/leads/%d/status" % lead["id"], body, token=tok)
    assert r.status == 422 and field in r.json["error"]["fields"]


def test_assign(tok, admin):
    _, sales = make_user(tok, "SALES_EXECUTIVE")
    lead = create(tok)
    r = request("PATCH", "/api/leads/%d/assign" % lead["id"], {"owner_id": sales["id"]}, token=tok)
    assert r.status == 200, r.text
    assert r.json["lead"]["owner"] == {"id": sales["id"], "name": sales["name"]}
    assert r.json["activity"]["meta"] == {"from_owner_id": None, "to_owner_id": sales["id"],
                                          "changes": [{"field": "owner_id", "from": None,
                                                       "to": sales["id"]}]}
    ev = sql("SELECT owner_id, prev_owner_id FROM events WHERE lead_id = :'p1'"
             " AND type = 'lead.assigned'", lead["id"])
    assert ev == [[str(sales["id"]), ""]]
    r = request("PATCH", "/api/leads/%d/assign" % lead["id"], {"owner_id": admin["user"]["id"]},
                token=tok)
    assert r.json["activity"]["meta"] == {"from_owner_id": sales["id"],
                                          "to_owner_id": admin["user"]["id"],
                                          "changes": [{"field": "owner_id", "from": sales["id"],
                                                       "to": admin["user"]["id"]}]}
    for bad in ({}, {"owner_id": "x"}, {"owner_id": 999999999}):
        r = request("PATCH", "/api/leads/%d/assign" % lead["id"], bad, token=tok)
        assert r.status == 422 and "owner_id" in r.json["error"]["fields"], bad
    assert sql("SELECT owner_id, version FROM leads WHERE id = :'p1'", lead["id"]) == \
        [[str(admin["user"]["id"]), "3"]]


@pytest.mark.parametrize("body,field", [
    ({"type": "STATUS_CHANGE", "content": "x"}, "type"),
    ({"type": "CREATED", "content": "x"}, "type"),
    ({"type": "ASSIGNMENT", "content": "x"}, "type"),
    ({"type": "NOTE"}, "content"),
    ({"type": "NOTE", "content": ""}, "content"),
    ({"type": "NOTE", "content": "x" * 10001}, "content"),
    ({"content": "x"}, "type"),
    ({"type": "NOTE", "content": "x", "occurred_at": "2026-02-30T10:00:00Z"}, "occurred_at"),
    ({"type": "NOTE", "content": "x", "occurred_at": "yesterday"}, "occurred_at"),
    ({"type": "NOTE", "content": "x", "occurred_at": "2026-11-24"}, "occurred_at"),
    ({"type": "NOTE", "content": "x", "occurred_at": "2026-11-24T25:00:00Z"}, "occurred_at"),
    # PostgreSQL refuses the offset, or would store another year than the one given.
    ({"type": "NOTE", "content": "x", "occurred_at": "2026-11-24T10:00:00+23:00"}, "occurred_at"),
    ({"type": "NOTE", "content": "x", "occurred_at": "2026-11-24T10:00:00-16:00"}, "occurred_at"),
    ({"type": "NOTE", "content": "x", "occurred_at": "0001-01-01T00:00:00+01:00"}, "occurred_at"),
    ({"type": "NOTE", "content": "x", "occurred_at": "9999-12-31T23:59:59-15:59"}, "occurred_at"),
    ({"type": "NOTE", "content": "x", "occurred_at": "9999-12-31T23:59:59.9999995Z"},
     "occurred_at"),
])
def test_activity_refuses(tok, body, field):
    lead = create(tok)
    r = request("POST", "/api/leads/%d/activity" % lead["id"], body, token=tok)
    assert r.status == 422 and field in r.json["error"]["fields"], r.text
    assert sql("SELECT count(*) FROM activities WHERE lead_id = :'p1'", lead["id"]) == [["1"]]


def test_activity_times_at_the_limits_come_back_unchanged(tok):
    lead = create(tok)
    for given, shown in (("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),
                         ("0001-01-01T15:59:00+15:59", "0001-01-01T00:00:00.000Z"),
                         ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999Z"),
                         ("9999-12-31T08:00:59-15:59", "9999-12-31T23:59:59.000Z")):
        r = request("POST", "/api/leads/%d/activity" % lead["id"],
                    {"type": "NOTE", "content": "x", "occurred_at": given}, token=tok)
        assert r.status == 201, r.text
        assert r.json["activity"]["occurred_at"] == shown, given


def test_activity_and_timeline(tok, admin):
    lead = create(tok)
    ids = []
    for i, kind in enumerate(["NOTE", "CALL", "MEETING", "EMAIL"] * 3):
        body = {"type": kind, "content": "item %d" % i}
        if i == 0:
            body["occurred_at"] = "2024-02-29T23:59:59.5+02:00"
        r = request("POST", "/api/leads/%d/activity" % lead["id"], body, token=tok)
        assert r.status == 201, r.text
        ids.append(r.json["activity"]["id"])
    first = sql("SELECT crm_ts(occurred_at) FROM activities WHERE id = :'p1'", ids[0])
    assert first == [["2024-02-29T21:59:59.500Z"]]
    r = request("GET", "/api/leads/%d" % lead["id"], token=tok)
    timeline = r.json["activities"]
    assert [a["id"] for a in timeline][:12] == ids[::-1] and timeline[-1]["type"] == "CREATED"
    assert timeline[0]["actor"] == {"id": admin["user"]["id"], "name": admin["user"]["name"]}
    # Paging by before_id walks the whole timeline, newest first, each item once.
    seen, before = [], None
    while True:
        q = "/api/leads/%d/activities?limit=5" % lead["id"] + \
            ("&before_id=%d" % before if before else "")
        page = request("GET", q, token=tok).json
        seen += [a["id"] for a in page["data"]]
        before = page["page"]["next_before_id"]
        if before is None:
            break
    assert seen == [a["id"] for a in timeline] and len(seen) == 13
    for bad in ("limit=0", "limit=101", "limit=x", "before_id=0", "before_id=y"):
        r = request("GET", "/api/leads/%d/activities?%s" % (lead["id"], bad), token=tok)
        assert r.status == 400 and r.error_code() == "invalid_query", bad


def test_get_shows_the_50_newest(tok):
    lead = create(tok)
    sql("INSERT INTO activities (lead_id, type, content, actor_id)"
        " SELECT :'p1', 'NOTE', 'bulk ' || g, created_by FROM generate_series(1, 60) g,"
        " leads WHERE leads.id = :'p1'", lead["id"])
    acts = request("GET", "/api/leads/%d" % lead["id"], token=tok).json["activities"]
    assert len(acts) == 50 and acts[0]["content"] == "bulk 60"
    assert [a["id"] for a in acts] == sorted((a["id"] for a in acts), reverse=True)


def test_delete(tok):
    lead = create(tok)
    request("POST", "/api/leads/%d/activity" % lead["id"], {"type": "NOTE", "content": "x"},
            token=tok)
    r = request("DELETE", "/api/leads/%d" % lead["id"], token=tok)
    assert r.status == 204 and r.text == ""
    assert sql("SELECT count(*) FROM activities WHERE lead_id = :'p1'", lead["id"]) == [["0"]]
    ev = sql("SELECT type, payload::text FROM events WHERE lead_id = :'p1' ORDER BY id DESC"
             " LIMIT 1", lead["id"])
    assert ev[0][0] == "lead.deleted" and json.loads(ev[0][1]) == {"id": lead["id"]}
    assert request("GET", "/api/leads/%d" % lead["id"], token=tok).status == 404
    assert request("DELETE", "/api/leads/%d" % lead["id"], token=tok).status == 404


# --- atomicity --------------------------------------------------------------------------------

@pytest.fixture
def events_refused():
    """Makes inserting an event fail for one lead (or actor), so the write around it must roll
    back; removed afterwards."""
    made = []

    def refuse(column, value):
        sql("ALTER TABLE events ADD CONSTRAINT test_refuse CHECK (%s <> %d) NOT VALID"
            % (column, int(value)))
        made.append(1)
    yield refuse
    if made:
        sql("ALTER TABLE events DROP CONSTRAINT test_refuse")


def snapshot(lead_id):
    return (sql("SELECT status, owner_id, notes, version, updated_at FROM leads WHERE id = :'p1'",
                lead_id),
            sql("SELECT id FROM activities WHERE lead_id = :'p1' ORDER BY id", lead_id),
            sql("SELECT id FROM events WHERE lead_id = :'p1' ORDER BY id", lead_id))


@pytest.mark.parametrize("method,suffix,body", [
    ("PATCH", "/status", {"status": "WON"}),
    ("PATCH", "", {"notes": "lost?"}),
    ("PATCH", "/assign", "admin"),
    ("POST", "/activity", {"type": "NOTE", "content": "lost?"}),
    ("DELETE", "", None),
])
def test_failed_write_leaves_nothing(tok, admin, events_refused, method, suffix, body):
    lead = create(tok)
    if body == "admin":
        body = {"owner_id": admin["user"]["id"]}
    before = snapshot(lead["id"])
    events_refused("lead_id", lead["id"])
    r = request(method, "/api/leads/%d%s" % (lead["id"], suffix), body, token=tok)
    assert r.status == 500 and r.error_code() == "internal", r.text
    assert "constraint" not in r.text  # the message reveals nothing
    assert snapshot(lead["id"]) == before


def test_failed_create_leaves_nothing(tok, events_refused):
    token, user = make_user(tok, "SALES_EXECUTIVE")
    events_refused("actor_id", user["id"])
    r = request("POST", "/api/leads", {"name": "never"}, token=token)
    assert r.status == 500 and r.error_code() == "internal"
    assert sql("SELECT count(*) FROM leads WHERE created_by = :'p1'", user["id"]) == [["0"]]
    assert sql("SELECT count(*) FROM activities WHERE actor_id = :'p1'", user["id"]) == [["0"]]
    # The worker is fine afterwards: the next request on it works.
    assert request("GET", "/api/leads?limit=1", token=token).status == 200


def test_database_error_is_logged_with_the_request_id(tok, events_refused):
    """The log line with the database's error behind a 500 names the request it answered."""
    lead = create(tok)
    events_refused("lead_id", lead["id"])
    r = request("PATCH", "/api/leads/%d" % lead["id"], {"notes": "x"}, token=tok)
    rid = r.header("X-Request-Id")
    assert r.status == 500 and rid, r.text
    with open(os.path.join(VAR, "log", "crm-leads.log"), errors="replace") as f:
        lines = [line for line in f if "db: lead_update:" in line]
    assert any(" error req=%s db: lead_update: " % rid in line and "test_refuse" in line
               for line in lines), lines[-2:]
