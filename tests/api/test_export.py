"""GET /api/leads.csv: the rows GET /api/leads finds (every filter, every sort, row security),
RFC 4180 CSV with formula cells neutralised, streamed in constant memory."""
import csv
import http.client
import io
import os
import socket
import subprocess
import time
import uuid

import pytest

from conftest import HOST, PORT, ROOT, VAR, fcgi, make_user, next_source, request, sql

HEADER = ["id", "name", "email", "phone", "company", "source", "status", "value", "notes",
          "owner_id", "owner_name", "created_at", "updated_at"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export(query, token):
    r = request("GET", "/api/leads.csv?" + query, token=token)
    assert r.status == 200, r.text
    assert r.header("Content-Type") == "text/csv; charset=utf-8; header=present"
    assert r.header("Content-Disposition") == 'attachment; filename="leads.csv"'
    return r


def parse(body):
    """The records of a CSV body, by Python's csv module (RFC 4180 dialect: CRLF, quotes)."""
    text = body.decode("utf-8")
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    assert rows[0] == HEADER
    return rows[1:]


def cell(value):
    """What the export writes for a value of a lead: text as is, a formula start neutralised."""
    if value is None:
        return ""
    text = "%.2f" % value if isinstance(value, float) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def expected_row(lead):
    owner = lead["owner"] or {}
    return [cell(lead["id"]), cell(lead["name"]), cell(lead["email"]), cell(lead["phone"]),
            cell(lead["company"]), lead["source"], lead["status"], "%.2f" % lead["value"],
            cell(lead["notes"]), cell(owner.get("id")), cell(owner.get("name")),
            lead["created_at"], lead["updated_at"]]


@pytest.fixture(scope="module")
def world(admin):
    """Leads under one tag: tricky text, and known statuses, sources, owners, values and dates."""
    tok = admin["token"]
    tag = "Exp%s" % uuid.uuid4().hex[:8]
    owners = [make_user(tok, "SALES_EXECUTIVE") for _ in range(2)]
    statuses = ["NEW", "CONTACTED", "WON", "LOST"]
    sources = ["WEBSITE", "REFERRAL", "EVENT"]
    names = ["Plain", "Comma, Inc", 'Say "hi"', "Line\nbreak", "CR\rLF\r\nend", "Zoë ünïcode 東京",
             "=HYPERLINK(\"http://x\")", "+1 555", "-2+3", "@SUM(A1)", "a=b"]
    # Names are trimmed; notes keep their spaces, tabs and line ends.
    notes = ["=1+1", None, "n,\"x\"\n", "\tTabbed", "\rReturn", " leading", "trailing ", "-"]
    leads = []
    for i, name in enumerate(names):
        body = {"name": name, "company": "%s co %d" % (tag, i % 3), "value": (i * 37) % 11 * 100.5,
                "status": statuses[i % 4], "source": sources[i % 3],
                "owner_id": owners[i % 2][1]["id"], "email": "c%d@%s.example" % (i, tag),
                "phone": ["+44 1", "-1", None][i % 3], "notes": notes[i % len(notes)]}
        r = request("POST", "/api/leads", body, token=tok)
        assert r.status == 201, r.text
        lead = r.json["lead"]
        sql("UPDATE leads SET created_at = timestamptz '2025-03-01T12:00:00Z' + :'p1' * interval"
            " '1 day' WHERE id = :'p2'", i, lead["id"])
        leads.append(request("GET", "/api/leads/%d" % lead["id"], token=tok).json["lead"])
    return {"tok": tok, "tag": tag, "leads": leads, "owners": owners}


def test_content_of_a_known_set(world):
    r = export("q=%s&sort=created_at" % world["tag"], world["tok"])
    assert parse(r.body) == [expected_row(l) for l in world["leads"]]


def test_quoting_is_rfc_4180_byte_for_byte(world):
    body = export("q=%s&sort=created_at" % world["tag"], world["tok"]).body
    assert body.startswith(",".join(HEADER).encode() + b"\r\n")
    raw = body.decode("utf-8")
    assert ',"Comma, Inc",' in raw
    assert ',"Say ""hi""",' in raw
    assert ',"Line\nbreak",' in raw and ',"CR\rLF\r\nend",' in raw
    assert ",Zoë ünïcode 東京," in raw
    # Formulas get a quote in front, inside the cell's own quotes when it has any.
    assert ',"\'=HYPERLINK(""http://x"")",' in raw
    assert ",'+1 555," in raw and ",'-2+3," in raw and ",'@SUM(A1)," in raw
    assert ",'\tTabbed," in raw and ',"\'\rReturn",' in raw
    assert ",a=b," in raw and ",trailing ," in raw and ", leading," in raw and ",'-," in raw
    # Nothing else: a line per record, every record ends with CRLF outside quotes.
    assert len(parse(body)) == len(world["leads"])


QUERIES = ["", "status=WON", "status=NEW,LOST", "source=EVENT", "created_from=2025-03-05",
           "created_to=2025-03-04", "created_from=2025-03-03T00:00:00Z&created_to=2025-03-09",
           "status=CONTACTED,WON&source=REFERRAL"] + \
    ["sort=%s%s" % (d, k) for k in ("created_at", "updated_at", "value", "name") for d in ("", "-")]


@pytest.mark.parametrize("query", QUERIES)
def test_each_filter_and_sort_is_the_list(world, query):
    q = "q=%s&%s" % (world["tag"], query)
    listed = request("GET", "/api/leads?limit=100&" + q, token=world["tok"])
    assert listed.status == 200
    want = [expected_row(l) for l in listed.json["data"]]
    assert want, "the query must find something"
    assert parse(export(q, world["tok"]).body) == want


def test_owner_filter_and_row_security(world):
    (s_tok, s_user), _ = world["owners"]
    q = "q=%s" % world["tag"]
    own = [l for l in world["leads"] if l["owner"]["id"] == s_user["id"]]
    by_admin = parse(export("%s&owner_id=%d&sort=created_at" % (q, s_user["id"]),
                            world["tok"]).body)
    assert [r[0] for r in by_admin] == [str(l["id"]) for l in own]
    # A SALES_EXECUTIVE gets its own leads only, whatever it asks for.
    for extra in ("", "&owner_id=%d" % world["owners"][1][1]["id"]):
        got = parse(export("%s&sort=created_at%s" % (q, extra), s_tok).body)
        listed = request("GET", "/api/leads?limit=100&sort=created_at&%s%s" % (q, extra),
                         token=s_tok).json["data"]
        assert got == [expected_row(l) for l in listed]
        assert [r[0] for r in got] == ([str(l["id"]) for l in own] if not extra else [])


@pytest.mark.parametrize("query", ["status=OPEN", "sort=email", "owner_id=0", "created_from=x",
                                   "q=%ff", "source=web"])
def test_bad_filters_are_json_errors(world, query):
    r = request("GET", "/api/leads.csv?" + query, token=world["tok"])
    assert r.status == 400 and r.error_code() == "invalid_query"
    assert r.header("Content-Type").startswith("application/json")


def test_unauthenticated_and_head(world):
    r = request("GET", "/api/leads.csv")
    assert r.status == 401 and r.error_code() == "unauthenticated"
    r = request("HEAD", "/api/leads.csv?q=" + world["tag"], token=world["tok"])
    assert r.status == 200 and r.body == b""
    assert r.header("Content-Type").startswith("text/csv")
    # The worker that answered the HEAD cancelled its statement and serves the next request.
    for _ in range(4):
        export("q=%s" % world["tag"], world["tok"])


# --- a large export -----------------------------------------------------------------------------

BIG = 20000


def peak_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(l for l in f if l.startswith("VmHWM:")).split()[1])


def fcgi_get(path, query, token):
    """One FastCGI GET of the export (the records nginx sends) to the worker on path."""
    return fcgi(path, {"REQUEST_METHOD": "GET", "DOCUMENT_URI": "/api/leads.csv",
                       "QUERY_STRING": query, "HTTP_AUTHORIZATION": "Bearer " + token,
                       "REMOTE_ADDR": "127.0.0.1"})


# The sanitizer build's allocator keeps freed memory in a quarantine (256 MB) to catch uses
# after free: there, memory grows with every allocation, freed or not, so it is measured with
# the quarantine off. The optimised build is make run's, as is.
BUILDS = {"optimised": (os.path.join(ROOT, "build", "crm-leads"), {}),
          "sanitizer": (os.path.join(VAR, "bin", "crm-leads"),
                        {"ASAN_OPTIONS": "detect_leaks=1:quarantine_size_mb=0:thread_local_quarantine_size_kb=0"})}


@pytest.fixture(params=sorted(BUILDS))
def worker(request, tmp_path):
    """A crm-leads worker of each build on a socket of its own (one worker: the process itself),
    on the stack's database and settings; yields (socket path, pid)."""
    binary, env = BUILDS[request.param]
    assert os.access(binary, os.X_OK), binary
    path = str(tmp_path / "leads.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(8)
    os.chmod(tmp_path, 0o755)
    os.chmod(path, 0o777)
    proc = subprocess.Popen(
        [binary, "--workers", "1"], stdin=listener.fileno(), stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "worker.log", "w"),
        env=dict(os.environ, CRM_ENV_FILE=os.path.join(VAR, "crm.env"), **env))
    listener.close()
    try:
        yield path, proc.pid
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        log = (tmp_path / "worker.log").read_text()
        assert "Sanitizer" not in log and "runtime error" not in log, log


@pytest.fixture(scope="module")
def big(admin):
    """BIG leads under one tag, inserted by SQL in one statement (fast), each ~300 bytes of CSV."""
    tag = "Big%s" % uuid.uuid4().hex[:8]
    sql("INSERT INTO leads (name, company, email, notes, value, owner_id, created_by)"
        " SELECT 'Lead ' || g, :'p1', 'l' || g || '@big.example', repeat('note, \"x\" ', 20),"
        " g % 997, NULL, (SELECT min(id) FROM users) FROM generate_series(1, :'p2') g",
        tag, BIG)
    return {"tok": admin["token"], "tag": tag}


def test_large_export_through_nginx(big):
    r = export("q=%s&sort=value" % big["tag"], big["tok"])
    rows = parse(r.body)
    assert len(rows) == BIG
    assert [float(x[7]) for x in rows] == sorted(float(x[7]) for x in rows)
    assert rows[0][8] == 'note, "x" ' * 20


def test_large_export_streams_in_constant_memory(big, worker):
    """No worker's peak memory grows with the export: it holds one row at a time. Two small
    exports first make the memory the request path itself needs (libpq, the arena, the
    connection); the 20 000 rows (7 MB of CSV) after them must not add anything near what
    holding them would."""
    path, pid = worker
    for _ in range(2):
        head, body = fcgi_get(path, "q=%s&created_from=2100-01-01" % big["tag"], big["tok"])
        assert head.startswith("Status: 200") and body.count(b"\r\n") == 1
    before = peak_kb(pid)
    head, body = fcgi_get(path, "q=%s&sort=-name" % big["tag"], big["tok"])
    grown = peak_kb(pid) - before
    assert head.startswith("Status: 200") and "text/csv" in head
    assert len(parse(body)) == BIG
    size_kb = len(body) // 1024
    assert size_kb > 5000
    print("export of %d rows, %d KiB: the worker's peak RSS went from %d to %d KiB"
          % (BIG, size_kb, before, before + grown))
    assert grown < 1024, (before, grown)


def test_a_client_that_leaves_cancels_the_export(big):
    """A client that closes the connection after the first bytes: the worker stops reading rows
    (cancels its statement) and serves the next requests."""
    log_path = os.path.join(VAR, "log", "crm-leads.log")
    gone = open(log_path, errors="replace").read().count("then the client was gone")
    for _ in range(3):
        sock = socket.create_connection((HOST, PORT), timeout=30,
                                        source_address=(next_source(), 0))
        sock.sendall(("GET /api/leads.csv?q=%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                      "\r\n\r\n" % (big["tag"], big["tok"])).encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.close()
    deadline = time.time() + 20
    while time.time() < deadline:
        now = open(log_path, errors="replace").read().count("then the client was gone")
        if now >= gone + 3:
            break
        time.sleep(0.2)
    assert now >= gone + 3
    # No export statement is still running.
    active = sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE"
                 " 'SELECT l.id, l.name, l.email%' AND state = 'active'")
    assert active == [["0"]]
    for _ in range(4):
        r = request("GET", "/api/leads?q=%s&limit=1" % big["tag"], token=big["tok"])
        assert r.status == 200
