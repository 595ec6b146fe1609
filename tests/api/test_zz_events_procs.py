"""Several crm-events processes on one host (stack.sh events-procs N): nginx spreads the streams
over them, and each process LISTENs, fans every event out to its own streams, replays by
Last-Event-ID and closes a deactivated user's streams. Each process counts its own streams at
/metrics/crm-events(-N), which tells where the streams landed. Named to run late: it changes the
stack's shape, and puts it back."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import ROOT, VAR, env_file, make_user, request
from sse import Stream
from test_events import last_event_id, new_lead, note
from test_metrics import scrape, value

PROCS = ("crm-events", "crm-events-2")


def events_procs(n):
    subprocess.run([os.path.join(ROOT, "scripts", "stack.sh"), "events-procs", str(n)],
                   check=True, capture_output=True)


@pytest.fixture(scope="module", autouse=True)
def two_processes():
    events_procs(2)
    try:
        yield
    finally:
        events_procs(1)


def open_counts():
    return [value(scrape(p)[0], "crm_sse_streams_open") for p in PROCS]


def open_on_both(token, n=4, **kw):
    """n streams of token, and proof from each process's own count that both hold some."""
    before = open_counts()
    streams = [Stream(token=token, **kw) for _ in range(n)]
    assert all(s.status == 200 for s in streams)
    deadline = time.time() + 5
    while True:
        rose = [a - b for a, b in zip(open_counts(), before)]
        if sum(rose) == n or time.time() > deadline:
            break
        time.sleep(0.1)
    assert sum(rose) == n and min(rose) >= 1, rose
    return streams


def of_lead(stream, lead_id):
    return [(m["id"], m["event"]) for m in stream.messages
            if json.loads(m["data"])["lead_id"] == lead_id]


def test_every_stream_on_either_process_gets_each_event_once(admin):
    streams = open_on_both(admin["token"])
    try:
        lead = new_lead(admin["token"])
        note(admin["token"], lead["id"])
        note(admin["token"], lead["id"], "again")
        end = last_event_id()
        for s in streams:
            assert s.wait_id(end)
        time.sleep(0.3)  # a duplicate would have arrived by now
        got = [of_lead(s, lead["id"]) for s in streams]
        assert [e for _, e in got[0]] == ["lead.created", "activity.created", "activity.created"]
        assert all(g == got[0] for g in got)
        for s in streams:
            assert s.ids() == sorted(set(s.ids()))
    finally:
        for s in streams:
            s.close()


def test_replay_by_last_event_id_on_either_process(admin):
    start = last_event_id()
    lead = new_lead(admin["token"])
    for i in range(3):
        note(admin["token"], lead["id"], "n%d" % i)
    streams = open_on_both(admin["token"], last_id=start)
    try:
        live = note(admin["token"], lead["id"], "live")
        end = last_event_id()
        for s in streams:
            assert s.wait_id(end)
        time.sleep(0.3)
        want = ["lead.created"] + ["activity.created"] * 4
        for s in streams:
            got = of_lead(s, lead["id"])
            assert [e for _, e in got] == want
            assert min(s.ids()) > start and s.ids() == sorted(set(s.ids()))
            assert json.loads(s.messages[-1]["data"])["data"]["id"] == live["id"]
    finally:
        for s in streams:
            s.close()


@pytest.mark.parametrize("end", ["deactivated", "logout-all"])
def test_a_users_streams_end_on_both(admin, end):
    """A deactivation (by an ADMIN) and a logout-all (by the user) end the user's streams on
    every process."""
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    streams = open_on_both(token)
    try:
        if end == "deactivated":
            r = request("PATCH", "/api/users/%d" % user["id"], {"active": False},
                        token=admin["token"])
            assert r.status == 200
        else:
            r = request("POST", "/api/auth/logout-all", token=token)
            assert r.status == 204
        assert all(s.wait_closed(5) for s in streams)
    finally:
        for s in streams:
            s.close()


def test_the_per_user_cap_is_per_process(admin):
    """SSE_MAX_STREAMS_PER_USER holds in each process (README): with two, a user holds up to
    twice as many streams, then gets 429."""
    cap = int(env_file()["SSE_MAX_STREAMS_PER_USER"])
    token, _ = make_user(admin["token"], "SALES_EXECUTIVE")
    streams = open_on_both(token, 2 * cap)
    try:
        refused = Stream(token=token)
        refused.wait_closed()
        assert refused.status == 429
    finally:
        for s in streams:
            s.close()


def test_supervisor_starts_a_second_process_again(admin):
    pidfile = os.path.join(VAR, "run", "crm-events-2.pid")
    pid = int(open(pidfile).read())
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if int(open(pidfile).read()) != pid and scrape("crm-events-2"):
                break
        except (OSError, ValueError, AssertionError):
            pass
        time.sleep(0.2)
    assert int(open(pidfile).read()) != pid
    # The new process gets streams again, and sends them events.
    test_every_stream_on_either_process_gets_each_event_once(admin)
