"""Field history: every PATCH, status change and assignment records, per field, the old and the
new value, who and when, in its own transaction; the timeline shows it and filters it (type=,
field=), and the stream's lead events carry it."""
import json
import uuid

import pytest

from conftest import make_user, request, sql
from sse import Stream

# A lead's recorded fields, and for each PATCHable one: a value to start from and one to go to.
EDITS = {
    "name": ("Old name", "New name"),
    "email": ("old@example.com", "new@example.com"),
    "phone": ("+1 555 0100", "+44 20 7946 0000"),
    "company": ("Initech", "Initrode"),
    "source": ("WEBSITE", "REFERRAL"),
    "value": (100.5, 2500.25),
    "notes": ("first", "second\nline, \"quoted\" ünïcode"),
}
ORDER = ["name", "email", "phone", "company", "source", "status", "value", "notes", "owner_id"]


@pytest.fixture(scope="module")
def people(admin):
    """A caller of each role allowed to edit, and a SALES_EXECUTIVE to own leads."""
    tok = admin["token"]
    return {"ADMIN": (tok, admin["user"]), "MANAGER": make_user(tok, "MANAGER"),
            "SALES_EXECUTIVE": make_user(tok, "SALES_EXECUTIVE")}


def new_lead(people, role, **fields):
    """A lead the caller of role may change: a SALES_EXECUTIVE's own."""
    tok, user = people[role]
    body = dict({k: v[0] for k, v in EDITS.items()}, **fields)
    if role != "SALES_EXECUTIVE":
        body["owner_id"] = people["SALES_EXECUTIVE"][1]["id"]
    r = request("POST", "/api/leads", body, token=tok)
    assert r.status == 201, r.text
    return r.json["lead"]


def timeline(tok, lead_id, query=""):
    r = request("GET", "/api/leads/%d/activities?limit=100%s" % (lead_id, query), token=tok)
    assert r.status == 200, r.text
    return r.json["data"]


def counts(lead_id):
    """(activities, events, version) of a lead, read from the database."""
    return sql("SELECT (SELECT count(*) FROM activities WHERE lead_id = :'p1'),"
               " (SELECT count(*) FROM events WHERE lead_id = :'p1'),"
               " (SELECT version FROM leads WHERE id = :'p1')", lead_id)[0]


@pytest.mark.parametrize("role", ["ADMIN", "MANAGER", "SALES_EXECUTIVE"])
@pytest.mark.parametrize("field", sorted(EDITS))
def test_patch_records_exactly_the_field_it_changed(people, role, field):
    tok, user = people[role]
    lead = new_lead(people, role)
    old, new = EDITS[field]
    r = request("PATCH", "/api/leads/%d" % lead["id"], {field: new}, token=tok)
    assert r.status == 200, r.text
    act = r.json["activity"]
    assert act["type"] == "UPDATED" and act["lead_id"] == lead["id"]
    assert act["meta"] == {"changes": [{"field": field, "from": old, "to": new}]}
    assert act["actor"] == {"id": user["id"], "name": user["name"]}
    assert act["created_at"] == r.json["lead"]["updated_at"]  # the same transaction's now()
    assert r.json["lead"][field] == new and r.json["lead"]["version"] == 2
    # On the timeline, newest first, and alone under its field and under its type.
    assert timeline(tok, lead["id"])[0] == act
    assert timeline(tok, lead["id"], "&field=" + field) == [act]
    assert timeline(tok, lead["id"], "&type=UPDATED") == [act]
    others = [f for f in ORDER if f != field]
    for f in others:
        assert timeline(tok, lead["id"], "&field=" + f) == []


def test_patch_of_several_fields_records_only_those_that_changed_in_order(people):
    tok = people["MANAGER"][0]
    lead = new_lead(people, "MANAGER")
    body = {"notes": "changed", "name": EDITS["name"][0], "company": None, "value": 7,
            "email": EDITS["email"][0], "source": None}
    r = request("PATCH", "/api/leads/%d" % lead["id"], body, token=tok)
    assert r.status == 200, r.text
    # name and email are sent with the values they have: not changes. null clears company, puts
    # source back to OTHER; the order is the fields' own, not the body's.
    assert r.json["activity"]["meta"]["changes"] == [
        {"field": "company", "from": "Initech", "to": None},
        {"field": "source", "from": "WEBSITE", "to": "OTHER"},
        {"field": "value", "from": 100.5, "to": 7},
        {"field": "notes", "from": "first", "to": "changed"},
    ]
    # Cleared values are recorded as null and back again.
    r = request("PATCH", "/api/leads/%d" % lead["id"], {"company": "Back", "value": None},
                token=tok)
    assert r.json["activity"]["meta"]["changes"] == [
        {"field": "company", "from": None, "to": "Back"},
        {"field": "value", "from": 7, "to": 0}]
    assert [a["meta"]["changes"][0]["to"] for a in timeline(tok, lead["id"], "&field=company")] \
        == ["Back", None]


@pytest.mark.parametrize("role", ["ADMIN", "SALES_EXECUTIVE"])
def test_patch_that_changes_nothing_writes_nothing(people, role):
    tok = people[role][0]
    lead = new_lead(people, role)
    before = counts(lead["id"])
    same = {k: v[0] for k, v in EDITS.items()}
    # Money compares as money: 100.50 is 100.5.
    r = request("PATCH", "/api/leads/%d" % lead["id"], dict(same, value=100.50), token=tok,
                headers={"If-Match": '"1"'})
    assert r.status == 200, r.text
    assert r.json == {"lead": lead, "activity": None}
    assert r.header("ETag") == '"1"'
    assert counts(lead["id"]) == before == ["1", "1", "1"]


@pytest.mark.parametrize("role", ["ADMIN", "MANAGER", "SALES_EXECUTIVE"])
def test_status_changes_record_the_status_history(people, role):
    tok, user = people[role]
    lead = new_lead(people, role)
    acts = []
    for status in ("CONTACTED", "WON", "LOST"):
        r = request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": status},
                    token=tok)
        assert r.status == 200, r.text
        acts.append(r.json["activity"])
    assert [a["meta"] for a in acts] == [
        {"from": "NEW", "to": "CONTACTED",
         "changes": [{"field": "status", "from": "NEW", "to": "CONTACTED"}]},
        {"from": "CONTACTED", "to": "WON",
         "changes": [{"field": "status", "from": "CONTACTED", "to": "WON"}]},
        {"from": "WON", "to": "LOST",
         "changes": [{"field": "status", "from": "WON", "to": "LOST"}]}]
    assert all(a["type"] == "STATUS_CHANGE" and a["actor"]["id"] == user["id"] for a in acts)
    assert timeline(tok, lead["id"], "&field=status") == acts[::-1]
    assert timeline(tok, lead["id"], "&type=STATUS_CHANGE") == acts[::-1]
    assert timeline(tok, lead["id"], "&type=UPDATED") == []


@pytest.mark.parametrize("role", ["ADMIN", "MANAGER"])
def test_assignments_record_the_owner_history(people, admin, role):
    tok, user = people[role]
    a = people["SALES_EXECUTIVE"][1]
    b = make_user(admin["token"], "SALES_EXECUTIVE")[1]
    r = request("POST", "/api/leads", {"name": "Unowned"}, token=tok)
    lead = r.json["lead"]
    assert lead["owner"] is None
    acts = []
    for to in (a["id"], b["id"]):
        r = request("PATCH", "/api/leads/%d/assign" % lead["id"], {"owner_id": to}, token=tok)
        assert r.status == 200, r.text
        acts.append(r.json["activity"])
    assert [x["meta"]["changes"] for x in acts] == [
        [{"field": "owner_id", "from": None, "to": a["id"]}],
        [{"field": "owner_id", "from": a["id"], "to": b["id"]}]]
    assert acts[1]["meta"]["from_owner_id"] == a["id"] and acts[1]["actor"]["id"] == user["id"]
    assert timeline(tok, lead["id"], "&field=owner_id") == acts[::-1]
    # The owner it has already: nothing written.
    before = counts(lead["id"])
    r = request("PATCH", "/api/leads/%d/assign" % lead["id"], {"owner_id": b["id"]}, token=tok)
    assert r.status == 200 and r.json["activity"] is None
    assert counts(lead["id"]) == before


def test_a_refused_write_records_nothing(people, admin):
    tok = people["ADMIN"][0]
    lead = new_lead(people, "ADMIN")
    gone = make_user(admin["token"], "SALES_EXECUTIVE")[1]
    r = request("PATCH", "/api/users/%d" % gone["id"], {"active": False}, token=tok)
    assert r.status == 200, r.text
    before = counts(lead["id"])
    r = request("PATCH", "/api/leads/%d" % lead["id"], {"name": "x"}, token=tok,
                headers={"If-Match": '"9"'})
    assert r.status == 412
    r = request("PATCH", "/api/leads/%d/assign" % lead["id"], {"owner_id": gone["id"]},
                token=tok)
    assert r.status == 422
    assert counts(lead["id"]) == before


def test_others_history_is_not_visible(people, admin):
    lead = new_lead(people, "ADMIN")
    other = make_user(admin["token"], "SALES_EXECUTIVE")[0]
    r = request("GET", "/api/leads/%d/activities?field=name" % lead["id"], token=other)
    assert r.status == 404


@pytest.mark.parametrize("query", ["type=EDITED", "type=updated", "field=version",
                                   "field=owner", "field=", "type="])
def test_bad_filters_are_refused(people, query):
    tok = people["ADMIN"][0]
    lead = new_lead(people, "ADMIN")
    r = request("GET", "/api/leads/%d/activities?%s" % (lead["id"], query), token=tok)
    assert r.status == 400 and r.error_code() == "invalid_query"


def test_filtered_history_pages_by_id(people):
    tok = people["ADMIN"][0]
    lead = new_lead(people, "ADMIN")
    for i in range(5):
        r = request("PATCH", "/api/leads/%d" % lead["id"], {"notes": "n%d" % i}, token=tok)
        assert r.status == 200
        r = request("POST", "/api/leads/%d/activity" % lead["id"],
                    {"type": "NOTE", "content": "c%d" % i}, token=tok)
        assert r.status == 201
    seen, before = [], ""
    while True:
        r = request("GET", "/api/leads/%d/activities?field=notes&limit=2%s" % (lead["id"], before),
                    token=tok)
        assert r.status == 200
        seen += [a["meta"]["changes"][0]["to"] for a in r.json["data"]]
        if r.json["page"]["next_before_id"] is None:
            break
        before = "&before_id=%d" % r.json["page"]["next_before_id"]
    assert seen == ["n4", "n3", "n2", "n1", "n0"]


def test_the_lead_and_the_stream_show_the_history(people, admin):
    tok = people["MANAGER"][0]
    s_tok = people["SALES_EXECUTIVE"][0]
    b = make_user(admin["token"], "SALES_EXECUTIVE")[1]
    lead = new_lead(people, "MANAGER")
    streams = {"manager": Stream(token=tok), "owner": Stream(token=s_tok)}
    try:
        got = []
        r = request("PATCH", "/api/leads/%d" % lead["id"], {"name": "Streamed"}, token=tok)
        got.append(("lead.updated", r.json["activity"]))
        r = request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": "QUALIFIED"},
                    token=tok)
        got.append(("lead.status_changed", r.json["activity"]))
        r = request("PATCH", "/api/leads/%d/assign" % lead["id"], {"owner_id": b["id"]},
                    token=tok)
        got.append(("lead.assigned", r.json["activity"]))
        # The lead's own timeline has them, newest first, after its CREATED.
        r = request("GET", "/api/leads/%d" % lead["id"], token=tok)
        assert r.json["activities"][:3] == [a for _, a in got][::-1]
        assert r.json["activities"][3]["type"] == "CREATED"

        def mine(ms):
            return [(m["event"], json.loads(m["data"])) for m in ms
                    if json.loads(m["data"])["lead_id"] == lead["id"]]

        for name, s in streams.items():
            assert s.wait(lambda ms: len(mine(ms)) >= 3), name
            events = mine(s.messages)
            assert [(t, e["activity"]) for t, e in events] == got, name
            # The activity's diff and the lead after it agree.
            assert events[0][1]["data"]["name"] == "Streamed"
            assert events[2][1]["data"]["owner"]["id"] == b["id"]
    finally:
        for s in streams.values():
            s.close()


def test_history_is_in_the_same_statement_as_the_write(admin):
    """The activity is written by the write's own statement: when its INSERT fails (a trigger
    made here refuses UPDATED activities of one company's leads), the lead is not changed."""
    tag = "hist%s" % uuid.uuid4().hex[:8]
    sql("CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.type = 'UPDATED' AND EXISTS (SELECT 1 FROM leads WHERE id = NEW.lead_id"
        " AND company = '%s') THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;"
        " CREATE TRIGGER %s BEFORE INSERT ON activities FOR EACH ROW EXECUTE FUNCTION %s();"
        % (tag, tag, tag, tag))
    try:
        tok = admin["token"]
        lead = request("POST", "/api/leads", {"name": "Atomic", "company": tag},
                       token=tok).json["lead"]
        r = request("PATCH", "/api/leads/%d" % lead["id"], {"name": "Changed"}, token=tok)
        assert r.status == 500 and r.error_code() == "internal"
        assert sql("SELECT name, version FROM leads WHERE id = :'p1'", lead["id"]) == \
            [["Atomic", "1"]]
        assert counts(lead["id"]) == ["1", "1", "1"]
        # Another field of the same lead is not refused by the trigger's rule: it is the insert.
        r = request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": "WON"}, token=tok)
        assert r.status == 200
    finally:
        sql("DROP TRIGGER %s ON activities; DROP FUNCTION %s();" % (tag, tag))
