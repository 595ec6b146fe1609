"""Dashboard figures against expectations computed here from the base tables (leads, activities,
users), not from the summaries the triggers keep. Runs after the lead tests (file order), so the
database holds a history of creates, edits, status changes, assignments and deletes."""
import concurrent.futures
import datetime
import queue
import subprocess
import threading
import time
from decimal import Decimal

import pytest

from conftest import env_file, make_user, request, sql

STATUSES = ["NEW", "CONTACTED", "QUALIFIED", "PROPOSAL", "NEGOTIATION", "WON", "LOST"]


@pytest.fixture(scope="module")
def tok(admin):
    """Adds a varied history of its own first: the figures must survive every kind of write."""
    t = admin["token"]
    sales = [make_user(t, "SALES_EXECUTIVE") for _ in range(3)]
    for i in range(12):
        owner = sales[i % 3]
        r = request("POST", "/api/leads", {"name": "dash %d" % i, "value": 1000 + i * 10.25,
                                           "owner_id": owner[1]["id"]}, token=t)
        lead = r.json["lead"]
        request("POST", "/api/leads/%d/activity" % lead["id"],
                {"type": "CALL", "content": "c"}, token=owner[0])
        request("PATCH", "/api/leads/%d/status" % lead["id"],
                {"status": "WON" if i % 3 == 0 else STATUSES[i % 7]}, token=owner[0])
        if i % 4 == 0:
            request("PATCH", "/api/leads/%d" % lead["id"], {"value": 5.5}, token=t)
        if i % 5 == 0:
            request("PATCH", "/api/leads/%d/assign" % lead["id"],
                    {"owner_id": sales[(i + 1) % 3][1]["id"]}, token=t)
        if i == 11:
            request("DELETE", "/api/leads/%d" % lead["id"], token=t)
    return t


def one(query, *args):
    return sql(query, *args)[0]


def test_stats(tok):
    # Rows at both sides of the 7-day edge, in its partial first hour and just before it.
    lead_ids = [r[0] for r in sql("SELECT id FROM leads ORDER BY id DESC LIMIT 2")]
    sql("UPDATE leads SET created_at = now() - interval '7 days' + interval '20 minutes'"
        " WHERE id = :'p1'", lead_ids[0])
    sql("UPDATE leads SET created_at = now() - interval '7 days' - interval '20 minutes'"
        " WHERE id = :'p1'", lead_ids[1])
    sql("INSERT INTO activities (lead_id, type, content, actor_id, created_at)"
        " SELECT id, 'NOTE', 'edge', created_by, now() - interval '7 days' + interval '5 minutes'"
        " FROM leads WHERE id = :'p1'", lead_ids[0])
    assert_stats(tok)


def test_created_since_at_every_point_of_an_hour(tok):
    """crm_created_since(t), the 7-day counts' function, counts from the hour boundary nearest
    to t: the rows from t to the next hour when t is late in its hour, the hours' summaries from
    its start less the rows before t when early. Rows at known instants in and around one hour, and t at each of
    them and a microsecond either side, each against a count of the rows themselves."""
    hour = datetime.datetime(2021, 3, 4, 10, tzinfo=datetime.timezone.utc)
    at = [(hour + datetime.timedelta(minutes=m, microseconds=u)).isoformat() for m, u in (
        (-1, 0), (0, 0), (0, 1), (12, 0), (29, 999999), (30, 0), (30, 1), (45, 0), (59, 999999),
        (60, 0), (61, 0))]
    times = "{%s}" % ",".join('"%s"' % t for t in at)
    lead_id, user_id = sql("SELECT id, created_by FROM leads ORDER BY id LIMIT 1")[0]
    sql("INSERT INTO leads (name, created_by, created_at) SELECT 'since', :'p1', t"
        " FROM unnest(:'p2'::timestamptz[]) t", user_id, times)
    sql("INSERT INTO activities (lead_id, type, content, actor_id, created_at)"
        " SELECT :'p1', 'NOTE', 'since', :'p2', t FROM unnest(:'p3'::timestamptz[]) t",
        lead_id, user_id, times)
    try:
        rows = sql("SELECT t, c.leads = (SELECT count(*) FROM leads WHERE created_at >= t),"
                   " c.activities = (SELECT count(*) FROM activities WHERE created_at >= t)"
                   " FROM unnest(:'p1'::timestamptz[]) a, LATERAL (VALUES (a - interval"
                   " '1 microsecond'), (a), (a + interval '1 microsecond')) v (t),"
                   " LATERAL crm_created_since(t) c", times)
        assert len(rows) == 3 * len(at)
        assert [r for r in rows if r[1:] != ["t", "t"]] == []
    finally:
        sql("DELETE FROM activities WHERE content = 'since' AND lead_id = :'p1'", lead_id)
        sql("DELETE FROM leads WHERE name = 'since' AND created_at < '2022-01-01'")


def assert_stats(tok):
    r = request("GET", "/api/dashboard/stats", token=tok)
    assert r.status == 200, r.text
    total, won, lost, pipeline, won_value, new7 = one(
        "SELECT count(*), count(*) FILTER (WHERE status = 'WON'),"
        " count(*) FILTER (WHERE status = 'LOST'),"
        " coalesce(sum(value) FILTER (WHERE status NOT IN ('WON', 'LOST')), 0),"
        " coalesce(sum(value) FILTER (WHERE status = 'WON'), 0),"
        " count(*) FILTER (WHERE created_at >= now() - interval '7 days') FROM leads")
    acts7 = one("SELECT count(*) FROM activities WHERE created_at >= now() - interval '7 days'")
    roles = dict(sql("SELECT role, count(*) FROM users WHERE active GROUP BY role"))
    total, won, lost = int(total), int(won), int(lost)
    s = r.json
    assert s["total_leads"] == total and s["won"] == won and s["lost"] == lost
    assert s["open"] == total - won - lost
    assert s["new_leads_7d"] == int(new7) and s["activities_7d"] == int(acts7[0])
    assert Decimal(str(s["pipeline_value"])) == Decimal(pipeline)
    assert Decimal(str(s["won_value"])) == Decimal(won_value)
    assert s["conversion_rate"] == (round(won / (won + lost), 4) if won + lost else 0)
    assert s["users"] == {k: int(roles.get(k, 0)) for k in ("ADMIN", "MANAGER",
                                                            "SALES_EXECUTIVE")}


def test_leads_by_status(tok):
    assert_by_status(tok)


def assert_by_status(tok):
    r = request("GET", "/api/dashboard/leads-by-status", token=tok)
    assert r.status == 200
    counts = dict(sql("SELECT status, count(*) FROM leads GROUP BY status"))
    assert r.json["data"] == [{"status": s, "count": int(counts.get(s, 0))} for s in STATUSES]


def expected_top(period=None):
    """Every active SALES_EXECUTIVE, ranked by won_value, then won, then id."""
    cond = ""
    args = []
    if period:
        cond = " AND l.won_at >= :'p1' AND l.won_at <= :'p2'"
        args = list(period)
    rows = sql(
        "SELECT u.id, u.name,"
        " (SELECT count(*) FROM leads l WHERE l.owner_id = u.id AND l.status = 'WON'" + cond + "),"
        " (SELECT coalesce(sum(value), 0) FROM leads l WHERE l.owner_id = u.id"
        "  AND l.status = 'WON'" + cond + "),"
        " (SELECT count(*) FROM leads l WHERE l.owner_id = u.id),"
        " (SELECT count(*) FROM activities a WHERE a.actor_id = u.id)"
        " FROM users u WHERE u.role = 'SALES_EXECUTIVE' AND u.active", *args)
    out = [{"user": {"id": int(i), "name": n}, "won": int(w), "won_value": Decimal(v),
            "leads": int(l), "activities": int(a)} for i, n, w, v, l, a in rows]
    return sorted(out, key=lambda x: (-x["won_value"], -x["won"], x["user"]["id"]))


def normalise(data):
    return [dict(d, won_value=Decimal(str(d["won_value"]))) for d in data]


def test_top_sales_all_time(tok):
    r = request("GET", "/api/dashboard/top-sales?limit=100", token=tok)
    assert r.status == 200
    assert normalise(r.json["data"]) == expected_top()[:100]
    r = request("GET", "/api/dashboard/top-sales", token=tok)
    assert normalise(r.json["data"]) == expected_top()[:5]


def test_top_sales_period(tok):
    # Move one won lead's win into the past: it counts in its period and not in today's.
    lead_id = one("SELECT id FROM leads WHERE status = 'WON' AND owner_id IS NOT NULL"
                  " ORDER BY id DESC LIMIT 1")[0]
    sql("UPDATE leads SET won_at = '2024-03-15T10:00:00Z' WHERE id = :'p1'", lead_id)
    others = [r[0] for r in sql("SELECT id FROM leads WHERE status = 'WON' AND owner_id IS NOT"
                                " NULL ORDER BY id DESC LIMIT 4 OFFSET 1")]
    for lid, when in zip(others, ("2024-03-14T23:59:59Z", "2024-03-16T00:00:00Z",
                                  "2024-03-16T12:00:00Z", "2024-03-20T08:00:00Z")):
        sql("UPDATE leads SET won_at = :'p1' WHERE id = :'p2'", when, lid)
    for frm, to, period in (
            ("2024-03-14T12:00:00Z", "2024-03-16T06:00:00Z",
             ("2024-03-14T12:00:00Z", "2024-03-16T06:00:00Z")),
            ("2024-03-15T10:00:00Z", "2024-03-20T07:59:59Z",
             ("2024-03-15T10:00:00Z", "2024-03-20T07:59:59Z")),
            ("", "2024-03-16", ("1900-01-01", "2024-03-16T23:59:59.999999Z")),
            ("2024-03-01", "2024-03-31", ("2024-03-01T00:00:00Z", "2024-03-31T23:59:59.999Z")),
            ("2024-03-15T10:00:00Z", "2024-03-15T10:00:00Z",
             ("2024-03-15T10:00:00Z", "2024-03-15T10:00:00Z")),
            ("2025-01-01", "2099-12-31", ("2025-01-01", "2100-01-01"))):
        query = "limit=100" + ("&from=" + frm if frm else "") + "&to=" + to
        r = request("GET", "/api/dashboard/top-sales?" + query, token=tok)
        assert r.status == 200, r.text
        assert normalise(r.json["data"]) == expected_top(period)[:100], (frm, to)
    r = request("GET", "/api/dashboard/top-sales?limit=100&from=2024-03-01&to=2024-03-31",
                token=tok)
    assert sum(d["won"] for d in r.json["data"]) == 5


def test_top_sales_periods_across_days_months_and_years(tok):
    """A period is read as whole months, whole days and the partial days at its ends: wins one
    microsecond either side of a day, month and year boundary (a leap day among them) count in
    exactly the periods that hold them, whatever part of a period they fall in."""
    wins = ["2023-12-31T23:59:59.999999Z", "2024-01-01T00:00:00Z", "2024-01-31T23:59:59.999999Z",
            "2024-02-01T00:00:00Z", "2024-02-29T12:00:00Z", "2024-03-01T00:00:00Z",
            "2024-04-30T23:59:59.999999Z", "2024-05-01T00:00:00.000001Z", "2024-07-15T08:00:00Z"]
    seller = make_user(tok, "SALES_EXECUTIVE")[1]["id"]
    ids = []
    for i, when in enumerate(wins):
        r = request("POST", "/api/leads", {"name": "won %s" % when, "value": 100 + i,
                                           "owner_id": seller, "status": "WON"}, token=tok)
        assert r.status == 201, r.text
        ids.append(r.json["lead"]["id"])
    for lid, when in zip(ids, wins):
        sql("UPDATE leads SET won_at = :'p1' WHERE id = :'p2'", when, lid)
    end = "T23:59:59.999999Z"
    for frm, to, period in (
            ("2024-01-01", "2024-01-31", ("2024-01-01T00:00:00Z", "2024-01-31" + end)),
            ("2024-01-01", "2024-04-30", ("2024-01-01T00:00:00Z", "2024-04-30" + end)),
            ("2023-12-31", "2024-02-01", ("2023-12-31T00:00:00Z", "2024-02-01" + end)),
            ("2024-01-15T10:00:00Z", "2024-03-10T00:00:00Z",
             ("2024-01-15T10:00:00Z", "2024-03-10T00:00:00Z")),
            ("2024-01-31T23:59:59.999999Z", "2024-02-01T00:00:00Z",
             ("2024-01-31T23:59:59.999999Z", "2024-02-01T00:00:00Z")),
            ("2024-02-01T00:00:00.000001Z", "2024-04-30T23:59:59.999998Z",
             ("2024-02-01T00:00:00.000001Z", "2024-04-30T23:59:59.999998Z")),
            ("2024-02-29", "2024-02-29", ("2024-02-29T00:00:00Z", "2024-02-29" + end)),
            ("2024-02-10", "2024-02-20", ("2024-02-10T00:00:00Z", "2024-02-20" + end)),
            ("2024-01-01T00:00:00%2B01:00", "2024-05-01T00:00:00-01:00",
             ("2023-12-31T23:00:00Z", "2024-05-01T01:00:00Z")),
            ("", "2024-02-01", ("1900-01-01", "2024-02-01" + end)),
            ("2024-02-29", "", ("2024-02-29T00:00:00Z", "2999-12-31"))):
        query = "limit=100" + ("&from=" + frm if frm else "") + ("&to=" + to if to else "")
        r = request("GET", "/api/dashboard/top-sales?" + query, token=tok)
        assert r.status == 200, r.text
        assert normalise(r.json["data"]) == expected_top(period)[:100], (frm, to)
    r = request("GET", "/api/dashboard/top-sales?limit=100&from=2024-01-01&to=2024-04-30",
                token=tok)
    assert [d["won"] for d in r.json["data"] if d["user"]["id"] == seller] == [6]
    # Every period between two of the instants a microsecond around each win (or open), for
    # every owner: the summary's figures equal the count of the wins themselves.
    assert sql(
        "WITH t AS (SELECT won_at + d * interval '1 microsecond' AS t FROM leads,"
        "  generate_series(-1, 1) d WHERE status = 'WON' AND won_at < '2025-01-01'"
        "  UNION SELECT NULL),"
        " p AS (SELECT a.t AS t1, b.t AS t2 FROM t a, t b WHERE a.t <= b.t OR a.t IS NULL"
        "  OR b.t IS NULL)"
        " SELECT count(*) FILTER (WHERE coalesce(w.won, 0) <> b.won"
        "  OR coalesce(w.won_value, 0) <> b.won_value)"
        " FROM p CROSS JOIN users u LEFT JOIN LATERAL crm_won_by_owner(p.t1, p.t2) w"
        "  ON w.user_id = u.id,"
        "  LATERAL (SELECT count(*) AS won, coalesce(sum(l.value), 0) AS won_value FROM leads l"
        "   WHERE l.owner_id = u.id AND l.status = 'WON' AND l.won_at >= coalesce(p.t1,"
        "   '-infinity') AND l.won_at <= coalesce(p.t2, 'infinity')) b"
        " WHERE u.id IN (SELECT owner_id FROM leads WHERE status = 'WON')") == [["0"]]


def test_summaries_equal_a_full_recount(tok):
    assert_summaries()


def assert_summaries():
    """The trigger-kept summaries, added up over their stripes, agree with counting everything
    again, row by row."""
    assert sql("SELECT status, sum(leads), sum(value) FROM lead_totals GROUP BY status"
               " HAVING sum(leads) <> 0 OR sum(value) <> 0 ORDER BY status") == \
        sql("SELECT status, count(*), sum(value) FROM leads GROUP BY status ORDER BY status")
    assert sql(
        "SELECT u.id FROM users u LEFT JOIN (SELECT user_id, sum(leads) AS leads,"
        " sum(activities) AS activities, sum(won) AS won, sum(won_value) AS won_value"
        " FROM user_totals GROUP BY user_id) t ON t.user_id = u.id"
        " WHERE coalesce(t.leads, 0) <> (SELECT count(*) FROM leads WHERE owner_id = u.id)"
        " OR coalesce(t.activities, 0) <> (SELECT count(*) FROM activities WHERE actor_id = u.id)"
        " OR coalesce(t.won, 0) <> (SELECT count(*) FROM leads WHERE owner_id = u.id"
        "   AND status = 'WON')"
        " OR coalesce(t.won_value, 0) <> (SELECT coalesce(sum(value), 0) FROM leads"
        "   WHERE owner_id = u.id AND status = 'WON')") == []


def test_time_buckets_equal_a_full_recount(tok):
    assert_time_buckets()


def assert_time_buckets():
    assert sql("SELECT hour, sum(leads) FROM hourly_totals GROUP BY hour HAVING sum(leads) <> 0"
               " ORDER BY hour") == \
        sql("SELECT date_trunc('hour', created_at, 'UTC') h, count(*) FROM leads"
            " GROUP BY h ORDER BY h")
    assert sql("SELECT hour, sum(activities) FROM hourly_totals GROUP BY hour"
               " HAVING sum(activities) <> 0 ORDER BY hour") == \
        sql("SELECT date_trunc('hour', created_at, 'UTC') h, count(*) FROM activities"
            " GROUP BY h ORDER BY h")
    assert sql("SELECT user_id, day, won, won_value FROM won_daily WHERE won <> 0"
               " ORDER BY user_id, day") == \
        sql("SELECT owner_id, date_trunc('day', won_at, 'UTC') d, count(*), sum(value)"
            " FROM leads WHERE status = 'WON' AND owner_id IS NOT NULL GROUP BY owner_id, d"
            " ORDER BY owner_id, d")
    assert sql("SELECT user_id, month, won, won_value FROM won_monthly WHERE won <> 0"
               " ORDER BY user_id, month") == \
        sql("SELECT owner_id, date_trunc('month', won_at, 'UTC') m, count(*), sum(value)"
            " FROM leads WHERE status = 'WON' AND owner_id IS NOT NULL GROUP BY owner_id, m"
            " ORDER BY owner_id, m")


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "from=2024-02-30",
                                   "to=tomorrow", "from=%ZZ", "from=2024-01-01T00:00:00%2B23:00",
                                   "to=2024-01-01T00:00:00-16:00",
                                   "from=0001-01-01T00:00:00%2B01:00",
                                   "to=9999-12-31T23:59:59-15:59"])
def test_top_sales_bad_query(tok, query):
    r = request("GET", "/api/dashboard/top-sales?" + query, token=tok)
    assert r.status == 400 and r.error_code() == "invalid_query"


def test_unknown_dashboard_route(tok):
    r = request("GET", "/api/dashboard/nothing", token=tok)
    assert r.status == 404 and r.error_code() == "not_found"
    r = request("POST", "/api/dashboard/stats", {"a": 1}, token=tok)
    assert r.status == 405 and r.header("Allow") == "GET, HEAD"


class Session:
    """One database connection held open (an interactive psql), for a transaction that spans
    statements; stripe is the summary stripe its writes land on (schema.sql crm_stripe)."""

    def __init__(self):
        self.p = subprocess.Popen(["psql", env_file()["DATABASE_URL"], "-X", "-q", "-t", "-A"],
                                  text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.lines = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(x) for x in self.p.stdout] and None,
                         daemon=True).start()
        self.stripe = int(self.run("SELECT pg_backend_pid() % 16;")[0])

    def send(self, query):
        self.p.stdin.write(query + "\n\\echo -- done\n")
        self.p.stdin.flush()
        self.out = []

    def result(self, timeout=60):
        """psql's output lines (errors included) for what was sent last; None while it still
        runs after timeout seconds (a later call goes on waiting)."""
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0, end - time.monotonic()))
            except queue.Empty:
                return None
            if line == "-- done\n":
                return self.out
            self.out.append(line.rstrip("\n"))

    def run(self, query):
        self.send(query)
        out = self.result()
        assert out is not None, "psql still running %r" % query
        return out

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def two_sessions():
    """Two connections whose writes go to different stripes. Two connections that share a
    stripe wait for each other by design (one row per stripe), which is not what is tested:
    reconnect the second until its backend's pid falls on another stripe."""
    a = Session()
    for _ in range(50):
        b = Session()
        if b.stripe != a.stripe:
            return a, b
        b.close()
    a.close()
    raise AssertionError("50 connections in a row on stripe %d" % a.stripe)


def same_stripe_sessions():
    """Two connections whose writes go to the same stripe (reconnecting the second until its
    backend's pid falls on the first one's)."""
    a = Session()
    for _ in range(200):
        b = Session()
        if b.stripe == a.stripe:
            return a, b
        b.close()
    a.close()
    raise AssertionError("200 connections and none on stripe %d" % a.stripe)


# The write lead_create makes (lib/db.c): the lead and its CREATED activity, in one statement.
CREATE_LEAD = ("WITH l AS (INSERT INTO leads (name, value, owner_id, created_by)"
               " VALUES ('%s', 10, %d, %d) RETURNING id)"
               " INSERT INTO activities (lead_id, type, actor_id) SELECT id, 'CREATED', %d FROM l;")


def assert_writes_do_not_wait(held, write):
    """held runs in a transaction left open on one connection, then write on a connection of
    another stripe, which must not wait for the first: before the stripes both upserted the same
    summary rows (lead_totals' NEW, the hour's hourly_totals, the user's user_totals), so the
    second waited for the first to commit, and every creation queued behind the one before."""
    a, b = two_sessions()
    try:
        assert a.run("BEGIN; " + held + " SELECT 'held';") == ["held"]
        out = b.run("SET lock_timeout = '2s'; BEGIN; " + write + " SELECT 'written'; ROLLBACK;")
        assert out == ["written"], out
    finally:
        a.run("ROLLBACK;")
        a.close()
        b.close()


def test_lead_creations_do_not_wait_for_each_other(admin, sales):
    actor, owner = admin["user"]["id"], sales[1]["id"]
    assert_writes_do_not_wait(CREATE_LEAD % ("held", owner, actor, actor),
                              CREATE_LEAD % ("second", owner, actor, actor))


def test_activities_do_not_wait_for_each_other(admin, sales):
    r = request("POST", "/api/leads", {"name": "timeline"}, token=sales[0])
    assert r.status == 201, r.text
    note = ("INSERT INTO activities (lead_id, type, content, actor_id)"
            " VALUES (%d, 'NOTE', 'n', %d);" % (r.json["lead"]["id"], sales[1]["id"]))
    assert_writes_do_not_wait(note, note)


def writer(tok, owners, n):
    """One client's writes: creates leads and moves each through activities, status changes
    (some to WON and back), reassignments, value edits and deletes."""
    for i in range(n):
        r = request("POST", "/api/leads", {"name": "race %d" % i, "value": 100 + i * 7.5,
                                           "owner_id": owners[i % len(owners)]}, token=tok)
        assert r.status == 201, r.text
        lead = r.json["lead"]["id"]
        steps = [("POST", "/activity", {"type": "CALL", "content": "c"}),
                 ("PATCH", "/status", {"status": STATUSES[(i + 3) % 7]}),
                 ("PATCH", "/assign", {"owner_id": owners[(i + 1) % len(owners)]}),
                 ("PATCH", "", {"value": 12.5 * i}),
                 ("PATCH", "/status", {"status": "WON" if i % 2 else "LOST"})]
        for method, path, body in steps[:1 + i % len(steps)]:
            r = request(method, "/api/leads/%d%s" % (lead, path), body, token=tok)
            assert r.status in (200, 201), r.text
        if i % 4 == 3:
            assert request("DELETE", "/api/leads/%d" % lead, token=tok).status == 204


def session_writer(session, actor, owners, n):
    """The same through a database connection of its own (another stripe than the API's)."""
    for i in range(n):
        out = session.run(CREATE_LEAD % ("direct %d" % i, owners[i % len(owners)], actor, actor) +
                          " UPDATE leads SET status = 'WON', won_at = now()"
                          " WHERE id = currval('leads_id_seq') AND %d %% 2 = 0;" % i +
                          " DELETE FROM leads WHERE id = currval('leads_id_seq') AND %d %% 3 = 2;"
                          % i)
        assert out == [], out


def test_figures_after_concurrent_writes(tok, admin):
    """Many writers at once, through the API and through two connections of different stripes:
    afterwards every figure of the dashboard equals the one counted from the leads and
    activities themselves, and the summaries are spread over more than one stripe (the readers
    add them up)."""
    owners = [make_user(tok, "SALES_EXECUTIVE")[1]["id"] for _ in range(3)]
    sessions = two_sessions()
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            jobs = [pool.submit(writer, tok, owners, 6) for _ in range(6)]
            jobs += [pool.submit(session_writer, s, admin["user"]["id"], owners, 8)
                     for s in sessions]
            for job in jobs:
                job.result()
    finally:
        for s in sessions:
            s.close()
    assert int(sql("SELECT count(DISTINCT stripe) FROM lead_totals WHERE leads <> 0")[0][0]) > 1
    assert_stats(tok)
    assert_by_status(tok)
    assert_summaries()
    assert_time_buckets()
    r = request("GET", "/api/dashboard/top-sales?limit=100", token=tok)
    assert normalise(r.json["data"]) == expected_top()[:100]
    today = datetime.datetime.now(datetime.timezone.utc).date()
    frm, to = today - datetime.timedelta(days=1), today + datetime.timedelta(days=1)
    r = request("GET", "/api/dashboard/top-sales?limit=100&from=%s&to=%s" % (frm, to), token=tok)
    assert r.status == 200, r.text
    assert normalise(r.json["data"]) == expected_top(("%sT00:00:00Z" % frm,
                                                      "%sT23:59:59.999999Z" % to))[:100]


def test_writers_of_one_stripe_do_not_deadlock(admin, sales):
    """Two transactions of one stripe (or before the stripes, any two) whose triggers take
    summary rows of several tables: A wins a lead of X (lead_totals, X's user_totals), B logs an
    activity by Y (Y's user_totals, the hour), then A logs one by Y too and B wins another lead
    of X. Each would hold a row the other waits for: a deadlock, one of them rolled back (through
    the API: a 500 for a lead created for someone while its creator logged an activity). The
    stripe's lock makes B wait for A's commit instead."""
    x, y = sales[1]["id"], admin["user"]["id"]
    leads = []
    for name in ("won 1", "won 2", "timeline"):
        r = request("POST", "/api/leads", {"name": name}, token=sales[0])
        assert r.status == 201, r.text
        leads.append(r.json["lead"]["id"])
    win = "UPDATE leads SET status = 'WON', won_at = now() WHERE id = %d AND owner_id = %d;"
    note = "INSERT INTO activities (lead_id, type, actor_id) VALUES (%d, 'NOTE', %d);" % (
        leads[2], y)
    a, b = same_stripe_sessions()
    try:
        assert a.run("BEGIN; " + win % (leads[0], x)) == []
        b.send("SET lock_timeout = '20s'; BEGIN; " + note)
        first = b.result(timeout=1)  # before the stripe's lock: done at once; now: waits for A
        a.send(note + " COMMIT;")
        if first is None:
            first = b.result()  # A commits, then B goes on
        b.send(win % (leads[1], x) + " COMMIT;")
        assert [first, a.result(), b.result()] == [[], [], []]
    finally:
        a.close()
        b.close()
    assert sql("SELECT count(*) FROM leads WHERE id IN (%d, %d) AND status = 'WON'"
               % tuple(leads[:2])) == [["2"]]
