#!/usr/bin/env python3
"""make bench: wrk and pgbench against a fresh stack of the optimised build on loopback.

Measures, at 50 connections: (1) nginx answering a static `return 200` (the front-door limit),
(2) pgbench running the very SQL of GET /api/leads/:id (the database limit), (3) that request
through nginx and crm-leads, (4) a search listing, (5) every dashboard route at 100 000 and at
1 000 000 seeded leads, (6) the CSV export of every lead (rows/s, the workers' peak memory), (7)
a CSV import of BENCH_IMPORT_ROWS new leads into that table (rows/s), (8) lead creations (POST
/api/leads) at 16 connections. Writes the table to bench/results.md. Settings (environment):
BENCH_SECONDS per run (default 15),
BENCH_MEMORY_SECONDS for (3) (default 60), BENCH_LEADS (default 1000000), BENCH_IMPORT_ROWS
(default 100000), BENCH_WORKERS per pool (default 4), CRM_PG_SHARED_BUFFERS (PostgreSQL's
buffers; its own 128 MB unless told), BENCH_PORT (default 18090; the next port
serves nginx's static answer), BENCH_VAR (the stack's directory, default var/bench), BENCH_REUSE=1
(keep the database a run before seeded, less the leads its (7) and (8) added, instead of
starting afresh: a 10 million lead seed takes
over an hour; (5) at 100 000 leads is then left out). A run with another BENCH_LEADS (10000000:
about 23 GB of disk) writes a section of its own.

`bench.py import` runs (7) alone, on a fresh stack seeded with BENCH_LEADS leads, and prints its
line without writing bench/results.md (a check of the benchmark, not a result). `bench.py writes`
runs (8) alone on a fresh, empty stack and prints its row, the same way.
"""
import datetime
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAR = os.path.abspath(os.environ.get("BENCH_VAR", os.path.join(ROOT, "var", "bench")))
PORT = int(os.environ.get("BENCH_PORT", "18090"))
STATIC_PORT = PORT + 1
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
MEMORY_SECONDS = int(os.environ.get("BENCH_MEMORY_SECONDS", "60"))
LEADS = int(os.environ.get("BENCH_LEADS", "1000000"))
WORKERS = os.environ.get("BENCH_WORKERS", "4")
IMPORT_ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "100000"))
CONNS = 50
STACK_ENV = dict(os.environ, CRM_VAR=VAR, CRM_PORT=str(PORT), CRM_BIN=os.path.join(ROOT, "build"),
                 CRM_WORKERS=WORKERS, CRM_BCRYPT_COST="10")
PGBIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]


def as_owner(cmd):
    """Runs as the stack's service user when root (PostgreSQL's socket is the crm user's)."""
    if os.getuid() == 0:
        return ["setpriv", "--reuid=crm", "--regid=crm", "--init-groups", "--"] + cmd
    return cmd


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def psql(query):
    run = os.path.join(os.path.realpath(VAR), "run")
    return sh(as_owner([os.path.join(PGBIN, "psql"), "-h", run, "-d", "crm", "-XtAq", "-c",
                        query])).strip()


def crmctl(*args):
    return sh(as_owner([os.path.join(os.path.realpath(VAR), "bin", "crmctl"), *args]),
              env=dict(os.environ, CRM_ENV_FILE=os.path.join(os.path.realpath(VAR), "crm.env")))


def start_stack():
    if os.environ.get("BENCH_REUSE") != "1":
        sh([os.path.join(ROOT, "scripts", "stack.sh"), "wipe"], env=STACK_ENV)
    sh([os.path.join(ROOT, "scripts", "stack.sh"), "start"], env=STACK_ENV)
    conf = os.path.join(os.path.realpath(VAR), "nginx", "conf.d", "bench-static.conf")
    with open(conf, "w") as f:
        f.write("server {\n    listen 127.0.0.1:%d;\n    location / { return 200 'ok\\n'; }\n}\n"
                % STATIC_PORT)
    sh([os.path.join(ROOT, "scripts", "stack.sh"), "start"], env=STACK_ENV)  # reloads nginx
    # A reused database loses the leads its earlier runs' (7) and (8) added: newest of all, they
    # would put a head of non-matching leads before every search's walk, so that each run would
    # measure a different database, not the seeded one.
    psql("DELETE FROM leads WHERE name = 'Bench lead' OR email LIKE 'imported.%@bench.example'")


SEEDED = []  # (leads, seconds) of each seed_to that seeded


def seed_to(n):
    have = int(psql("SELECT count(*) FROM leads"))
    if have < n:
        t = time.time()
        # Adding at least as many leads as there are, building the indexes once at the end is
        # cheaper than keeping them up to date (900 000 onto 100 000: 175 s, not 389 s).
        # A seed of its own (its users' e-mails come from it): a reused database may already
        # hold a seed to n, topped up again after the DELETE in start_stack.
        crmctl("seed", "--leads", str(n - have), "--users", "50", "--seed", str(have + n),
               "--indexes", "rebuild" if n - have >= have else "keep")
        SEEDED.append((n - have, time.time() - t))
        print("bench: seeded %d leads in %.0f s" % SEEDED[-1], flush=True)
    psql("VACUUM ANALYZE")


def token():
    creds = dict(l.strip().split("=", 1) for l in open(os.path.join(VAR, "admin.txt")))
    req = urllib.request.Request("http://127.0.0.1:%d/api/auth/login" % PORT,
                                 json.dumps(creds).encode(),
                                 {"Content-Type": "application/json"})
    body = json.load(urllib.request.urlopen(req))
    return body["token"], body["user"]["id"]


def ms(out, percent):
    """wrk's latency at percent (its --latency table), in ms; NaN when it printed none."""
    m = re.search(r"^\s+%d%%\s+([\d.]+)(us|ms|s|m)\s*$" % percent, out, re.M)
    if m is None:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def wrk(name, url, lua=None, seconds=SECONDS, conns=CONNS):
    cmd = ["wrk", "-t%d" % min(2, conns), "-c%d" % conns, "-d%ds" % seconds, "--latency", url]
    if lua:
        os.makedirs(VAR, exist_ok=True)
        path = os.path.join(VAR, "bench-%d.lua" % abs(hash(name)))
        with open(path, "w") as f:
            f.write(lua)
        cmd[1:1] = ["-s", path]
    out = sh(cmd)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(errors.group(1)) if errors else 0
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {"name": name, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": ms(out, 50), "p99": ms(out, 99), "errors": errors}


def deep_cursors(tok, query, page, n=10):
    """The cursors of the n pages up to page (or up to the last, if there are fewer) of
    GET /api/leads?query, walked page by page as a client would (offset is refused that deep)."""
    url = "http://127.0.0.1:%d/api/leads?%s" % (PORT, query)
    cursors, cursor = [], None
    for _ in range(1, page):
        req = urllib.request.Request(url + ("&cursor=" + cursor if cursor else ""),
                                     headers={"Authorization": "Bearer " + tok})
        cursor = json.load(urllib.request.urlopen(req))["page"]["next_cursor"]
        if not cursor:
            break
        cursors = (cursors + [cursor])[-n:]
    return cursors


def authed_lua(tok, path_expr, setup=""):
    return """%s
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  return wrk.format("GET", %s)
end
""" % (setup, tok, path_expr)


def pgbench(name, uid, lo, hi):
    """The statement GET /api/leads/:id runs (the lead, and the caller re-read), prepared."""
    lead = crmctl("statement", "lead_get").strip().replace("$1", ":id").replace("$2", ":uid")
    script = os.path.join(os.path.realpath(VAR), "pgbench.sql")
    with open(script, "w") as f:
        f.write("\\set uid %d\n\\set id random(%d, %d)\n%s;\n" % (uid, lo, hi, lead))
    logdir = os.path.join(os.path.realpath(VAR), "pgbench-log")
    os.makedirs(logdir, exist_ok=True)
    if os.getuid() == 0:
        shutil.chown(logdir, "crm", "crm")
        shutil.chown(script, "crm", "crm")
    for old in glob.glob(os.path.join(logdir, "*")):
        os.unlink(old)
    out = sh(as_owner([os.path.join(PGBIN, "pgbench"), "-n", "-M", "prepared", "-c", str(CONNS),
                       "-j", "2", "-T", str(SECONDS), "-f", script, "-l",
                       "--log-prefix=%s/pgb" % logdir, "-h",
                       os.path.join(os.path.realpath(VAR), "run"), "crm"]))
    lat = sorted(int(line.split()[2]) for p in glob.glob(os.path.join(logdir, "pgb*"))
                 for line in open(p))
    return {"name": name, "rps": float(re.search(r"tps = ([\d.]+)", out).group(1)),
            "p50": lat[len(lat) // 2] / 1000.0, "p99": lat[int(len(lat) * 0.99)] / 1000.0,
            "errors": int(re.search(r"failed transactions: (\d+)", out).group(1))
            if "failed transactions" in out else 0}


def pids_rss_kib(pids):
    """The resident memory of the processes, in KiB (ones that are gone count 0)."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%s/status" % pid) as f:
                total += int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        except (OSError, AttributeError):
            pass
    return total


def rss_kib(program):
    return pids_rss_kib(sh(["pgrep", "-f", os.path.join(os.path.realpath(VAR), "bin",
                                                         program)]).split())


def peaks_kib(program):
    """Each process's peak resident memory (VmHWM), in KiB, by pid."""
    peaks = {}
    for pid in sh(["pgrep", "-f", os.path.join(os.path.realpath(VAR), "bin", program)]).split():
        try:
            with open("/proc/%s/status" % pid) as f:
                peaks[pid] = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))
        except (OSError, AttributeError):
            pass
    return peaks


def export(tok):
    """GET /api/leads.csv of every lead, through nginx, with curl writing it nowhere: rows a
    second, and the peak memory of crm-leads' processes before and after (one of them served
    it, streaming; its peak must not move)."""
    # Run after (3), which has every worker connected and warm: a worker's first request grows
    # it by its connection and prepared statements (about 3 MiB), whatever it is.
    rows = int(psql("SELECT count(*) FROM leads"))
    before = peaks_kib("crm-leads")
    out = sh(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
              "-H", "Authorization: Bearer " + tok,
              "http://127.0.0.1:%d/api/leads.csv?sort=created_at" % PORT])
    status, size, secs = out.split()
    assert status == "200", out
    after = peaks_kib("crm-leads")
    grown = max(after[p] - before.get(p, 0) for p in after)
    return {"rows": rows, "secs": float(secs), "mib": int(size) / 2 ** 20,
            "peak_before": max(before.values()), "peak_after": max(after.values()),
            "grown": grown}


def import_csv(tok):
    """POST /api/leads/import of IMPORT_ROWS new leads (the columns a lead list from elsewhere
    has: about 80 bytes a row, so 100 000 fit in the 10 MiB limit), through nginx, into the
    seeded table: rows a second, the whole request (upload, checks, the COPY, one INSERT with
    its triggers and indexes, commit), and the peak memory of crm-leads' processes."""
    path = os.path.join(os.path.realpath(VAR), "import.csv")
    with open(path, "w") as f:
        f.write("name,email,company,value,status,source\r\n")
        for i in range(IMPORT_ROWS):
            f.write("Imported lead %d,imported.%d@bench.example,Bench Co %d,%d.%02d,NEW,EVENT"
                    "\r\n" % (i, i, i % 1000, i % 50000, i % 100))
    size = os.path.getsize(path)
    before = peaks_kib("crm-leads")
    out = sh(["curl", "-sS", "-o", os.path.join(os.path.realpath(VAR), "import.json"), "-w",
              "%{http_code} %{time_total}", "-H", "Authorization: Bearer " + tok,
              "-H", "Content-Type: text/csv", "--data-binary", "@" + path,
              "http://127.0.0.1:%d/api/leads/import" % PORT])
    status, secs = out.split()
    body = json.load(open(os.path.join(os.path.realpath(VAR), "import.json")))
    assert status == "200" and body["imported"] == IMPORT_ROWS, (out, body)
    after = peaks_kib("crm-leads")
    return {"rows": IMPORT_ROWS, "secs": float(secs), "mib": size / 2 ** 20,
            "into": int(psql("SELECT count(*) FROM leads")) - IMPORT_ROWS,
            "peak_after": max(after.values()),
            "grown": max(after[p] - before.get(p, 0) for p in after)}


def import_line(imported):
    return ("- (7) POST /api/leads/import of %s new leads (%.1f MiB of CSV) into %s: **%.0f rows/s**"
            " (%.1f s, one transaction); peak RSS of the crm-leads processes %d KiB after (grew"
            " by at most %d KiB: the file, read in place, and the COPY's buffer)" % (
                format(imported["rows"], ","), imported["mib"], format(imported["into"], ","),
                imported["rows"] / imported["secs"], imported["secs"], imported["peak_after"],
                imported["grown"]))


def import_only():
    """(7) alone, printed, not written to bench/results.md."""
    subprocess.run(["make", "-s", "-C", ROOT, "all"], check=True)
    start_stack()
    seed_to(LEADS)
    tok, _ = token()
    print(import_line(import_csv(tok)))
    sh([os.path.join(ROOT, "scripts", "stack.sh"), "stop"], env=STACK_ENV)


WRITE_CONNS = 16


def create_leads(tok, seconds=SECONDS):
    """(8) POST /api/leads at WRITE_CONNS connections: each creation writes the lead, its CREATED
    activity, its event and the dashboard summaries' rows, and commits."""
    lua = """wrk.method = "POST"
wrk.body = '{"name":"Bench lead","value":100}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
""" % tok
    return wrk("POST /api/leads, %d connections" % WRITE_CONNS,
               "http://127.0.0.1:%d/api/leads" % PORT, lua, seconds, WRITE_CONNS)


def writes_only():
    """(8) alone, printed, not written to bench/results.md."""
    subprocess.run(["make", "-s", "-C", ROOT, "all"], check=True)
    start_stack()
    tok, _ = token()
    create_leads(tok, 3)  # warm-up: every worker connected, its statements prepared
    print(row(8, create_leads(tok), {}))
    sh([os.path.join(ROOT, "scripts", "stack.sh"), "stop"], env=STACK_ENV)


# A run with another BENCH_LEADS keeps a section of its own, beside the default run's.
HEADING = "## Requests at %d connections (make bench)" % CONNS if LEADS == 1000000 else \
    "## Requests at %d connections, %s leads (BENCH_LEADS=%d make bench)" % (
        CONNS, format(LEADS, ","), LEADS)


def row(n, r, before):
    """A table row, with the previous run's req/s and p99 of the same row beside it."""
    old = before.get(r["name"], ("", ""))
    return "| %s | %s | %.0f | %.2f | %.2f | %d | %s | %s |" % (
        n, r["name"], r["rps"], r["p50"], r["p99"], r["errors"], old[0], old[1])


DASH_ROUTES = ("stats", "leads-by-status", "top-sales", "top-sales?from=2026-01-01&to=2026-06-30")


def dashboards(tok, size, conns=CONNS, seconds=SECONDS):
    base = "http://127.0.0.1:%d/api/dashboard/" % PORT
    return [wrk("%s at %s leads" % (route, format(size, ",")), base + route,
                authed_lua(tok, '"/api/dashboard/%s"' % route), seconds, conns)
            for route in DASH_ROUTES]


def main():
    started, load = time.time(), os.getloadavg()[0]
    subprocess.run(["make", "-s", "-C", ROOT, "all"], check=True)
    start_stack()
    tok, uid = token()
    small = []  # a database kept by BENCH_REUSE may already be past 100 000 leads
    if int(psql("SELECT count(*) FROM leads")) <= 100000:
        seed_to(min(100000, LEADS))
        small = dashboards(tok, min(100000, LEADS))
    seed_to(LEADS)
    # (2) and (3) read random ids of the longest run of consecutive ids, every one a lead: the
    # leads start_stack deleted leave gaps where a seed came after them (404s, rows not read).
    lo, hi = (int(x) for x in psql(
        "SELECT min(id), max(id) FROM (SELECT id, id - row_number() OVER (ORDER BY id) AS run"
        " FROM leads) r GROUP BY run ORDER BY count(*) DESC LIMIT 1").split("|"))
    base = "http://127.0.0.1:%d" % PORT
    static = wrk("nginx static `return 200`", "http://127.0.0.1:%d/" % STATIC_PORT)
    db = pgbench("pgbench: the SQL of GET /api/leads/:id", uid, lo, hi)
    rss_before = rss_kib("crm-leads")
    get_lua = authed_lua(tok, '"/api/leads/" .. math.random(%d, %d)' % (lo, hi))
    wrk("warm-up", base + "/", get_lua, 10)  # buffers and caches reach their working size
    rss_warm = rss_kib("crm-leads")
    get = wrk("GET /api/leads/:id (random id)", base + "/", get_lua, MEMORY_SECONDS)
    rss_after = rss_kib("crm-leads")
    # A contact looked up by part of its e-mail address (a few matches among a million)...
    search = wrk("GET /api/leads?limit=20&q=<first name>.<number>", base + "/",
                 authed_lua(tok, '"/api/leads?limit=20&q=" .. names[math.random(#names)] .. "." '
                                 '.. math.random(0, %d)' % (LEADS - 1),
                            'names = {"Asha", "Ben", "Chen", "Dana", "Elif", "Farid", "Grace"}'))
    # ...and a word that one lead in twenty matches: the exact total then costs a real count.
    common = wrk("GET /api/leads?limit=20&q=<common surname>", base + "/",
                 authed_lua(tok, '"/api/leads?limit=20&q=" .. names[math.random(#names)]',
                            'names = {"okafor", "novak", "garcia", "rossi", "haddad"}'))
    # Page 1 000 of every lead by name, and of a status filter by value, reached by cursor.
    deep = []
    for name, query in (("GET /api/leads?sort=name, page 1 000 (cursor)", "limit=20&sort=name"),
                        ("GET /api/leads?status=WON&sort=-value, page 1 000 (cursor)",
                         "limit=20&status=WON&sort=-value")):
        cursors = deep_cursors(tok, query, 1000)
        deep.append(wrk(name, base + "/", authed_lua(
            tok, '"/api/leads?%s&cursor=" .. cursors[math.random(#cursors)]' % query,
            "cursors = {%s}" % ", ".join('"%s"' % c for c in cursors))))
    exported = export(tok)
    large = dashboards(tok, LEADS)
    alone = dashboards(tok, LEADS, conns=1, seconds=5)
    # The table measured (more than LEADS after BENCH_REUSE); the import and (8) add to it.
    measured = [int(psql("SELECT count(*) FROM %s" % t)) for t in ("leads", "activities")]
    imported = import_csv(tok)  # last: it adds leads the figures above must not see
    created = create_leads(tok)
    mem = psql("SELECT pg_size_pretty(pg_database_size('crm'))")
    before = results.previous(HEADING)
    lines = [
        "- Date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- Machine: %s cores (`nproc`), %s GiB memory; %s; load average (1 minute) %.1f at the"
        " start, %.1f at the end" % (
            os.cpu_count(), round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                  / 2 ** 30), sh(["uname", "-sr"]).strip(), load,
            os.getloadavg()[0]),
        "- Command: `make bench` (wrk -t2 -c%d, %d s per run, %d s for (3); pgbench -M prepared"
        " -c%d -j2); %s workers per pool; %s leads, %s activities, database %s;"
        " PostgreSQL's shared_buffers %s" % (
            CONNS, SECONDS, MEMORY_SECONDS, CONNS, WORKERS, format(measured[0], ","),
            format(measured[1], ","), mem, psql("SHOW shared_buffers")),
        "- Seeding (`crmctl seed`, activities and summaries included): %s" % ("; ".join(
            "%s leads in %.0f s (%.0f leads/s)" % (format(n, ","), t, n / t) for n, t in SEEDED)
            or "none (BENCH_REUSE kept the database of a run before)"),
        "",
        "| # | what | req/s | p50 ms | p99 ms | errors | before: req/s | before: p99 ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        row(1, static, before), row(2, db, before), row(3, get, before),
        row(4, search, before), row("4b", common, before), row("4c", deep[0], before),
        row("4d", deep[1], before),
    ] + [row(5, r, before) for r in small + large] + [row(8, created, before)] + [
        "",
        "Dashboard service time, one connection at a time (%s leads):" % format(LEADS, ","),
        "",
        "| route | req/s | p50 ms |",
        "| --- | ---: | ---: |",
    ] + ["| %s | %.0f | %.2f |" % (r["name"], r["rps"], r["p50"]) for r in alone] + [
        "",
        "- (3)/(1) front door: **%.3f**" % (get["rps"] / static["rps"]),
        "- (3)/(2) database limit: **%.2f** (target >= 0.90); p99 of (3): **%.2f ms**"
        " (target < 10 ms)" % (get["rps"] / db["rps"], get["p99"]),
        "- slowest list p99 (4 to 4d): **%.2f ms** (target < 50 ms)" % max(
            r["p99"] for r in [search, common] + deep),
        "- slowest dashboard p99 at %s leads and 50 connections: **%.2f ms** (target < 50 ms);"
        " slowest p50 alone: **%.2f ms**" % (format(LEADS, ","), max(r["p99"] for r in large),
                                            max(r["p50"] for r in alone)),
        "- RSS of the crm-leads pool (master and %s workers): %d KiB idle, %d KiB after a 10 s"
        " warm-up, %d KiB after the %d s run of (3)" % (WORKERS, rss_before, rss_warm, rss_after,
                                                      MEMORY_SECONDS),
        "- (6) GET /api/leads.csv of all %s leads (%.0f MiB), one client: **%.0f rows/s** (%.1f s);"
        " peak RSS of the crm-leads processes %d KiB before, %d KiB after (grew by at most %d KiB:"
        " streamed, one row at a time)" % (
            format(exported["rows"], ","), exported["mib"], exported["rows"] / exported["secs"],
            exported["secs"], exported["peak_before"], exported["peak_after"], exported["grown"]),
        import_line(imported),
        "- wall time of the whole run: %.0f s" % (time.time() - started),
    ]
    results.write_section(HEADING, lines)
    print("\n".join(lines))
    sh([os.path.join(ROOT, "scripts", "stack.sh"), "stop"], env=STACK_ENV)


if __name__ == "__main__":
    sys.exit({"import": import_only, "writes": writes_only}.get("".join(sys.argv[1:2]), main)())
