#!/usr/bin/env python3
"""make bench (real-time part): 10 000 SSE streams on one crm-events process, through nginx.

Starts a fresh stack of the optimised build under var/bench-sse (each program raises its own
file limit to the hard limit, which must allow a descriptor per stream), then runs build/sse-bench: it opens the streams, makes single events
one at a time, then a sustained rate, and reports arrival latencies. Memory per stream is the
RSS growth of crm-events (and of nginx) while the streams are open, over their number. Writes
bench/results-sse.md. Settings (environment): BENCH_STREAMS (default 10000), BENCH_RATE
(events a second, default 200), BENCH_RATE_SECONDS (default 10), BENCH_SINGLE (default 30).
"""
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAR = os.path.join(ROOT, "var", "bench-sse")
PORT = 18092
STREAMS = int(os.environ.get("BENCH_STREAMS", "10000"))
RATE = float(os.environ.get("BENCH_RATE", "200"))
RATE_SECONDS = int(os.environ.get("BENCH_RATE_SECONDS", "10"))
SINGLE = int(os.environ.get("BENCH_SINGLE", "30"))
STACK_ENV = dict(os.environ, CRM_VAR=VAR, CRM_PORT=str(PORT), CRM_BIN=os.path.join(ROOT, "build"),
                 CRM_WORKERS="4", CRM_BCRYPT_COST="10", CRM_SSE_MAX_STREAMS=str(STREAMS))


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def stack(cmd):
    return sh([os.path.join(ROOT, "scripts", "stack.sh"), cmd], env=STACK_ENV)


def fresh_stack():
    stack("stop")
    real = os.path.realpath(VAR)
    for path in {VAR, real}:
        if os.path.islink(path):
            os.unlink(path)
        elif os.path.exists(path):
            shutil.rmtree(path)
    stack("start")


def api(method, path, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (PORT, path),
                                 json.dumps(body).encode(), headers, method=method)
    return json.load(urllib.request.urlopen(req))


def rss_kib(pattern):
    total = 0
    for pid in sh(["pgrep", "-f", pattern]).split():
        try:
            with open("/proc/%s/status" % pid) as f:
                total += int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        except (OSError, AttributeError):
            pass
    return total


def main():
    started = time.time()
    subprocess.run(["make", "-s", "-C", ROOT, "all", "build/sse-bench"], check=True)
    fresh_stack()
    creds = dict(l.strip().split("=", 1) for l in open(os.path.join(VAR, "admin.txt")))
    tok = api("POST", "/api/auth/login", creds)["token"]
    lead = api("POST", "/api/leads", {"name": "Bench lead"}, tok)["lead"]["id"]
    real = os.path.realpath(VAR)
    events_pat, nginx_pat = os.path.join(real, "bin", "crm-events"), "nginx.*%s" % real
    time.sleep(1)
    ev0, ngx0 = rss_kib(events_pat), rss_kib(nginx_pat)
    bench = subprocess.Popen([os.path.join(ROOT, "build", "sse-bench"), str(PORT),
                                       str(STREAMS), tok, str(lead), str(SINGLE), str(RATE),
                                       str(RATE_SECONDS)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = bench.stdout.readline().split()
    assert ready and ready[0] == "ready", ready
    time.sleep(1)
    ev1, ngx1 = rss_kib(events_pat), rss_kib(nginx_pat)
    bench.stdin.write("go\n")
    bench.stdin.flush()
    single = bench.stdout.readline().split()
    sustained = bench.stdout.readline().split()
    bench.wait()
    open_streams = int(ready[1])
    s_p50, s_p99, s_max = (float(x) for x in single[1:4])
    sent, acked, lo, hi = (int(x) for x in sustained[1:5])
    r_p50, r_p99, r_max = (float(x) for x in sustained[5:8])
    per_stream = (ev1 - ev0) * 1024 / max(open_streams, 1)
    per_stream_ngx = (ngx1 - ngx0) * 1024 / max(open_streams, 1)
    lines = [
        "# Benchmark results: real-time (SSE)",
        "",
        "- Date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- Machine: %s cores (`nproc`); %s" % (os.cpu_count(), sh(["uname", "-sr"]).strip()),
        "- Command: `make bench-sse` (also run by `make bench`): build/sse-bench opens %d streams"
        " (GET /api/events, one ADMIN token) through nginx to one crm-events process; every"
        " event reaches every stream" % STREAMS,
        "",
        "| what | figure | target | ratio to target |",
        "| --- | ---: | ---: | ---: |",
        "| streams open on one crm-events (opened in %.1f s) | %d | 10000 | %.2f |"
        % (float(ready[2]), open_streams, open_streams / 10000),
        "| single event, commit to arrival on every stream, p50 | %.1f ms | | |" % s_p50,
        "| single event, commit to arrival on every stream, p99 (%d events x %d streams) |"
        " %.1f ms | < 100 ms | %.2f |" % (SINGLE, open_streams, s_p99, s_p99 / 100),
        "| single event, slowest arrival | %.1f ms | | |" % s_max,
        "| sustained %g events/s for %d s: events written (acknowledged) | %d (%d) | | |"
        % (RATE, RATE_SECONDS, sent, acked),
        "| sustained: fewest / most events received by a stream | %d / %d | %d each | %.2f |"
        % (lo, hi, acked, lo / max(acked, 1)),
        "| sustained: arrival after the request, p50 / p99 / max | %.1f / %.1f / %.1f ms | | |"
        % (r_p50, r_p99, r_max),
        "| crm-events RSS growth per open stream | %.0f B | < 16384 B | %.2f |"
        % (per_stream, per_stream / 16384),
        "| nginx RSS growth per open stream (master and workers) | %.0f B | | |" % per_stream_ngx,
        "",
        "- crm-events RSS: %d KiB before the streams, %d KiB with them open;"
        " nginx: %d KiB, then %d KiB" % (ev0, ev1, ngx0, ngx1),
        "- latency is timed from the start of the request that makes the event (so it includes"
        " the API call and its commit), to the moment the stream's bytes reach the client",
        "- wall time of the run: %.0f s" % (time.time() - started),
    ]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(ROOT, "bench", "results-sse.md"), "w") as f:
        f.write(text)
    print(text)
    stack("stop")
    return 0 if bench.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
