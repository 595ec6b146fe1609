"""PostgreSQL restarts under open SSE streams: they stay open and lose nothing, including the
events committed while crm-events was not yet listening again; crm-events restarts while a
transaction runs. Runs last: it takes the database and crm-events away."""
import json
import time

from conftest import request, sql
from sse import Stream
from test_events import last_event_id, new_lead, note
from test_zz_database_restart import stack


def test_restart_mid_stream_loses_nothing(admin):
    lead = new_lead(admin["token"])
    s = Stream(token=admin["token"])
    try:
        note(admin["token"], lead["id"], "before")
        assert s.wait_id(last_event_id())
        stack("pg-stop")
        stack("pg-start")
        # Write as soon as the API is back: crm-events may not be listening yet.
        deadline = time.time() + 15
        while request("GET", "/api/health").status != 200 and time.time() < deadline:
            time.sleep(0.05)
        for i in range(5):
            note(admin["token"], lead["id"], "after %d" % i)
        end = last_event_id()
        assert s.wait_id(end, 15)
        expected = [int(r[0]) for r in sql(
            "SELECT id FROM events WHERE id >= :'p1' AND id <= :'p2' ORDER BY id",
            s.ids()[0], end)]
        assert s.ids() == expected and len(expected) >= 6
        assert not s.closed
    finally:
        s.close()


def read_pid(path):
    """The pid in path, or None while the supervisor is writing it."""
    try:
        with open(path) as f:
            return int(f.read())
    except (FileNotFoundError, ValueError):
        return None


def test_crm_events_restart_while_a_transaction_runs(admin):
    """crm-events starts while a transaction that may hold an event id is open: it cannot know
    where delivery starts until that ends, so a client that connects meanwhile waits for its
    stream (no 503, which EventSource would not retry), and then gets every event."""
    import os
    import signal
    import subprocess

    from conftest import VAR, env_file

    t_psql = time.time()
    slow = subprocess.Popen(["psql", env_file()["DATABASE_URL"], "-X", "-q", "-c",
                             "BEGIN; SELECT pg_current_xact_id(); SELECT pg_sleep(6); COMMIT;"],
                            stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    pidfile = os.path.join(VAR, "run", "crm-events.pid")
    pid = int(open(pidfile).read())
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
            time.sleep(0.05)
        except ProcessLookupError:
            break
    # The stack's supervisor starts it again (as systemd does in production).
    sock = os.path.join(VAR, "run", "crm-events.sock")
    deadline = time.time() + 5
    while time.time() < deadline and not (read_pid(pidfile) not in (None, pid) and
                                          os.path.exists(sock)):
        time.sleep(0.05)
    assert time.time() - t_psql < 5, "too slow to restart for this test"
    s = Stream(token=admin["token"])
    try:
        # The head came once the transaction had ended, not before, and not as a 503.
        assert s.status == 200 and time.time() - t_psql >= 5.8
        assert slow.wait(10) == 0
        lead = new_lead(admin["token"])
        assert s.wait(lambda ms: any(json.loads(m["data"])["lead_id"] == lead["id"] for m in ms))
    finally:
        s.close()
