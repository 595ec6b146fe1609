#!/usr/bin/env python3
"""make bench-metrics (also part of make bench): what the figures of /metrics cost the hot path.

The same stack (under var/bench-metrics) runs the optimised programs twice: as built, and built
with -DCRM_METRICS_OFF (build/nometrics), where lib/metrics.c maps no region, so every recording
call returns at once. wrk measures, in alternate rounds of each, GET /api/health (the cheapest
request that reaches the database, where a fixed cost per request shows most) and GET
/api/leads/:id, at 50 connections. Writes the medians to its section of bench/results.md.
Settings: BENCH_SECONDS per run (15), BENCH_METRICS_ROUNDS (3), BENCH_METRICS_PORT (18095).
"""
import os
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "scripts"), os.path.join(ROOT, "bench")]
import results  # noqa: E402 (bench/results.md by section)
from bench import authed_lua, wrk  # noqa: E402 (make bench's wrk runner)
from stackctl import Stack  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
ROUNDS = int(os.environ.get("BENCH_METRICS_ROUNDS", "3"))
PORT = int(os.environ.get("BENCH_METRICS_PORT", "18095"))
HEADING = "## The cost of metrics"
BUILDS = {"with metrics": os.path.join(ROOT, "build"),
          "without": os.path.join(ROOT, "build", "nometrics")}


def use(stack, build):
    """Runs the programs of build: stack.sh start restarts every daemon whose binary changed."""
    stack.env["CRM_BIN"] = build
    stack.stack("start")
    for _ in range(100):
        try:
            if urllib.request.urlopen(stack.base + "api/health").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("bench-metrics: the stack does not answer")



def main():
    started = time.time()
    load_before = os.getloadavg()[0]
    subprocess.run(["make", "-s", "-C", ROOT, "all"], check=True)
    subprocess.run(["make", "-s", "-C", ROOT, "BUILD=build/nometrics",
                    "CFLAGS=-O2 -g -DCRM_METRICS_OFF", "all"], check=True)
    stack = Stack("bench-metrics", PORT, CRM_WORKERS="4", CRM_BCRYPT_COST="10")
    stack.start()
    try:
        stack.crmctl("seed", "--leads", "10000", "--users", "10", "--seed", "1")
        stack.psql("VACUUM ANALYZE")
        tok, _ = stack.login()
        lo, hi = (int(x) for x in stack.psql("SELECT min(id), max(id) FROM leads").split("|"))
        requests = {
            "GET /api/health": (stack.base + "api/health", None),
            "GET /api/leads/:id": (stack.base, authed_lua(
                tok, '"/api/leads/" .. math.random(%d, %d)' % (lo, hi))),
        }
        runs = {(r, b): [] for r in requests for b in BUILDS}
        for _ in range(ROUNDS):
            for build, path in BUILDS.items():
                use(stack, path)
                for name, (url, lua) in requests.items():
                    wrk("warm-up", url, lua, 3)
                    runs[(name, build)].append(wrk(name, url, lua, SECONDS))
    finally:
        stack.stop()
    rows = []
    for name in requests:
        med = {b: statistics.median(r["rps"] for r in runs[(name, b)]) for b in BUILDS}
        p99 = {b: statistics.median(r["p99"] for r in runs[(name, b)]) for b in BUILDS}
        errors = sum(r["errors"] for b in BUILDS for r in runs[(name, b)])
        rows.append("| %s | %.0f | %.0f | %.3f | %.2f | %.2f | %d |" % (
            name, med["with metrics"], med["without"], med["with metrics"] / med["without"],
            p99["with metrics"], p99["without"], errors))
    lines = [
        "- Date: %s; `make bench-metrics` (wrk -t2 -c50, %d s per run, %d alternate rounds of"
        " each build, medians); 4 workers per pool; load average %.1f before the run" % (
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), SECONDS, ROUNDS, load_before),
        "- without: the same programs built with `-DCRM_METRICS_OFF` (no shared region: every"
        " recording call returns at once)",
        "",
        "| request | req/s with metrics | req/s without | ratio | p99 ms with | p99 ms without |"
        " errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ] + rows + ["", "- wall time: %.0f s" % (time.time() - started)]
    results.write_section(HEADING, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
