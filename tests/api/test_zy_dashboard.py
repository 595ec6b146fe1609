"""Dashboard figures against expectations computed here from the base tables (leads, activities,
users), not from the summaries the triggers keep. Runs after the lead tests (file order), so the
database holds a history of creates, edits, status changes, assignments and deletes."""
from decimal import Decimal

import pytest

from conftest import make_user, request, sql

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
        " SELECT count(*) FILTER (WHERE w.won <> b.won OR w.won_value <> b.won_value)"
        " FROM p, users u, crm_won_in(u.id, p.t1, p.t2) w,"
        "  LATERAL (SELECT count(*) AS won, coalesce(sum(l.value), 0) AS won_value FROM leads l"
        "   WHERE l.owner_id = u.id AND l.status = 'WON' AND l.won_at >= coalesce(p.t1,"
        "   '-infinity') AND l.won_at <= coalesce(p.t2, 'infinity')) b"
        " WHERE u.id IN (SELECT owner_id FROM leads WHERE status = 'WON')") == [["0"]]


def test_summaries_equal_a_full_recount(tok):
    """The trigger-kept summaries agree with counting everything again, row by row."""
    assert sql("SELECT status, leads, value FROM lead_totals WHERE leads <> 0 OR value <> 0"
               " ORDER BY status") == \
        sql("SELECT status, count(*), sum(value) FROM leads GROUP BY status ORDER BY status")
    assert sql(
        "SELECT u.id FROM users u LEFT JOIN user_totals t ON t.user_id = u.id"
        " WHERE coalesce(t.leads, 0) <> (SELECT count(*) FROM leads WHERE owner_id = u.id)"
        " OR coalesce(t.activities, 0) <> (SELECT count(*) FROM activities WHERE actor_id = u.id)"
        " OR coalesce(t.won, 0) <> (SELECT count(*) FROM leads WHERE owner_id = u.id"
        "   AND status = 'WON')"
        " OR coalesce(t.won_value, 0) <> (SELECT coalesce(sum(value), 0) FROM leads"
        "   WHERE owner_id = u.id AND status = 'WON')") == []


def test_time_buckets_equal_a_full_recount(tok):
    assert sql("SELECT hour, leads FROM hourly_totals WHERE leads <> 0 ORDER BY hour") == \
        sql("SELECT date_trunc('hour', created_at, 'UTC') h, count(*) FROM leads"
            " GROUP BY h ORDER BY h")
    assert sql("SELECT hour, activities FROM hourly_totals WHERE activities <> 0"
               " ORDER BY hour") == \
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
