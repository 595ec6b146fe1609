"""GET /metrics/<daemon>: Prometheus' text format, read with Prometheus' own parser
(python3-prometheus-client); counters that move by exactly the requests made, across the workers
of a pool and a worker's death; the outbox and stream figures; refused from other addresses.

scripts/test.sh sets METRICS_ALLOW=127.0.0.1, so scrapes come from 127.0.0.1 and every other
loopback address (the other tests' sources) is one nginx refuses."""
import json
import os
import re
import signal
import threading
import time
import uuid

from prometheus_client.parser import text_string_to_metric_families

from conftest import VAR, register, request, sql
from sse import Stream

SCRAPER = "127.0.0.1"
DAEMONS = ("crm-auth", "crm-login", "crm-leads", "crm-dashboard", "crm-events", "crm-mailer")


def scrape(daemon):
    """{(sample name, frozenset of labels): value} of /metrics/<daemon>, and the families."""
    r = request("GET", "/metrics/" + daemon, source=SCRAPER)
    assert r.status == 200, r.text
    assert r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    families = list(text_string_to_metric_families(r.text))
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for f in families for s in f.samples}
    return samples, {f.name: f.type for f in families}


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0)


def requests_of(samples, route, method, code):
    return value(samples, "crm_http_requests_total", route=route, method=method, code=code)


def test_every_daemon_answers_in_the_text_format():
    """Each daemon's figures parse, with the families of the issue and their types."""
    pool = {"crm_http_requests": "counter", "crm_http_request_duration_seconds": "histogram",
            "crm_http_requests_in_flight": "gauge", "crm_db_reconnects": "counter",
            "crm_db_statement_errors": "counter", "crm_workers": "gauge"}
    for daemon in DAEMONS[:5]:
        samples, types = scrape(daemon)
        for name, kind in pool.items():
            assert types.get(name) == kind, (daemon, name, types)
        # This scrape is the one request in flight (the others ended: the gauge came back down).
        assert value(samples, "crm_http_requests_in_flight") == 1, daemon
        assert value(samples, "crm_workers") == (1 if daemon == "crm-events" else 2), daemon
    _, types = scrape("crm-events")
    assert types["crm_sse_streams_open"] == "gauge"
    assert types["crm_sse_events_fanned_out"] == "counter"
    assert types["crm_sse_streams_dropped_slow"] == "counter"
    _, types = scrape("crm-mailer")
    assert types == {"crm_mail_outbox_messages": "gauge",
                     "crm_mail_outbox_oldest_pending_age_seconds": "gauge"}


def test_counters_move_by_exactly_the_requests_made(admin):
    token = admin["token"]
    r = request("POST", "/api/leads", {"name": "Metrics lead"}, token=token)
    assert r.status == 201
    lead = r.json["lead"]["id"]
    before, _ = scrape("crm-leads")
    for _ in range(7):
        assert request("GET", "/api/leads/%d" % lead, token=token).status == 200
    for _ in range(3):
        assert request("GET", "/api/leads/999999999", token=token).status == 404
    assert request("HEAD", "/api/leads/%d" % lead, token=token).status == 200
    assert request("GET", "/api/leads/%d" % lead).status == 401
    assert request("PUT", "/api/leads/%d" % lead, token=token).status == 405
    after, _ = scrape("crm-leads")

    def moved(method, code, route="/api/leads/:id"):
        return requests_of(after, route, method, code) - requests_of(before, route, method, code)

    assert moved("GET", "2xx") == 7
    assert moved("GET", "4xx") == 4
    assert moved("HEAD", "2xx") == 1
    # No route answers PUT there: a 405 is counted apart from the routes.
    assert moved("PUT", "4xx", route="other") == 1
    count = "crm_http_request_duration_seconds_count"
    assert value(after, count, route="/api/leads/:id") - \
        value(before, count, route="/api/leads/:id") == 12
    inf = "crm_http_request_duration_seconds_bucket"
    assert value(after, inf, route="/api/leads/:id", le="+Inf") == \
        value(after, count, route="/api/leads/:id")
    # The scrape before this one is counted too, once.
    assert moved("GET", "2xx", route="/metrics") == 1


def pids_serving(log, ids):
    """The pids of the crm-auth workers whose log lines carry the request ids ids."""
    pids = set()
    with open(log, errors="replace") as f:
        for line in f:
            m = re.match(r"crm-auth\[(\d+)\]: \w+ req=(\S+) ", line)
            if m and m.group(2) in ids:
                pids.add(m.group(1))
    return pids


def test_the_workers_of_a_pool_are_summed():
    """Requests at once spread over both crm-auth workers; the scrape counts every one."""
    log = os.path.join(VAR, "log", "crm-auth.log")
    seen = set()
    for _ in range(10):
        before, _ = scrape("crm-auth")
        ids = ["metrics-%s" % uuid.uuid4().hex for _ in range(16)]
        barrier = threading.Barrier(len(ids))
        results = []
        threads = [threading.Thread(target=lambda rid=rid: results.append(request(
            "GET", "/api/health", headers={"X-Request-Id": rid}, barrier=barrier).status))
            for rid in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [200] * len(ids)
        after, _ = scrape("crm-auth")
        assert requests_of(after, "/api/health", "GET", "2xx") - \
            requests_of(before, "/api/health", "GET", "2xx") == len(ids)
        seen |= pids_serving(log, set(ids))
        if len(seen) >= 2:
            break
    assert len(seen) >= 2, "every request went to one worker: nothing was summed"


def pool_workers(daemon):
    master = open(os.path.join(VAR, "run", daemon + ".pid")).read().split()[0]
    with open("/proc/%s/task/%s/children" % (master, master)) as f:
        return [int(p) for p in f.read().split()]


def test_a_dead_workers_counts_stay():
    """A worker killed outright leaves its counts; its successor adds to them."""
    before, _ = scrape("crm-dashboard")
    for _ in range(6):
        assert request("GET", "/api/dashboard/stats").status == 401
    workers = pool_workers("crm-dashboard")
    assert len(workers) == 2
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 15
    while time.time() < deadline:
        now = pool_workers("crm-dashboard")
        if len(now) == 2 and not set(now) & set(workers):
            break
        time.sleep(0.2)
    assert len(now) == 2 and not set(now) & set(workers), "the pool did not restart its workers"
    for _ in range(2):
        assert request("GET", "/api/dashboard/stats").status == 401
    after, _ = scrape("crm-dashboard")
    route = "/api/dashboard/stats"
    assert requests_of(after, route, "GET", "4xx") - requests_of(before, route, "GET", "4xx") == 8
    # The killed workers were between requests: nothing is left in flight but this scrape.
    assert value(after, "crm_http_requests_in_flight") == 1


def outbox_from_sql():
    rows = dict(sql("SELECT status, count(*) FROM mail_outbox GROUP BY status"))
    return {s: float(rows.get(s, 0)) for s in ("pending", "sent", "failed")}


def test_the_outbox_figures_are_the_tables():
    """crm-mailer's figures, by state, are the table's; the oldest pending message's age too."""
    email = "metrics-%s@example.com" % uuid.uuid4().hex[:8]
    # Pending for an hour already, and not due for a day: the mailer leaves it alone.
    mail_id = sql("INSERT INTO mail_outbox (kind, to_addr, to_name, created_at, next_attempt_at)"
                  " VALUES ('welcome', :'p1', 'Metrics', now() - interval '1 hour',"
                  " now() + interval '1 day') RETURNING id", email)[0][0]
    try:
        for _ in range(50):
            samples, _ = scrape("crm-mailer")
            got = {s: value(samples, "crm_mail_outbox_messages", state=s)
                   for s in ("pending", "sent", "failed")}
            if got == outbox_from_sql():  # the mailer may have moved one in between
                break
            time.sleep(0.1)
        assert got == outbox_from_sql()
        assert got["pending"] >= 1
        age = value(samples, "crm_mail_outbox_oldest_pending_age_seconds")
        assert 3600 <= age < 3700
    finally:
        sql("DELETE FROM mail_outbox WHERE id = :p1", mail_id)


def test_stream_figures(admin):
    """An open stream shows in the gauge; each event sent out counts once, however many streams
    receive it."""
    before, _ = scrape("crm-events")
    streams = [Stream(token=admin["token"]) for _ in range(2)]
    try:
        during, _ = scrape("crm-events")
        assert value(during, "crm_sse_streams_open") - value(before, "crm_sse_streams_open") == 2
        r = request("POST", "/api/leads", {"name": "Metrics stream lead"}, token=admin["token"])
        assert r.status == 201
        lead = r.json["lead"]["id"]
        for s in streams:
            assert s.wait(lambda msgs: any(json.loads(m["data"])["lead_id"] == lead
                                           for m in msgs))
        after, _ = scrape("crm-events")
        sent = "crm_sse_events_fanned_out_total"
        assert value(after, sent) - value(during, sent) == len(streams[0].messages)
        started = value(after, "crm_http_requests_total", route="/api/events", method="GET",
                        code="2xx") - requests_of(before, "/api/events", "GET", "2xx")
        assert started == 2
    finally:
        for s in streams:
            s.close()


def test_refused_from_other_addresses():
    """Only METRICS_ALLOW reaches /metrics/: others get the API's JSON 403, with nothing run."""
    before, _ = scrape("crm-auth")
    for path in ["/metrics/" + d for d in DAEMONS] + ["/metrics/nothing", "/metrics/"]:
        r = request("GET", path, source="127.0.0.2")
        assert r.status == 403, (path, r.status)
        assert r.json == {"error": {"code": "forbidden", "message": "forbidden"}}
        assert r.header("X-Request-Id")
    after, _ = scrape("crm-auth")
    # The refused ones never reached crm-auth: only the first scrape is new there.
    assert requests_of(after, "/metrics", "GET", "2xx") - \
        requests_of(before, "/metrics", "GET", "2xx") == 1
    # From the allowed address, a path that is no daemon's is a 404.
    assert request("GET", "/metrics/nothing", source=SCRAPER).status == 404


def test_outbox_scrape_needs_no_mail(admin):
    """The welcome e-mail of a registration shows up in the outbox counts (pending or sent)."""
    before, _ = scrape("crm-mailer")
    assert register().status == 201
    after, _ = scrape("crm-mailer")
    total = sum(value(after, "crm_mail_outbox_messages", state=s) -
                value(before, "crm_mail_outbox_messages", state=s)
                for s in ("pending", "sent", "failed"))
    assert total == 1


def test_the_sample_scrape_config_and_dashboard_fit_the_figures():
    """docs/prometheus.yml scrapes every daemon at its path, and every series the Grafana
    dashboard (docs/grafana-dashboard.json) queries is one some daemon exposes."""
    import yaml

    from conftest import ROOT

    with open(os.path.join(ROOT, "docs", "prometheus.yml")) as f:
        jobs = {j["job_name"]: j["metrics_path"] for j in yaml.safe_load(f)["scrape_configs"]}
    assert jobs == {d: "/metrics/" + d for d in DAEMONS}
    names = set()
    for daemon in DAEMONS:
        samples, _ = scrape(daemon)
        names |= {name for name, _ in samples}
    with open(os.path.join(ROOT, "docs", "grafana-dashboard.json")) as f:
        dashboard = json.load(f)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {n for e in exprs for n in re.findall(r"\b(crm_[a-z_]+)\b", e)}
    assert len(dashboard["panels"]) >= 10 and used, exprs
    assert used - names == set(), "the dashboard queries series no daemon exposes"
