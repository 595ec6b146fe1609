#!/usr/bin/env python3
"""make bench (real-time part): 10 000 SSE streams on one crm-events process, through nginx.

Starts a fresh stack of the optimised build under var/bench-sse (each program raises its own
file limit to the hard limit, which must allow a descriptor per stream) and runs build/sse-bench
twice against it:
  A. 10 000 streams of one ADMIN: every event reaches every stream. Single events one at a
     time (commit to arrival on all 10 000), then a sustained rate, then a lower rate
     (BENCH_RATE_A, default 50) to show what this machine sustains when every event goes to
     every stream.
  B. 10 000 streams as a sales team has them: 100 of 50 managers, 9 900 of 990 sales
     executives (10 tabs or devices each), events on the executives' own leads, at the
     sustained rate: every stream must get every event it may see, and none other.
  C. BENCH_STREAMS_SCALE streams of A (default 50 000) on the stack started again: memory at
     scale, and every stream must get each of a few events. Each stream holds a descriptor in
     crm-events and in the client, two in an nginx worker: the bench raises its hard limit on
     descriptors to what that takes (as root with CAP_SYS_RESOURCE). Where it cannot, the limit
     being per process, C runs several crm-events processes (stack.sh events-procs), each under
     the limit; stack.sh gives nginx as many more workers, and sse-bench splits its streams
     over as many processes.
Memory per stream is the RSS growth of crm-events (and of nginx) with the streams of A (and C)
open, over their number: of all the processes of each. Writes bench/results-sse.md. Settings (environment): BENCH_STREAMS
(default 10000), BENCH_STREAMS_SCALE (default 50000; 0: no C), BENCH_RATE (events a second,
default 200), BENCH_RATE_SECONDS (default 10), BENCH_SINGLE (default 30), BENCH_SSE_PORT
(default 18092).
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import resource
import subprocess
import sys
import time
import urllib.request

from bench import PGBIN, pids_rss_kib, sh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAR = os.path.join(ROOT, "var", "bench-sse")
PORT = int(os.environ.get("BENCH_SSE_PORT", "18092"))
STREAMS = int(os.environ.get("BENCH_STREAMS", "10000"))
RATE = float(os.environ.get("BENCH_RATE", "200"))
RATE_SECONDS = int(os.environ.get("BENCH_RATE_SECONDS", "10"))
RATE_A = float(os.environ.get("BENCH_RATE_A", "50"))
SINGLE = int(os.environ.get("BENCH_SINGLE", "30"))
SCALE = int(os.environ.get("BENCH_STREAMS_SCALE", "50000"))
# Descriptors beside the streams' own: PostgreSQL, logs, sockets, the writers' connections.
SPARE_FDS = 1024


def plan_scale():
    """Raises the hard limit on descriptors (inherited by the stack and the client) to what C
    needs with one crm-events process: two a stream in one nginx worker. Where the host does not
    let it, returns how many crm-events processes C runs instead, each with four fifths of the
    limit in streams (a fifth to spare for an uneven split), and why."""
    want = 2 * SCALE + SPARE_FDS
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            hard = want
        except (ValueError, OSError):
            pass
    if hard == resource.RLIM_INFINITY or hard >= want:
        return 1, ""
    per = (hard - SPARE_FDS) * 4 // 5
    return (max(2, -(-SCALE // per)),
            "the hard limit on descriptors is %d a process (%d wanted for one) and this host does"
            " not let the bench raise it" % (hard, want))


SCALE_PROCS, SCALE_WHY = plan_scale()
MOST = max(STREAMS, SCALE)
STACK_ENV = dict(os.environ, CRM_VAR=VAR, CRM_PORT=str(PORT), CRM_BIN=os.path.join(ROOT, "build"),
                 CRM_WORKERS="4", CRM_BCRYPT_COST="10", CRM_SSE_MAX_STREAMS=str(MOST),
                 # A holds every stream as one ADMIN.
                 CRM_SSE_MAX_STREAMS_PER_USER=str(MOST))


def stack(cmd, **env):
    return sh([os.path.join(ROOT, "scripts", "stack.sh"), cmd], env=dict(STACK_ENV, **env))


def fresh_stack():
    stack("wipe")
    stack("start")


def psql(query):
    cmd = [os.path.join(PGBIN, "psql"), "-h", os.path.join(os.path.realpath(VAR), "run"), "-d",
           "crm", "-XtAq", "-F", " ", "-c", query]
    if os.getuid() == 0:
        cmd = ["setpriv", "--reuid=crm", "--regid=crm", "--init-groups", "--"] + cmd
    return [line.split() for line in sh(cmd).splitlines() if line]


def env_value(name):
    for line in open(os.path.join(os.path.realpath(VAR), "crm.env")):
        if line.startswith(name + "="):
            return line.rstrip("\n").split("=", 1)[1]
    raise KeyError(name)


def sign(uid, role):
    """A token as crm-auth would issue it (the bench holds the secret, as an operator does)."""
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
    now = int(time.time())
    head = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = enc(json.dumps({"sub": str(uid), "role": role, "iat": now,
                           "exp": now + 3600}).encode())
    mac = enc(hmac.new(env_value("JWT_SECRET").encode(), head + b"." + body,
                       hashlib.sha256).digest())
    return (head + b"." + body + b"." + mac).decode()


def pids():
    real = os.path.realpath(VAR)
    # Every crm-events process runs the same program.
    events = sh(["pgrep", "-f", os.path.join(real, "bin", "crm-events")]).split()
    master = open(os.path.join(real, "run", "nginx.pid")).read().split()[0]
    workers = subprocess.run(["pgrep", "-P", master], capture_output=True, text=True).stdout
    return events, [master] + workers.split()


RESULTS = os.path.join(ROOT, "bench", "results-sse.md")


def with_before(lines):
    """The table's rows with a last column: the same row's figure in the run before, if any."""
    def cells(line):
        return [c.strip() for c in line.strip().strip("|").split("|")]

    old = {}
    if os.path.exists(RESULTS):
        old = {cells(l)[0]: cells(l)[1] for l in open(RESULTS) if l.startswith("| ")
               and len(cells(l)) >= 4}
    out = []
    for line in lines:
        if line.startswith("| what |"):
            line += " before |"
        elif line.startswith("| --- |"):
            line += " ---: |"
        elif line.startswith("| "):
            line += " %s |" % old.get(cells(line)[0], "")
        out.append(line)
    return out


def write_lines(name, rows):
    path = os.path.join(os.path.realpath(VAR), name)
    with open(path, "w") as f:
        f.writelines("%s %s\n" % r for r in rows)
    return path


def cpu_seconds(pids):
    """User and system CPU time the processes have used."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def run_bench(streams, leads, write_token, single, rate=RATE, on_ready=None, on_single=None):
    """Runs sse-bench; returns its ready, single and sustained lines as lists of words."""
    proc = subprocess.Popen([os.path.join(ROOT, "build", "sse-bench"), str(PORT),
                             write_lines("streams.txt", streams), write_lines("leads.txt", leads),
                             write_token, str(single), str(rate), str(RATE_SECONDS)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = proc.stdout.readline().split()
    assert ready and ready[0] == "ready", ready
    if on_ready:
        on_ready(proc.pid)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    lines = {}
    for line in proc.stdout:
        lines[line.split()[0]] = line.split()
        if line.startswith("single") and on_single:
            on_single(proc.pid)
    assert proc.wait() == 0
    return ready, lines.get("single"), lines["sustained"]


def memory_rows(label, before, during, opened):
    """The rows of memory per open stream: crm-events, nginx and both, from RSS in KiB."""
    ev_per = (during[0] - before[0]) * 1024 / max(opened, 1)
    ngx_per = (during[1] - before[1]) * 1024 / max(opened, 1)
    return [
        "| crm-events RSS growth per open stream%s | %.0f B | < 16384 B | %.3f |"
        % (label, ev_per, ev_per / 16384),
        "| nginx RSS growth per open stream (master and workers)%s | %.0f B | | |"
        % (label, ngx_per),
        "| the host's memory per open stream (crm-events and nginx)%s | %.0f B | < 8192 B | %.2f |"
        % (label, ev_per + ngx_per, (ev_per + ngx_per) / 8192),
    ]


def nginx_workers():
    with open(os.path.join(os.path.realpath(VAR), "nginx", "nginx.conf")) as f:
        return int(re.search(r"^worker_processes (\d+);", f.read(), re.M).group(1))


def scale_run(admin_token, shared):
    """C: SCALE streams of one ADMIN on the stack started again (so that the RSS with no stream
    is not what A and B left behind), with SCALE_PROCS crm-events processes, a few events to all
    of them."""
    stack("stop")
    stack("start", CRM_EVENTS_PROCS=str(SCALE_PROCS))
    events_pids, nginx_pids = pids()
    before = (pids_rss_kib(events_pids), pids_rss_kib(nginx_pids))
    during = []
    rate = 2
    ready, _, sust = run_bench(
        [(0, admin_token)] * SCALE, [(shared, 0)], admin_token, 0, rate,
        on_ready=lambda pid: (time.sleep(1), during.append((pids_rss_kib(events_pids),
                                                            pids_rss_kib(nginx_pids)))))
    opened = int(ready[1])
    total, acked, behind, missing = (int(x) for x in sust[1:5])
    label = " at %d streams (C)" % opened
    rows = [
        "| C: streams open on %d crm-events process%s (opened in %s s) | %d | %d | %.2f |"
        % (SCALE_PROCS, "es" if SCALE_PROCS > 1 else "", ready[2], opened, SCALE, opened / SCALE),
        "| C: %d events (%d acknowledged) to every stream: streams that fell behind (events"
        " they missed) | %d (%d) of %d | 0 | |" % (total, acked, behind, missing, opened),
    ] + memory_rows(label, before, during[0], opened)
    notes = ["- RSS with no stream, then with the %d streams of C open: crm-events %d KiB, %d KiB;"
             " nginx %d KiB, %d KiB" % (opened, before[0], during[0][0], before[1], during[0][1]),
             "- C ran %d crm-events process%s, nginx with %d workers, the client in %s process%s"
             % (SCALE_PROCS, "es" if SCALE_PROCS > 1 else "", nginx_workers(), ready[3],
                "es" if int(ready[3]) > 1 else "")]
    if SCALE_WHY:
        notes.append("- C split its streams over processes because %s" % SCALE_WHY)
    return rows, notes


def command():
    """The command of this run, with the settings it was given."""
    given = sorted("%s=%s" % (k, v) for k, v in os.environ.items() if k.startswith("BENCH_"))
    return " ".join(given + ["make bench-sse"])


def main():
    started = time.time()
    load = os.getloadavg()[0]
    subprocess.run(["make", "-s", "-C", ROOT, "all", "build/sse-bench"], check=True)
    fresh_stack()
    admin = int(psql("SELECT id FROM users WHERE role = 'ADMIN'")[0][0])
    psql("INSERT INTO users (name, email, password_hash, role) SELECT 'Bench ' || r || ' ' || g,"
         " 'bench-' || lower(r) || '-' || g || '@example.com', '!', r FROM generate_series(1,"
         " 1000) g, unnest(ARRAY['MANAGER', 'SALES_EXECUTIVE']) r"
         " WHERE r = 'SALES_EXECUTIVE' OR g <= 50")
    managers = [int(r[0]) for r in psql("SELECT id FROM users WHERE role = 'MANAGER' ORDER BY id")]
    sales = [int(r[0]) for r in
             psql("SELECT id FROM users WHERE role = 'SALES_EXECUTIVE' ORDER BY id")]
    own = psql("INSERT INTO leads (name, owner_id, created_by) SELECT 'Bench lead ' || u.id ||"
               " '-' || k, u.id, %d FROM users u, generate_series(1, 2) k"
               " WHERE u.role = 'SALES_EXECUTIVE' RETURNING id, owner_id" % admin)
    shared = psql("INSERT INTO leads (name, created_by) VALUES ('Bench lead', %d) RETURNING id"
                  % admin)[0][0]
    admin_token = sign(admin, "ADMIN")
    events_pids, nginx_pids = pids()
    before = (pids_rss_kib(events_pids), pids_rss_kib(nginx_pids))
    during, cpu = [], []

    def cpu_now(client):
        cpu.append([cpu_seconds(p) for p in (events_pids, nginx_pids[1:], [client])])

    a_ready, a_single, a_sust = run_bench(
        [(0, admin_token)] * STREAMS, [(shared, 0)], admin_token, SINGLE,
        on_ready=lambda pid: (time.sleep(1), during.append((pids_rss_kib(events_pids),
                                                            pids_rss_kib(nginx_pids))), cpu_now(pid)),
        on_single=cpu_now)
    time.sleep(2)
    _, _, a_low = run_bench([(0, admin_token)] * STREAMS, [(shared, 0)], admin_token, 0, RATE_A)
    time.sleep(2)
    per_tab = (STREAMS - 100) // len(sales[:990]) if STREAMS > 100 else 0
    mixed = [(0, sign(m, "MANAGER")) for m in managers for _ in range(2)][:min(100, STREAMS)]
    mixed += [(u, sign(u, "SALES_EXECUTIVE")) for u in sales[:990] for _ in range(per_tab)]
    b_ready, _, b_sust = run_bench(mixed, [(int(l), int(o)) for l, o in own], admin_token, 0)
    c_rows, c_notes = scale_run(admin_token, shared) if SCALE > 0 else ([], [])
    opened = int(a_ready[1])
    with open(os.path.join(os.path.realpath(VAR), "log", "nginx-error.log")) as f:
        refused = sum(re.search(r"crm-events(-\d+)?\.sock failed", line) is not None
                      for line in f)
    s_p50, s_p99, s_max = (float(x) for x in a_single[1:4])

    def sustained_rows(label, sust, streams, rate=RATE):
        total, acked, behind, missing = (int(x) for x in sust[1:5])
        p50, p99, mx = (float(x) for x in sust[5:8])
        took = float(sust[9])
        return [
            "| %s: events written (acknowledged) | %d (%d) | %g/s for %d s | |"
            % (label, total, acked, rate, RATE_SECONDS),
            "| %s: rate achieved (the writers took %.1f s) | %.0f/s | %g/s | %.2f |"
            % (label, took, acked / took, rate, acked / took / rate),
            "| %s: streams that fell behind (events they missed) | %d (%d) of %d | 0 | |"
            % (label, behind, missing, streams),
            "| %s: arrival after the request, p50 / p99 / max (%s arrivals) | %.1f / %.1f /"
            " %.1f ms | | |" % (label, sust[8], p50, p99, mx),
        ]

    lines = [
        "# Benchmark results: real-time (SSE)",
        "",
        "- Date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- Machine: %s cores (`nproc`); %s; everything (PostgreSQL, nginx, crm-events, the API"
        " pools, the clients) on these 2 cores" % (os.cpu_count(), sh(["uname", "-sr"]).strip()),
        "- Command: `%s` (also run by `make bench`): build/sse-bench, streams through"
        " nginx to one crm-events process; events made through the API (POST"
        " /api/leads/:id/activity) by 4 writers" % command(),
        "",
        "| what | figure | target | ratio to target |",
        "| --- | ---: | ---: | ---: |",
        "| A: streams open on one crm-events (opened in %s s) | %d | 10000 | %.2f |"
        % (a_ready[2], opened, opened / 10000),
        "| A: single event to all %d streams, p50 | %.1f ms | | |" % (opened, s_p50),
        "| A: single event to all %d streams, p99 (%s arrivals) | %.1f ms | < 100 ms | %.2f |"
        % (opened, a_single[4], s_p99, s_p99 / 100),
        "| A: single event, slowest arrival | %.1f ms | | |" % s_max,
    ] + sustained_rows("A, every stream sees every event", a_sust, opened) + sustained_rows(
        "A at %g/s" % RATE_A, a_low, opened, RATE_A) + [
        "| B: streams open (100 managers' and %d executives') | %s | 10000 | %.2f |"
        % (int(b_ready[1]) - 100, b_ready[1], int(b_ready[1]) / 10000),
    ] + sustained_rows("B, each stream sees its leads", b_sust, int(b_ready[1])) + memory_rows(
        "", before, during[0], opened) + c_rows + [
        "",
        "CPU time per single event sent to all %d streams of A (from /proc, over the %d events):"
        " crm-events %.0f ms, nginx workers %.0f ms, the client %.0f ms. On 2 cores that much"
        " work cannot take much less than half its sum of wall time, which is what bounds the"
        " p99 of A." % ((opened, SINGLE) + tuple((cpu[1][i] - cpu[0][i]) * 1000 / SINGLE
                                                 for i in range(3))),
        "",
        "- connections nginx could not make to crm-events while %d clients connected at once"
        " (a full listen backlog; the client would get 503): %d" % (STREAMS, refused),
        "- RSS with no stream, then with the %d streams of A open: crm-events %d KiB, %d KiB;"
        " nginx %d KiB, %d KiB" % (opened, before[0], during[0][0], before[1], during[0][1]),
    ] + c_notes + [
        "- latency is timed from the start of the API request that makes the event (so it"
        " includes that request and its commit) to the moment its message is read by the client",
        "- wall time of the run: %.0f s; load average (1 minute) when it began and ended: %.1f,"
        " %.1f on %d cores (timings taken on a busy machine do not compare with a quiet one's;"
        " memory figures do)" % (time.time() - started, load, os.getloadavg()[0], os.cpu_count()),
    ]
    text = "\n".join(with_before(lines)) + "\n"
    with open(RESULTS, "w") as f:
        f.write(text)
    print(text)
    stack("stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
