"""The embedded stack's logs rotate past a size bound and lose nothing: every request of a burst
has its one line (by request id) in the log or its rotated files, in crm-leads' log and in
nginx's access log, and the programs and nginx go on writing to the new file."""
import glob
import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from conftest import ROOT, VAR, request

LOG = os.path.join(VAR, "log")
BOUND = 32768
WATCHED = ("crm-leads.log", "nginx-access.log")


def stack(*args):
    subprocess.run([os.path.join(ROOT, "scripts", "stack.sh"), *args], check=True,
                   capture_output=True)


def rotated(name):
    return glob.glob(os.path.join(LOG, name + ".*"))


def size(name):
    """The current file's size, None while there is none: nginx makes a new one only when it
    reopens, just after the rename."""
    path = os.path.join(LOG, name)
    return os.path.getsize(path) if os.path.exists(path) else None


def settled(before):
    return all(len(rotated(n)) > before[n] and size(n) is not None and size(n) <= BOUND
               for n in WATCHED)


def text(paths):
    out = ""
    for p in paths:
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                out += f.read()
    return out


def burst(token, n):
    """n requests to crm-leads, each with its own request id; returns the ids."""
    tag = uuid.uuid4().hex[:8]
    ids = ["logs-%s-%04d" % (tag, i) for i in range(n)]

    def one(rid):
        r = request("GET", "/api/leads?limit=1", token=token, headers={"X-Request-Id": rid})
        assert r.status == 200 and r.header("X-Request-Id") == rid, r.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, ids))
    return ids


def lines_per_id(ids, body, fmt):
    return {rid: body.count(fmt % rid) for rid in ids}


def test_logs_rotate_without_losing_a_line(admin):
    token = admin["token"]
    before = {name: len(rotated(name)) for name in WATCHED}
    stack("log-limit", str(BOUND), "100")
    try:
        ids = burst(token, 800)  # ~70 KB in crm-leads.log, ~200 KB in nginx-access.log
        # Settled: each file rotated, and its new one made (nginx makes it when it reopens, a
        # program with its next line) and within the bound, also a check of the supervisor
        # (every second) later.
        deadline = time.time() + 20
        while time.time() < deadline:
            if settled(before):
                time.sleep(1.5)
                if settled(before):
                    break
            time.sleep(0.2)
        for name in WATCHED:
            assert len(rotated(name)) > before[name], name + " was not rotated"
            assert size(name) is not None and size(name) <= BOUND, name + " past its bound"
        # Each request has exactly one line in the program's log and one in nginx's, across the
        # current file and the rotated ones: nothing lost and nothing doubled by the rotation.
        leads = text([os.path.join(LOG, "crm-leads.log")] + rotated("crm-leads.log"))
        access = text([os.path.join(LOG, "nginx-access.log")] + rotated("nginx-access.log"))
        counts = lines_per_id(ids, leads, "req=%s GET /api/leads 200 ")
        assert [rid for rid, c in counts.items() if c != 1] == []
        counts = lines_per_id(ids, access, "rid=%s ")
        assert [rid for rid, c in counts.items() if c != 1] == []
        # After the rotation the programs and nginx write to the new files (the bound back to
        # the default first, so that no rotation moves these lines on).
        stack("log-limit")
        later = burst(token, 40)
        time.sleep(0.5)
        leads = text([os.path.join(LOG, "crm-leads.log")])
        access = text([os.path.join(LOG, "nginx-access.log")])
        assert [r for r, c in lines_per_id(later, leads, "req=%s GET ").items() if c != 1] == []
        assert [r for r, c in lines_per_id(later, access, "rid=%s ").items() if c != 1] == []
    finally:
        stack("log-limit")
