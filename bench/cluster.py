#!/usr/bin/env python3
"""make bench-cluster: what the synchronous standby costs. On the deployment of scripts/cluster.sh
(as root), the same load twice: with the primary waiting for the standby at each commit
(synchronous_standby_names = '*', the documented production setting) and without it (the
primary commits alone; a failover may then lose the last acknowledged writes). Measures
POST /api/leads through the front nginx (wrk, BENCH_CLUSTER_CONNS connections, BENCH_SECONDS
each) and pgbench committing one-row inserts on the primary (the database's own limit). Writes
bench/results-cluster.md."""
import datetime
import glob
import os
import re
import subprocess

from bench import ROOT, SECONDS, sh, wrk

CLUSTER = os.path.join(ROOT, "scripts", "cluster.sh")
STATE = os.environ.get("CRM_CLUSTER_DIR", "/var/lib/crm-cluster")
CONNS = int(os.environ.get("BENCH_CLUSTER_CONNS", "16"))
PGBIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
MODES = [("synchronous standby (documented)", "*"), ("primary alone (asynchronous)", "")]


def cluster(*args):
    return sh(["bash", CLUSTER] + list(args))


def token():
    out = sh(["curl", "-sf", "-H", "Content-Type: application/json", "-d",
              '{"name":"Bench","email":"bench-cluster@example.com","password":"password123"}',
              "http://10.77.0.2/api/auth/register"])
    return re.search(r'"token":"([^"]+)"', out).group(1)


def pgbench():
    """One-row inserts, each its own transaction, on the primary over its socket."""
    script = os.path.join(STATE, "pgbench-insert.sql")
    with open(script, "w") as f:
        f.write("INSERT INTO bench_commit (v) VALUES ('x');\n")
    out = sh(["ip", "netns", "exec", "crm-pg1", "setpriv", "--reuid=crm", "--regid=crm",
              "--init-groups", "--", os.path.join(PGBIN, "pgbench"), "-h",
              os.path.join(STATE, "pg1"), "-n", "-c", str(CONNS), "-j", "2", "-T", str(SECONDS),
              "-f", script, "bench"])
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    lat = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    return tps, lat


def main():
    cluster("up")
    try:
        cluster("sql", "pg1", "-d", "postgres", "-c", "CREATE DATABASE bench")
        cluster("sql", "pg1", "-d", "bench", "-c",
                "CREATE TABLE bench_commit (id bigserial PRIMARY KEY, v text)")
        lua = """wrk.method = "POST"
wrk.body = '{"name":"Bench lead"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
""" % token()
        rows = []
        wrk("warm-up", "http://10.77.0.2/api/leads", lua, 5, CONNS)  # caches, pools, buffers
        for name, standbys in MODES:
            cluster("sql", "pg1", "-d", "postgres", "-c",
                    "ALTER SYSTEM SET synchronous_standby_names = '%s'" % standbys,
                    "-c", "SELECT pg_reload_conf()")
            api = wrk("POST /api/leads, " + name, "http://10.77.0.2/api/leads", lua,
                      conns=CONNS)
            tps, lat = pgbench()
            rows.append((name, api, tps, lat))
            print("bench-cluster: %s: %.0f req/s p50 %.1f ms p99 %.1f ms (%d errors); pgbench "
                  "%.0f tps, %.2f ms" % (name, api["rps"], api["p50"], api["p99"],
                                         api["errors"], tps, lat), flush=True)
    finally:
        subprocess.run(["bash", CLUSTER, "down"], check=False)
    write(rows)


def write(rows):
    (sname, sapi, stps, slat), (aname, aapi, atps, alat) = rows
    out = ["# What the synchronous standby costs", "",
           "`make bench-cluster` (bench/cluster.py), %s, on the deployment of "
           "`scripts/cluster.sh` (six network namespaces on one machine: %d cores, "
           "one disk). %d connections, %d s per run." % (
               datetime.date.today().isoformat(), os.cpu_count(), CONNS, SECONDS), "",
           "| measure | %s | %s | cost |" % (sname, aname), "| --- | --- | --- | --- |"]
    out.append("| POST /api/leads through the front, req/s | %.0f | %.0f | %.0f %% fewer |" % (
        sapi["rps"], aapi["rps"], 100 * (1 - sapi["rps"] / aapi["rps"])))
    for p in ("p50", "p99"):
        out.append("| POST /api/leads, %s | %.1f ms | %.1f ms | +%.1f ms |" % (
            p, sapi[p], aapi[p], sapi[p] - aapi[p]))
    out.append("| errors | %d | %d | |" % (sapi["errors"], aapi["errors"]))
    out.append("| pgbench one-row insert commits on the primary, tps | %.0f | %.0f | %.0f %% "
               "fewer |" % (stps, atps, 100 * (1 - stps / atps)))
    out.append("| pgbench commit latency, average | %.2f ms | %.2f ms | +%.2f ms |" % (
        slat, alat, slat - alat))
    out += ["", "Both servers share this machine's CPU and disk, and the network between them is "
            "a veth pair: on two machines the standby writes to its own disk, in parallel, and "
            "the cost per commit is about one network round trip between them. A lead's creation is a few statements and one commit, so the "
            "API pays the commit's extra latency once per request."]
    with open(os.path.join(ROOT, "bench", "results-cluster.md"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
