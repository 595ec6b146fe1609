"""PostgreSQL restarts under running workers: 503 with Retry-After, then recovery by itself.
Named to run last: it takes the database away."""
import os
import subprocess
import time

from conftest import ROOT, VAR, register, request, sql
from test_metrics import scrape, value


def worker_pids():
    out = subprocess.run(["pgrep", "-f", os.path.join(VAR, "bin", "crm-auth")],
                         capture_output=True, text=True).stdout
    return sorted(out.split())


def stack(cmd):
    subprocess.run([os.path.join(ROOT, "scripts", "stack.sh"), cmd], check=True,
                   capture_output=True)


def test_database_restart(admin):
    pids = worker_pids()
    assert len(pids) >= 2
    before, _ = scrape("crm-auth")
    stack("pg-stop")
    try:
        r = request("GET", "/api/health")
        assert r.status == 503, r.text
        assert r.json["database"] == "down" and r.json["error"]["code"] == "unavailable"
        assert r.header("Retry-After") == "1"
        r = request("GET", "/api/auth/me", token=admin["token"])
        assert r.status == 503 and r.json["error"]["code"] == "unavailable"
        r = register()
        assert r.status == 503
        for path in ("/api/leads", "/api/dashboard/stats"):
            r = request("GET", path, token=admin["token"])
            assert r.status == 503 and r.header("Retry-After") == "1", path
    finally:
        stack("pg-start")
    deadline = time.time() + 15
    while time.time() < deadline:
        if request("GET", "/api/health").status == 200:
            break
        time.sleep(0.2)
    assert request("GET", "/api/health").json == {"status": "ok", "database": "ok"}
    # Every worker reconnects: enough requests to reach each of them succeed.
    for _ in range(8):
        assert request("GET", "/api/auth/me", token=admin["token"]).status == 200
        assert request("GET", "/api/leads?limit=1", token=admin["token"]).status == 200
        assert request("GET", "/api/dashboard/stats", token=admin["token"]).status == 200
    assert register().status == 201
    assert worker_pids() == pids
    # /metrics shows the outage: crm-auth's workers failed to connect, then reconnected.
    after, _ = scrape("crm-auth")
    for name in ("crm_db_connect_failures_total", "crm_db_reconnects_total"):
        assert value(after, name) > value(before, name), name


def test_postgresql_keeps_the_stacks_shared_buffers():
    """stack.sh gives PostgreSQL CRM_PG_SHARED_BUFFERS (scripts/test.sh sets a value that is not
    PostgreSQL's default) at every start, the restart above included."""
    want = os.environ["CRM_PG_SHARED_BUFFERS"]
    assert want != "128MB" and sql("SHOW shared_buffers") == [[want]]
