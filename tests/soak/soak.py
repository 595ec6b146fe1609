"""The chaos soak (make soak; a short one in make test): the sanitized stack under mixed load while
a driver kills its parts at random times, then the invariants that must hold whatever was killed.

soak.py BUILD: starts its own stack from BUILD under var/soak (CRM_SOAK_VAR) on CRM_SOAK_PORT, with
an SMTP sink of its own on CRM_SOAK_MAIL_PORT, for SOAK_SECONDS (default 600). The first tenth
(at most 30 s) is warm-up: load, no kills. Then, at random intervals of 2-6 s, one of (in a
shuffled round, so every kind comes up): a pool worker killed (-9), a pool master killed (-9),
crm-events killed (-9), crm-mailer killed (-9), PostgreSQL stopped fast or immediately (a crash)
and started again 0.5-3 s later, an nginx reload. The stack's supervisor restarts what died.

Load: writers (ADMIN and two SALES_EXECUTIVEs) create leads, log activities, change statuses and
(ADMIN) assign leads; a reader reads leads, the dashboard, /api/auth/me, /api/users and
/api/health (every pool is busy); a registrar registers users; SSE clients (two ADMIN, the two
SALES_EXECUTIVEs) hold streams 1-8 s, drop them and resume with the last id they saw. A write
answered 503 or cut off may or may not have happened: only those answered 200/201 are checked.

Then the kills stop, the stack settles, and the invariants are checked and printed, PASS/FAIL:
  writes     every 201/200 write is in the database with its activity and its event
  sse        each client saw each event it may see (ADMIN all; a SALES_EXECUTIVE those of leads
             it owned, or lost by an assignment) after its first position, once, in order
  mail       every registration answered 201 has its welcome e-mail marked sent and at the SMTP
             sink, or leased by a mailer killed mid-send (delayed 300 s: counted apart); no
             outbox row failed or left due and untaken
  no-500     no answer was a 5xx other than 503 (503 with Retry-After is the answer under chaos)
  contract   every answer and every event conforms to docs/openapi.yaml
  sanitizers no AddressSanitizer/LeakSanitizer/UBSan report in the daemons' logs (after stop)
  memory     each daemon process alive long enough: RSS grew at most max(30 %, 8 MiB) from its
             first sample after 30 s of life to its last (ASan's quarantine is capped at 4 MiB
             so that freed memory held for use-after-free detection does not read as growth)
  coverage   every kind of kill happened and every kind of write succeeded at least once
Exit status 0 only when all pass.
"""
import collections
import faulthandler
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build/asan"))
VAR = os.path.abspath(os.environ.get("CRM_SOAK_VAR", os.path.join(ROOT, "var", "soak")))
PORT = os.environ.get("CRM_SOAK_PORT", "18090")
MAIL_PORT = os.environ.get("CRM_SOAK_MAIL_PORT", "18035")
SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
WARMUP = min(30, SECONDS // 10)

# The stack's settings, and the API tests' helpers pointed at it (they read these at import).
STACK_ENV = dict(
    os.environ, CRM_VAR=VAR, CRM_PORT=PORT, CRM_BIN=BUILD, CRM_BCRYPT_COST="4", CRM_WORKERS="2",
    CRM_MAIL_HOST="127.0.0.1", CRM_MAIL_PORT=MAIL_PORT, CRM_MAIL_RETRY_SECONDS="1",
    # Kills between a claim and its result count as attempts: enough of them that none fails.
    CRM_MAIL_MAX_ATTEMPTS="30",
    ASAN_OPTIONS="detect_leaks=1:exitcode=23:log_exe_name=1:quarantine_size_mb=4",
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
os.environ.update(CRM_VAR=VAR, CRM_PORT=PORT, CRM_MAIL_PORT=MAIL_PORT)
sys.path.insert(0, os.path.join(ROOT, "tests", "api"))
import conftest  # noqa: E402
import contract  # noqa: E402
from sse import Stream  # noqa: E402

POOLS = ["crm-auth", "crm-login", "crm-leads", "crm-dashboard", "crm-events"]
DAEMONS = POOLS + ["crm-mailer"]
SAN_PATTERN = ("ERROR: (Address|Leak)Sanitizer|Sanitizer has encountered|runtime error:|"
               "SUMMARY: .*Sanitizer")

stop_load = threading.Event()
stop_kills = threading.Event()
lock = threading.Lock()
statuses = collections.Counter()  # (route, status) -> answers; status None: no answer
writes = []  # (kind, lead_id, activity_id, lead_version) of each write answered 200/201
registered = []  # e-mail addresses answered 201
kills = collections.Counter()
crashed = []  # the soak's own threads that died of an exception (a bug here, or a bad answer)


def guarded(fn, *args):
    def run():
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - reported as a failed invariant
            crashed.append("%s: %r" % (fn.__name__, e))
    return threading.Thread(target=run, daemon=True)


def stack(*args, check=True):
    return subprocess.run([os.path.join(ROOT, "scripts", "stack.sh")] + list(args),
                          env=STACK_ENV, capture_output=True, text=True, check=check)


def call(route, method, path, body=None, token=None):
    """One request through conftest.request (contract-checked); None when no answer came."""
    try:
        r = conftest.request(method, path, body, token=token)
    except (OSError, ValueError, http.client.HTTPException):  # refused, reset, cut short
        r = None
    with lock:
        statuses[(route, r.status if r else None)] += 1
    return r


# --- load -------------------------------------------------------------------------------------


def writer(token, owners):
    """Creates leads, logs activities on them, moves their status; owners: whom to give a lead
    to (the ADMIN's writer: assignment too; a SALES_EXECUTIVE creates its own)."""
    leads = []
    rnd = random.Random()
    while not stop_load.is_set():
        op = rnd.random()
        if not leads or op < 0.3:
            body = {"name": "Soak %s" % uuid.uuid4().hex[:8], "value": rnd.randint(0, 9999)}
            if owners:
                body["owner_id"] = rnd.choice(owners)
            r = call("lead create", "POST", "/api/leads", body, token)
            if r and r.status == 201:
                lead = r.json["lead"]
                leads.append(lead["id"])
                with lock:
                    writes.append(("lead", lead["id"], None, lead["version"]))
        elif op < 0.6:
            lead = rnd.choice(leads)
            r = call("activity", "POST", "/api/leads/%d/activity" % lead,
                     {"type": rnd.choice(["NOTE", "CALL", "MEETING"]), "content": "soak"}, token)
            if r and r.status == 201:
                with lock:
                    writes.append(("activity", lead, r.json["activity"]["id"], None))
        elif op < 0.85 or not owners:
            lead = rnd.choice(leads)
            status = rnd.choice(["CONTACTED", "QUALIFIED", "PROPOSAL", "WON", "LOST", "NEW"])
            r = call("status", "PATCH", "/api/leads/%d/status" % lead, {"status": status}, token)
            if r and r.status == 200 and r.json["activity"]:
                with lock:
                    writes.append(("status", lead, r.json["activity"]["id"],
                                   r.json["lead"]["version"]))
        else:
            lead = rnd.choice(leads)
            r = call("assign", "PATCH", "/api/leads/%d/assign" % lead,
                     {"owner_id": rnd.choice(owners)}, token)
            if r and r.status == 200 and r.json["activity"]:
                with lock:
                    writes.append(("assign", lead, r.json["activity"]["id"],
                                   r.json["lead"]["version"]))
        time.sleep(rnd.uniform(0.02, 0.1))


def reader(token):
    rnd = random.Random()
    while not stop_load.is_set():
        r = call("lead list", "GET", "/api/leads?limit=20&sort=-updated_at", token=token)
        if r and r.status == 200 and r.json["data"]:
            lead = rnd.choice(r.json["data"])["id"]
            call("lead get", "GET", "/api/leads/%d" % lead, token=token)
            call("timeline", "GET", "/api/leads/%d/activities?limit=5" % lead, token=token)
        call("dashboard", "GET", "/api/dashboard/stats", token=token)
        # crm-auth's routes too: a worker that served nothing before its memory baseline would
        # read its first connection and prepared statements as growth.
        call("me", "GET", "/api/auth/me", token=token)
        call("users", "GET", "/api/users?limit=5", token=token)
        call("health", "GET", "/api/health")
        time.sleep(rnd.uniform(0.05, 0.2))


def registrar():
    rnd = random.Random()
    while not stop_load.is_set():
        address = conftest.unique_email("soak")
        r = call("register", "POST", "/api/auth/register",
                 {"name": "Soak User", "email": address, "password": "soak-password-1"})
        if r and r.status == 201:
            with lock:
                registered.append(address)
        time.sleep(rnd.uniform(0.3, 1.0))


class Client:
    """An SSE client that holds a stream a while, drops it, and resumes from the last id it
    saw (an event's, or the stream's position), as EventSource does."""

    def __init__(self, name, token, uid):
        self.name, self.token, self.uid = name, token, uid
        self.start = None  # the position of its first stream: it may see every event after it
        self.last = None
        self.seen = []  # ids in the order they arrived, over every stream
        self.streams = 0

    def one_stream(self, hold):
        try:
            s = Stream(token=self.token, last_id=self.last)
        except (OSError, ValueError, IndexError, http.client.HTTPException):
            with lock:
                statuses[("events", None)] += 1
            return
        with lock:
            statuses[("events", s.status)] += 1
        if s.status == 200:
            self.streams += 1
            s.wait_closed(hold)
        s.close()
        if s.status == 200:
            s.thread.join(5)
            ids = s.ids()
            if self.start is None and s.position is not None:
                self.start = s.position
            self.seen.extend(ids)
            if ids:
                self.last = ids[-1]
            elif s.position is not None:
                self.last = s.position

    def run(self):
        rnd = random.Random()
        while not stop_load.is_set():
            self.one_stream(rnd.uniform(1, 8))
            time.sleep(rnd.uniform(0.05, 0.5))


# --- chaos ------------------------------------------------------------------------------------


def pid_of(name):
    try:
        with open(os.path.join(VAR, "run", name + ".pid")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except (OSError, TypeError):
        return False


def chaos_once(kind, rnd):
    """Does one kind of damage; True when it was done (a pid file may be between restarts)."""
    if kind == "worker -9":
        kids = children(pid_of(rnd.choice(POOLS[:4])) or 0)
        return bool(kids) and kill(rnd.choice(kids))
    if kind == "pool master -9":
        return kill(pid_of(rnd.choice(POOLS[:4])))
    if kind == "crm-events -9":
        return kill(pid_of("crm-events"))
    if kind == "crm-mailer -9":
        return kill(pid_of("crm-mailer"))
    if kind in ("postgres fast restart", "postgres immediate restart"):
        ok = stack("pg-stop" if "fast" in kind else "pg-crash", check=False).returncode == 0
        time.sleep(rnd.uniform(0.5, 3))
        stack("pg-start")
        return ok
    if kind == "nginx reload":
        return stack("nginx-reload", check=False).returncode == 0
    raise ValueError(kind)


KINDS = ["worker -9", "pool master -9", "crm-events -9", "crm-mailer -9",
         "postgres fast restart", "postgres immediate restart", "nginx reload"]


def chaos():
    rnd = random.Random()
    if stop_kills.wait(WARMUP):
        return
    while True:
        for kind in rnd.sample(KINDS, len(KINDS)):
            if stop_kills.wait(rnd.uniform(2, 6)):
                return
            if chaos_once(kind, rnd):
                kills[kind] += 1


# --- memory -----------------------------------------------------------------------------------

memory = {}  # pid -> [daemon, baseline kB or None, last kB, time of baseline, time of last]


def daemon_pids():
    pids = {}
    for d in DAEMONS:
        master = pid_of(d)
        if master:
            pids[master] = d
            for kid in children(master):
                pids[kid] = d + " worker"
    return pids


def rss_and_age(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        with open("/proc/%d/stat" % pid) as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return rss, uptime - start / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):
        return None, None


def sample_memory():
    now = time.time()
    for pid, d in daemon_pids().items():
        rss, age = rss_and_age(pid)
        if rss is None or age < 30:
            continue
        m = memory.setdefault(pid, [d, rss, rss, now, now])
        m[2], m[4] = rss, now


def sampler():
    while not stop_kills.wait(5):
        sample_memory()


def memory_result():
    judged, worst, bad = 0, "", []
    for pid, (d, base, last, t0, t1) in memory.items():
        if t1 - t0 < 30:
            continue
        judged += 1
        growth = last - base
        if growth > max(0.3 * base, 8192):
            bad.append("%s pid %d: %d -> %d kB" % (d, pid, base, last))
        if not worst or growth > worst[0]:
            worst = (growth, "%s pid %d %d -> %d kB" % (d, pid, base, last))
    detail = "%d processes judged; most growth: %s" % (judged, worst[1] if worst else "-")
    return judged > 0 and not bad, detail + ("; over: " + ", ".join(bad) if bad else "")


# --- checks -----------------------------------------------------------------------------------


def sql(query, *args):
    return conftest.sql(query, *args)


# A write answered 200/201 is missing when its row, its activity or its event is not there. The
# writes go in as a JSON literal of numbers the soak made itself, in one query.
MISSING_WRITES = """
SELECT w.k, w.l, w.a FROM json_to_recordset($json$%s$json$::json) AS w (k text, l bigint, a bigint,
    v int)
WHERE NOT CASE w.k
    WHEN 'lead' THEN EXISTS (SELECT FROM leads WHERE id = w.l)
        AND EXISTS (SELECT FROM activities WHERE lead_id = w.l AND type = 'CREATED')
        AND EXISTS (SELECT FROM events WHERE lead_id = w.l AND type = 'lead.created')
    WHEN 'activity' THEN EXISTS (SELECT FROM activities WHERE id = w.a AND lead_id = w.l)
        AND EXISTS (SELECT FROM events WHERE type = 'activity.created' AND payload->>'id' = w.a::text)
    ELSE EXISTS (SELECT FROM activities WHERE id = w.a AND lead_id = w.l)
        AND EXISTS (SELECT FROM events WHERE lead_id = w.l AND (payload->>'version')::int = w.v
            AND type = CASE w.k WHEN 'status' THEN 'lead.status_changed' ELSE 'lead.assigned' END)
    END
ORDER BY w.l"""


def check_writes():
    rows = json.dumps([{"k": k, "l": l, "a": a, "v": v} for k, l, a, v in writes])
    missing = sql(MISSING_WRITES % rows)
    by_kind = collections.Counter(w[0] for w in writes)
    detail = ", ".join("%s %d" % kv for kv in sorted(by_kind.items()))
    return not missing, detail + ("; missing: %s" % missing[:5] if missing else "")


def visible(client):
    cond = "" if client.uid is None else " AND (owner_id = :'p2' OR prev_owner_id = :'p2')"
    return [int(r[0]) for r in sql("SELECT id FROM events WHERE id > :'p1'" + cond +
                                   " ORDER BY id", client.start or 0, client.uid or 0)]


def check_sse(clients):
    bad, total = [], 0
    for c in clients:
        # The last catch-up: resume until the client has every event it may see.
        expected = visible(c) if c.start is not None else None
        deadline = time.time() + 60
        while (c.start is None or (expected and (not c.seen or c.seen[-1] < expected[-1]))) \
                and time.time() < deadline:
            c.one_stream(3)
            expected = visible(c) if c.start is not None else None
        total += len(c.seen)
        if c.start is None:
            bad.append("%s never got a stream" % c.name)
            continue
        ordered = all(a < b for a, b in zip(c.seen, c.seen[1:]))
        if not ordered or c.seen != expected:
            extra = sorted(set(c.seen) - set(expected))[:5]
            lost = sorted(set(expected) - set(c.seen))[:5]
            dups = len(c.seen) - len(set(c.seen))
            bad.append("%s: in order %s, %d duplicates, missing %s, not its own %s" %
                       (c.name, ordered, dups, lost, extra))
    detail = "%d clients, %d streams, %d events received" % (
        len(clients), sum(c.streams for c in clients), total)
    return not bad, detail + ("; " + "; ".join(bad) if bad else "")


def check_mail(smtp):
    """A message claimed by a mailer that was then killed (or lost its database) before it
    recorded the result stays leased for 300 s (src/mailer.c LEASE_SECONDS), then goes again: it
    is delayed, not stuck, and is counted apart. Stuck: failed, or due and not taken."""
    deadline = time.time() + 60
    while time.time() < deadline and sql(
            "SELECT count(*) FROM mail_outbox WHERE status = 'pending'"
            " AND next_attempt_at <= now()")[0][0] != "0":
        time.sleep(1)
    leased = "status = 'pending' AND attempts > 0 AND next_attempt_at > now()"
    # The registrations answered 201 whose user is missing or whose welcome is neither marked
    # sent nor leased.
    unsent = sql("SELECT r.addr, coalesce(m.status, 'no user') FROM json_array_elements_text("
                 "$json$%s$json$::json) AS r (addr) LEFT JOIN users u ON u.email = r.addr"
                 " LEFT JOIN mail_outbox m ON m.user_id = u.id"
                 " WHERE m.status IS DISTINCT FROM 'sent' AND NOT coalesce(%s, false)"
                 % (json.dumps(registered), leased.replace("status", "m.status")
                    .replace("attempts", "m.attempts").replace("next_", "m.next_")))
    bad = ["%s: %s" % tuple(row) for row in unsent]
    sent = {a for a, in sql("SELECT to_addr FROM mail_outbox WHERE status = 'sent'")}
    bad += ["%s: marked sent, never reached the SMTP sink" % a for a in registered
            if a in sent and not smtp.inbox.to(a)]
    stuck = sql("SELECT id, status, attempts, coalesce(last_error, '') FROM mail_outbox"
                " WHERE status = 'failed' OR (status = 'pending' AND NOT (%s))" % leased)
    n_leased = sql("SELECT count(*) FROM mail_outbox WHERE " + leased)[0][0]
    total = sql("SELECT count(*) FROM mail_outbox")[0][0]
    dup = len(smtp.inbox.messages) - len({r for r, _ in smtp.inbox.messages})
    detail = ("%d registrations answered 201, %s outbox rows, %d messages received (%d again),"
              " %s delayed by a dead mailer's lease") % (
        len(registered), total, len(smtp.inbox.messages), dup, n_leased)
    if stuck:
        bad.append("stuck in the outbox: %s" % stuck[:5])
    return not bad, detail + ("; " + "; ".join(bad[:5]) if bad else "")


def check_500():
    bad = {k: n for k, n in statuses.items() if k[1] is not None and k[1] >= 500 and k[1] != 503}
    return not bad, "%s" % (bad or "none")


def check_sanitizers():
    r = subprocess.run("grep -E '%s' %s/log/*.log*" % (SAN_PATTERN, VAR), shell=True,
                       capture_output=True, text=True)
    return r.stdout == "", r.stdout.strip()[:2000] or "no reports"


def settle(deadline_s=90):
    """Waits until every daemon runs and every pool answers again."""
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        up = all(pid_of(d) and os.path.exists("/proc/%d" % pid_of(d)) for d in DAEMONS)
        r = call("health", "GET", "/api/health")
        if up and r and r.status == 200:
            return True
        time.sleep(0.5)
    return False


def login(email, password):
    r = conftest.login(email, password)
    assert r.status == 200, r.text
    return r.json["token"], r.json["user"]["id"]


def main():
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # where a stuck soak is stuck
    stack("wipe")
    smtp = conftest.SmtpServer()
    smtp.start()
    started = stack("start", check=False)
    if started.returncode != 0:
        print(started.stdout, started.stderr)
        return 1
    creds = dict(line.strip().split("=", 1) for line in open(os.path.join(VAR, "admin.txt")))
    admin, _ = login(creds["email"], creds["password"])
    sales = []
    for i in range(2):
        r = conftest.register(name="Soak Sales %d" % i, token=admin, role="SALES_EXECUTIVE")
        assert r.status == 201, r.text
        sales.append((r.json["token"], r.json["user"]["id"]))
    owners = [u for _, u in sales]
    clients = [Client("ADMIN a", admin, None), Client("ADMIN b", admin, None)] + [
        Client("SALES %d" % i, t, u) for i, (t, u) in enumerate(sales)]
    load = [guarded(writer, admin, owners)] + [guarded(writer, t, None) for t, _ in sales]
    load += [guarded(reader, admin), guarded(registrar)] + [guarded(c.run) for c in clients]
    driver = [guarded(chaos), guarded(sampler)]
    t0 = time.time()
    print("soak: %d s against %s (warm-up %d s), stack in %s" % (SECONDS, BUILD, WARMUP, VAR),
          flush=True)
    for t in load + driver:
        t.start()
    time.sleep(SECONDS)
    stop_kills.set()
    for t in driver:
        t.join()
    settled = settle()
    print("soak: kills stopped, settled: %s (%.0f s)" % (settled, time.time() - t0), flush=True)
    stop_load.set()
    for t in load:
        t.join(60)
    print("soak: load stopped (%.0f s); checking" % (time.time() - t0), flush=True)
    results = [("settled", settled, "every daemon up and /api/health 200 after the kills"),
               ("threads", not crashed, "; ".join(crashed) or "every load thread ran to the end")]
    results.append(("writes",) + check_writes())
    results.append(("sse",) + check_sse(clients))
    results.append(("mail",) + check_mail(smtp))
    sample_memory()
    results.append(("no-500",) + check_500())
    violations = contract.take_violations()
    results.append(("contract", not violations, "%d violations%s" % (
        len(violations), ": " + "; ".join(violations[:3]) if violations else "")))
    stack("stop")
    smtp.stop()
    results.append(("sanitizers",) + check_sanitizers())
    results.append(("memory",) + memory_result())
    missing = [k for k in KINDS if not kills[k]]
    kinds = {w[0] for w in writes}
    results.append(("coverage", not missing and kinds == {"lead", "activity", "status", "assign"},
                    "kinds never done: %s; writes: %s" % (missing or "none", sorted(kinds))))
    report(results, time.time() - t0)
    return 0 if all(ok for _, ok, _ in results) else 1


def report(results, elapsed):
    answered = sum(n for (_, s), n in statuses.items() if s is not None)
    print("\nsoak: %.0f s; kills %d; requests %d answered, %d without an answer" % (
        elapsed, sum(kills.values()), answered, statuses_without_answer()))
    print("kills:")
    for k in KINDS:
        print("  %-28s %5d" % (k, kills[k]))
    print("answers (route: status count):")
    routes = sorted({r for r, _ in statuses})
    for route in routes:
        row = sorted(((s, n) for (r, s), n in statuses.items() if r == route),
                     key=lambda x: (x[0] is None, x[0] or 0))
        print("  %-12s %s" % (route, "  ".join("%s:%d" % (s or "none", n) for s, n in row)))
    print("invariants:")
    for name, ok, detail in results:
        print("  %-10s %s  %s" % (name, "PASS" if ok else "FAIL", detail))
    failed = sum(1 for _, ok, _ in results if not ok)
    print("soak: %s (%d of %d invariants failed)" % ("PASS" if not failed else "FAIL", failed,
                                                     len(results)))


def statuses_without_answer():
    return sum(n for (_, s), n in statuses.items() if s is None)


if __name__ == "__main__":
    sys.exit(main())
