"""POST /api/leads/import: a CSV file of leads, each row held to POST /api/leads's rules, all or
nothing; every kind of bad file refused with nothing written; the export imports back."""
import json
import os
import re
import uuid

import pytest

from conftest import VAR, fcgi, make_user, request, sql
from sse import Stream

MAX = 10 * 1024 * 1024
HEADER = ("id,name,email,phone,company,source,status,value,notes,owner_id,owner_name,created_at,"
          "updated_at")


def post(body, token, query="", content_type="text/csv"):
    if isinstance(body, str):
        body = body.encode()
    return request("POST", "/api/leads/import" + query, raw=body, token=token,
                   headers={"Content-Type": content_type} if content_type else {})


def tag():
    return "Imp%s" % uuid.uuid4().hex[:10]


def count(t):
    """Leads whose company holds the tag t (every test's rows have it)."""
    return int(sql("SELECT count(*) FROM leads WHERE company LIKE '%' || :'p1' || '%'", t)[0][0])


def events():
    return int(sql("SELECT coalesce(max(id), 0) FROM events")[0][0])


def errors_of(r):
    return [(e["row"], e["field"]) for e in r.json["errors"]]


@pytest.fixture
def users(admin):
    return {"admin": (admin["token"], admin["user"]),
            "manager": make_user(admin["token"], "MANAGER"),
            "sales": make_user(admin["token"], "SALES_EXECUTIVE"),
            "other": make_user(admin["token"], "SALES_EXECUTIVE")}


def test_rows_become_leads_as_post_would_make_them(users):
    tok, me = users["admin"]
    t = tag()
    owner = users["sales"][1]["id"]
    csv = ("name,email,phone,company,source,status,value,notes,owner_id\r\n"
           "  Globex renewal ,buyer@%s.example,020 1,%s co,REFERRAL,WON,12500.50,\"a, b\",%d\r\n"
           "Initech,,,%s co,,,,,\r\n" % (t, t, owner, t))
    before = events()
    r = post(csv, tok)
    assert r.status == 200, r.text
    assert r.json == {"imported": 2, "skipped": 0, "errors": [], "errors_total": 0}
    got = request("GET", "/api/leads?sort=name&q=%s" % t, token=tok).json["data"]
    assert [(l["name"], l["email"], l["phone"], l["source"], l["status"], l["value"], l["notes"],
             (l["owner"] or {}).get("id"), l["created_by"]["id"]) for l in got] == [
        ("Globex renewal", "buyer@%s.example" % t, "020 1", "REFERRAL", "WON", 12500.5, "a, b",
         owner, me["id"]),
        ("Initech", None, None, "OTHER", "NEW", 0, None, None, me["id"])]
    # Each has its CREATED activity; the import is one leads.imported event per owner.
    lead = request("GET", "/api/leads/%d" % got[0]["id"], token=tok).json
    assert [(a["type"], a["meta"]) for a in lead["activities"]] == [("CREATED", {"import": True})]
    rows = sql("SELECT type, owner_id, lead_id IS NULL, payload::text FROM events"
               " WHERE id > :'p1' AND actor_id = :'p2' ORDER BY id", before, me["id"])
    assert [(r[0], r[1], r[2], json.loads(r[3])["count"]) for r in rows] == [
        ("leads.imported", str(owner), "t", 1), ("leads.imported", "", "t", 1)]


def test_dry_run_reports_and_writes_nothing(users):
    tok = users["admin"][0]
    t = tag()
    csv = ("name,email,company,value\n"
           "Good,g@%s.example,%s,1.5\n"
           ",x@%s.example,%s,2\n"
           "Bad mail,not-an-address,%s,abc\n" % (t, t, t, t, t))
    before = events()
    for query in ("?dry_run=1", "?dry_run=true"):
        r = post(csv, tok, query)
        assert r.status == 200, r.text
        assert r.json["imported"] == 1 and r.json["skipped"] == 0
        assert errors_of(r) == [(3, "name"), (4, "email"), (4, "value")]
        assert r.json["errors"][0]["problem"] == "is required"
        assert r.json["errors_total"] == 3
    clean = post("name,company\nA,%s\nB,%s\n" % (t, t), tok, "?dry_run=1")
    assert clean.status == 200 and clean.json["imported"] == 2 and clean.json["errors"] == []
    assert count(t) == 0 and events() == before
    # The same file for real: nothing, and the same report with the error body.
    r = post(csv, tok)
    assert r.status == 422 and r.error_code() == "validation_failed"
    assert r.json["imported"] == 0 and errors_of(r) == [(3, "name"), (4, "email"), (4, "value")]
    assert count(t) == 0 and events() == before


@pytest.mark.parametrize("cell", ["=1+1", "+44 20 7946 0000", "-5", "@SUM(A1)",
                                  "\"=HYPERLINK(\"\"http://x\"\")\""])
def test_a_formula_cell_is_refused(users, cell):
    t = tag()
    r = post("name,company,notes\nFine,%s,ok\nFormula,%s,%s\n" % (t, t, cell), users["admin"][0])
    assert r.status == 422, r.text
    assert errors_of(r) == [(3, "notes")]
    assert "formula" in r.json["errors"][0]["problem"]
    assert count(t) == 0


def test_a_neutralised_cell_imports_as_its_text(users):
    """The export writes '=1+1 for =1+1 (and ''=x for '=x): the import gives back the text."""
    tok = users["admin"][0]
    t = tag()
    r = post("name,company,notes,phone\n'=Sum,%s,'@x,'+44 1\nQuoted,%s,''=x,'tis\n" % (t, t), tok)
    assert r.status == 200, r.text
    got = request("GET", "/api/leads?sort=name&q=%s" % t, token=tok).json["data"]
    assert [(l["name"], l["notes"], l["phone"]) for l in got] == [
        ("=Sum", "@x", "+44 1"), ("Quoted", "'=x", "'tis")]


def test_ragged_rows_are_row_errors(users):
    t = tag()
    r = post("name,company\nA,%s\nB,%s,extra\nC\n" % (t, t), users["admin"][0])
    assert r.status == 422, r.text
    assert errors_of(r) == [(3, None), (4, None)]
    assert r.json["errors"][0]["problem"] == "has 3 cells; the header has 2"
    assert count(t) == 0


@pytest.mark.parametrize("body,where", [
    ("name,company\nA,\"unclosed\n", "row 2"),
    ("name,company\nA,B\nC,x\"y\n", "row 3"),
    ("name,company\nA,\"q\"tail\n", "row 2"),
    ("name,\"com\"pany\nA,B\n", "row 1"),
])
def test_broken_quoting_is_a_400_naming_the_row(users, body, where):
    t = tag()
    r = post(body.replace("B", t), users["admin"][0])
    assert r.status == 400 and r.error_code() == "invalid_csv", r.text
    assert r.json["error"]["message"].startswith(where + ": the quoting is broken")
    assert count(t) == 0


def test_bad_utf8_is_a_400(users):
    t = tag()
    for bad in (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00"):
        r = post(b"name,company\nOk,%s\nBad " % t.encode() + bad + b",x\n", users["admin"][0])
        assert r.status == 400 and r.error_code() == "invalid_csv", r.text
        assert "UTF-8" in r.json["error"]["message"]
    # A byte order mark (what spreadsheets write) is no problem.
    r = post(b"\xef\xbb\xbfname,company\nZo\xc3\xab,%s\n" % t.encode(), users["admin"][0])
    assert r.status == 200 and r.json["imported"] == 1, r.text


def test_the_header_must_name_known_columns(users):
    tok = users["admin"][0]
    r = post("name,colour,company,size\nA,red,B,9\n", tok)
    assert r.status == 400 and r.error_code() == "invalid_csv"
    assert r.json["error"]["message"].startswith("unknown columns: colour, size (")
    for body, message in (("", "the file is empty"), ("\r\n\r\n", "the file is empty"),
                          ("name,name\nA,B\n", "the column name appears twice"),
                          ("email,company\na@b.example,c\n", "the header has no name column")):
        r = post(body, tok)
        assert r.status == 400 and r.error_code() == "invalid_csv", r.text
        assert r.json["error"]["message"].startswith(message)


def test_media_type_and_options(users):
    tok = users["admin"][0]
    for ctype in ("application/json", "text/plain", None):
        r = post("name\nA\n", tok, content_type=ctype)
        assert r.status == 415 and r.error_code() == "unsupported_media_type"
    for query in ("?dry_run=yes", "?on_duplicate=merge", "?dry_run=%ff"):
        r = post("name\nA\n", tok, query)
        assert r.status == 400 and r.error_code() == "invalid_query", query
    assert post("name\n", tok, content_type="text/csv; charset=utf-8").status == 200
    assert post("name\n", None).status == 401


def test_ten_mib_is_taken_and_one_byte_more_is_a_413(users):
    tok = users["admin"][0]
    t = tag()
    head = ("name,company,notes\r\n").encode()
    row = ("Big,%s,%s\r\n" % (t, "n" * 9000)).encode()
    body = head + row * ((MAX - len(head)) // len(row))
    rows = (MAX - len(head)) // len(row)
    body += b"x" * (MAX - len(body) - 2) + b"\r\n"  # a last record of one cell fills it up
    assert len(body) == MAX
    before = events()
    r = post(body, tok, "?dry_run=1")
    assert r.status == 200, r.text
    # The program read it all: every row, and the ragged one at the very end.
    assert r.json["imported"] == rows and errors_of(r) == [(rows + 2, None)]
    r = post(body + b"x", tok)
    assert r.status == 413 and r.error_code() == "payload_too_large"
    assert r.header("Content-Type").startswith("application/json") and r.header("X-Request-Id")
    assert "10 MiB" in r.json["error"]["message"]
    assert count(t) == 0 and events() == before


def test_duplicates_by_email_are_errors_or_skipped(users):
    tok = users["admin"][0]
    t = tag()
    existing = request("POST", "/api/leads", {"name": "Old", "email": "old@%s.example" % t,
                                              "company": t}, token=tok)
    assert existing.status == 201
    csv = ("name,email,company\n"
           "New,new@%s.example,%s\n"
           "Again,NEW@%s.example,%s\n"
           "Old again,old@%s.example,%s\n"
           "No mail,,%s\n"
           "No mail either,,%s\n" % (t, t, t, t, t, t, t, t))
    r = post(csv, tok)
    assert r.status == 422, r.text
    assert [(e["row"], e["field"], e["problem"]) for e in r.json["errors"]] == [
        (3, "email", "the same e-mail as row 2"), (4, "email", "a lead with this e-mail exists")]
    assert count(t) == 1
    r = post(csv, tok, "?on_duplicate=skip&dry_run=1")
    assert r.status == 200 and r.json["imported"] == 3 and r.json["skipped"] == 2, r.text
    assert count(t) == 1
    r = post(csv, tok, "?on_duplicate=skip")
    assert r.status == 200 and r.json == {"imported": 3, "skipped": 2, "errors": [],
                                          "errors_total": 0}, r.text
    names = [l["name"] for l in request("GET", "/api/leads?sort=name&q=%s" % t,
                                        token=tok).json["data"]]
    assert names == ["New", "No mail", "No mail either", "Old"]


def test_sales_executive_imports_its_own_leads_only(users):
    s_tok, s = users["sales"]
    o_tok, o = users["other"]
    t = tag()
    # Another's lead with the same e-mail is none of its business: not a duplicate for it.
    assert request("POST", "/api/leads", {"name": "Theirs", "email": "same@%s.example" % t,
                                          "company": t}, token=o_tok).status == 201
    r = post("name,company,owner_id\nOther's,%s,%d\n" % (t, o["id"]), s_tok)
    assert r.status == 422 and errors_of(r) == [(2, "owner_id")], r.text
    assert count(t) == 1
    r = post("name,email,company,owner_id\nMine,same@%s.example,%s,%d\nAlso mine,,%s,\n"
             % (t, t, s["id"], t), s_tok)
    assert r.status == 200 and r.json["imported"] == 2, r.text
    mine = request("GET", "/api/leads?q=%s" % t, token=s_tok).json["data"]
    assert sorted((l["name"], l["owner"]["id"]) for l in mine) == [("Also mine", s["id"]),
                                                                   ("Mine", s["id"])]
    # Now it is a duplicate: of its own lead.
    r = post("name,email,company\nTwice,SAME@%s.example,%s\n" % (t, t), s_tok)
    assert r.status == 422 and errors_of(r) == [(2, "email")]


def test_admin_and_manager_assign_any_active_owner(users, admin):
    t = tag()
    sales = users["sales"][1]["id"]
    gone_tok, gone = make_user(admin["token"], "SALES_EXECUTIVE")
    assert request("PATCH", "/api/users/%d" % gone["id"], {"active": False},
                   token=admin["token"]).status == 200
    for role in ("admin", "manager"):
        tok = users[role][0]
        r = post("name,company,owner_id\nX,%s,%d\nY,%s,%d\nZ,%s,abc\n"
                 % (t, sales, t, gone["id"], t), tok)
        assert r.status == 422, r.text
        assert [(e["row"], e["field"], e["problem"]) for e in r.json["errors"]] == [
            (3, "owner_id", "must be an active user"), (4, "owner_id", "must be a positive integer")]
        r = post("name,company,owner_id\n%s lead,%s,%d\n" % (role, t, sales), tok)
        assert r.status == 200 and r.json["imported"] == 1, r.text
    assert count(t) == 2


def test_errors_are_capped_at_100_and_counted(users):
    t = tag()
    rows = "".join(",%s\n" % t for _ in range(150))
    r = post("name,company\n" + rows, users["admin"][0])
    assert r.status == 422
    assert len(r.json["errors"]) == 100 and r.json["errors_total"] == 150
    assert [e["row"] for e in r.json["errors"]] == list(range(2, 102))


def test_the_stream_gets_one_summary_per_owner(users):
    s_tok, s = users["sales"]
    t = tag()
    stream = Stream(token=s_tok)
    try:
        assert stream.wait(lambda ms: stream.retry is not None, 5)
        r = post("name,company\n" + "".join("L%d,%s\n" % (i, t) for i in range(30)), s_tok)
        assert r.status == 200 and r.json["imported"] == 30, r.text
        got = lambda ms: [json.loads(m["data"]) for m in ms if m["event"] == "leads.imported"]
        assert stream.wait(got)
        data = got(stream.messages)
        assert len(data) == 1 and data[0]["lead_id"] is None
        assert data[0]["data"] == {"count": 30, "owner": {"id": s["id"], "name": s["name"]}}
        assert not [m for m in stream.messages if m["event"] == "lead.created"]
    finally:
        stream.close()


# -- the round trip: 10 000 leads exported, imported into an empty leads table, exported again --

TS = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def masked(body):
    """The export with each record's id, created_at and updated_at replaced: those the database
    assigns (a new id, the import's time). Everything else must be the same, byte for byte."""
    first = re.compile(rb"^(%s)\r\n\d+," % HEADER.encode())
    body = first.sub(HEADER.encode() + b"\r\nID,", body, count=1)
    return re.sub(rb"," + TS + b"," + TS + rb"\r\n(\d+,)?",
                  lambda m: b",C,U\r\n" + (b"ID," if m.group(1) else b""), body)


def test_export_imports_back_unchanged(users, admin):
    tok = admin["token"]
    t = tag()
    s1, s2 = users["sales"][1]["id"], users["other"][1]["id"]
    # Every kind of cell: quotes, commas, line ends, formula starts (neutralised on the way
    # out), quotes before them, backslashes and tabs (COPY's escapes), Unicode, empty cells.
    sql(r"""INSERT INTO leads (name, email, phone, company, source, status, won_at, value, notes,
                               owner_id, created_by, created_at)
        SELECT (ARRAY['Plain', 'Comma, Inc', 'Say "hi"', E'Line\nbreak', '=HYPERLINK("x")',
                      '+1 555', '-2+3', '@SUM(A1)', '''=quoted', '''tis', 'Zoë 東京',
                      E'back\\slash'])[1 + i % 12] || ' ' || i,
               CASE WHEN i % 11 <> 0 THEN 'rt' || i || '@' || :'p1' || '.example' END,
               CASE i % 3 WHEN 1 THEN '+44 ' || i WHEN 2 THEN '-' || i END,
               :'p1' || ' co ' || i % 7,
               (ARRAY['WEBSITE', 'REFERRAL', 'SOCIAL', 'EMAIL', 'COLD_CALL', 'EVENT',
                      'OTHER'])[1 + i % 7],
               s.status, CASE WHEN s.status = 'WON' THEN now() END, (i * 37 % 100000) / 100.0,
               CASE i % 6 WHEN 1 THEN E'tab\there' WHEN 2 THEN ' lead and trail '
                   WHEN 3 THEN E'=1+1\r\nx' WHEN 4 THEN E'\\N back\\slash' WHEN 5 THEN '-' END,
               CASE i % 3 WHEN 1 THEN :'p2'::bigint WHEN 2 THEN :'p3'::bigint END, :'p4'::bigint,
               timestamptz '2025-01-01T00:00:00Z' + i * interval '1 second'
        FROM generate_series(1, 10000) i,
             LATERAL (SELECT (ARRAY['NEW', 'CONTACTED', 'QUALIFIED', 'PROPOSAL', 'NEGOTIATION',
                                    'WON', 'LOST'])[1 + i % 7] AS status) s""",
        t, s1, s2, admin["user"]["id"])
    # These leads, oldest first (the import keeps the file's order in its ids, and gives all
    # one created_at); then the leads table is emptied (DELETE: its triggers keep the
    # dashboard's summaries right for the tests after this one).
    first = request("GET", "/api/leads.csv?sort=created_at&q=%s" % t, token=tok)
    assert first.status == 200 and first.body.count(b"@%s.example," % t.encode()) > 9000
    sql("DELETE FROM leads")
    assert request("GET", "/api/dashboard/stats", token=tok).json["total_leads"] == 0
    r = post(first.body, tok)
    assert r.status == 200, r.text
    assert r.json == {"imported": 10000, "skipped": 0, "errors": [], "errors_total": 0}
    again = request("GET", "/api/leads.csv?sort=created_at&q=%s" % t, token=tok)
    assert again.status == 200
    assert masked(again.body) == masked(first.body)
    assert masked(first.body).count(b"\r\nID,") == 10000  # every record was masked, no more
    # What was masked: new ids, in the file's order; one created_at for all.
    ids = [int(m) for m in re.findall(rb"\r\n(\d+),", again.body[len(HEADER):])]
    assert len(ids) == 10000 and ids == sorted(ids)
    assert len(set(re.findall(rb"," + TS + b"," + TS + rb"\r\n", again.body))) == 1
    # The summaries the dashboard reads were kept by the same triggers.
    assert request("GET", "/api/dashboard/stats", token=tok).json["total_leads"] == 10000


def test_the_program_enforces_the_limits_too(users):
    """Past nginx, on crm-leads' own socket: 10 MiB for the import, 64 KiB elsewhere; a body
    over its path's limit is refused from its Content-Length, before it is read."""
    sock = os.path.join(VAR, "run", "crm-leads.sock")
    params = {"REQUEST_METHOD": "POST", "DOCUMENT_URI": "/api/leads/import",
              "CONTENT_TYPE": "text/csv", "CONTENT_LENGTH": str(MAX + 1),
              "HTTP_AUTHORIZATION": "Bearer " + users["admin"][0], "REMOTE_ADDR": "127.0.0.1"}
    head, body = fcgi(sock, params)
    assert head.startswith("Status: 413") and "X-Request-Id: " in head, head
    assert json.loads(body)["error"] == {"code": "payload_too_large",
                                         "message": "request body is larger than 10 MiB"}
    csv = b"name\n" + b"x" * 70000 + b"\n"
    head, body = fcgi(sock, dict(params, CONTENT_LENGTH=str(len(csv)), QUERY_STRING="dry_run=1"),
                      csv)
    assert head.startswith("Status: 200"), head  # a dry run: read whole, over 64 KiB
    assert json.loads(body)["errors"][0]["problem"] == "must be 1 to 200 characters long"
    head, body = fcgi(sock, dict(params, DOCUMENT_URI="/api/leads", CONTENT_LENGTH="65537",
                                 CONTENT_TYPE="application/json"))
    assert head.startswith("Status: 413"), head
    assert json.loads(body)["error"]["message"] == "request body is larger than 64 KiB"
