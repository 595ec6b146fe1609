"""GET /api/events: Server-Sent Events from crm-events through nginx, against the real stack."""
import base64
import hashlib
import hmac
import json
import os
import random
import re
import socket
import subprocess
import threading
import time

from conftest import VAR, env_file, make_user, request, sql
from sse import Stream


def new_lead(token, **fields):
    body = {"name": "Lead %d" % random.randrange(10**9)}
    body.update(fields)
    r = request("POST", "/api/leads", body, token=token)
    assert r.status == 201, r.text
    return r.json["lead"]


def note(token, lead_id, content="called"):
    r = request("POST", "/api/leads/%d/activity" % lead_id, {"type": "NOTE", "content": content},
                token=token)
    assert r.status == 201, r.text
    return r.json["activity"]


def last_event_id():
    return int(sql("SELECT coalesce(max(id), 0) FROM events")[0][0])


def by_type(stream, lead_id):
    return [(m["event"], json.loads(m["data"])["lead_id"]) for m in stream.messages
            if json.loads(m["data"])["lead_id"] == lead_id]


def test_unauthenticated_gets_401_before_the_stream():
    for s in (Stream(), Stream(token="not.a.token"), Stream(query_token="x.y.z")):
        s.wait_closed()
        assert s.status == 401
        assert s.headers["content-type"].startswith("application/json")
        assert s.headers["www-authenticate"] == "Bearer"
        assert json.loads(s.body)["error"]["code"] == "unauthenticated"
        assert s.messages == [] and s.retry is None


def test_other_methods_and_bad_resume_ids(admin):
    r = request("POST", "/api/events", {"x": 1}, token=admin["token"])
    assert r.status == 405 and r.header("Allow") == "GET, HEAD"
    assert r.error_code() == "method_not_allowed"
    for s in (Stream(token=admin["token"], last_id="abc"),
              Stream(token=admin["token"], last_id_query="-1")):
        s.wait_closed()
        assert s.status == 400 and json.loads(s.body)["error"]["code"] == "invalid_query"


def test_stream_starts_with_retry_and_carries_ids(admin):
    s = Stream(token=admin["token"])
    try:
        assert s.status == 200
        assert s.headers["content-type"] == "text/event-stream"
        assert s.headers["cache-control"] == "no-cache" and s.headers["x-request-id"]
        assert s.wait(lambda ms: s.retry is not None, 5) and s.retry == 3000
        assert s.body.startswith(b"retry: 3000\n\n")
        lead = new_lead(admin["token"])
        mine = lambda ms: [m for m in ms if json.loads(m["data"])["lead_id"] == lead["id"]]
        assert s.wait(mine)
        m = mine(s.messages)[0]
        data = json.loads(m["data"])
        assert m["event"] == "lead.created" and data["type"] == "lead.created"
        assert data["id"] == m["id"] and data["lead_id"] == lead["id"]
        assert data["actor"] == {"id": admin["user"]["id"], "name": admin["user"]["name"]}
        assert data["data"]["id"] == lead["id"] and data["data"]["name"] == lead["name"]
        assert data["at"].endswith("Z")
    finally:
        s.close()


def test_delivery_follows_roles(admin):
    mgr_token, _ = make_user(admin["token"], "MANAGER")
    a_token, a = make_user(admin["token"], "SALES_EXECUTIVE")
    b_token, b = make_user(admin["token"], "SALES_EXECUTIVE")
    streams = {n: Stream(token=t) for n, t in
               (("admin", admin["token"]), ("manager", mgr_token), ("a", a_token), ("b", b_token))}
    try:
        lead = new_lead(admin["token"], owner_id=a["id"])
        note(a_token, lead["id"])
        r = request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": "CONTACTED"},
                    token=a_token)
        assert r.status == 200
        r = request("PATCH", "/api/leads/%d/assign" % lead["id"], {"owner_id": b["id"]},
                    token=admin["token"])
        assert r.status == 200
        note(b_token, lead["id"], "b now")
        r = request("DELETE", "/api/leads/%d" % lead["id"], token=admin["token"])
        assert r.status == 204
        end = last_event_id()
        for name in ("admin", "manager", "b"):
            assert streams[name].wait_id(end), name
        time.sleep(0.3)  # a stream that should get nothing more has had the time to
        everything = ["lead.created", "activity.created", "lead.status_changed", "lead.assigned",
                      "activity.created", "lead.deleted"]
        got = {n: [e for e, _ in by_type(s, lead["id"])] for n, s in streams.items()}
        assert got["admin"] == everything and got["manager"] == everything
        # a owned it until the assignment, which reaches it as the previous owner.
        assert got["a"] == everything[:4]
        # b sees it from the assignment on.
        assert got["b"] == everything[3:]
        for s in streams.values():
            assert s.ids() == sorted(set(s.ids()))
    finally:
        for s in streams.values():
            s.close()


def test_replay_by_header_and_by_query(admin, sales):
    s_token, s_user = sales
    live = Stream(token=admin["token"])
    try:
        start = last_event_id()
        mine = new_lead(admin["token"], owner_id=s_user["id"])
        other = new_lead(admin["token"])
        for i in range(5):
            note(admin["token"], mine["id"], "m%d" % i)
            note(admin["token"], other["id"], "o%d" % i)
        end = last_event_id()
        assert live.wait_id(end)
        all_ids = [i for i in live.ids() if start < i <= end]
        assert all_ids == [int(r[0]) for r in sql(
            "SELECT id FROM events WHERE id > :'p1' AND id <= :'p2' ORDER BY id", start, end)]
        mine_ids = [int(r[0]) for r in sql(
            "SELECT id FROM events WHERE id > :'p1' AND id <= :'p2' AND owner_id = :'p3' "
            "ORDER BY id", start, end, s_user["id"])]
        assert len(mine_ids) == 6
        cut = all_ids[3]
        for kw in ({"last_id": cut}, {"last_id_query": cut}):
            r = Stream(token=admin["token"], **kw)
            assert r.wait(lambda ms: len(ms) >= len(all_ids) - 4)
            time.sleep(0.2)
            assert r.ids() == all_ids[4:], kw
            r.close()
        # A sales executive's replay has only its own leads' events; by query token too.
        r = Stream(query_token=s_token, last_id_query=start)
        assert r.wait(lambda ms: len(ms) >= 6)
        time.sleep(0.2)
        assert r.ids() == mine_ids
        r.close()
        # Resuming from the newest id replays nothing, and then the stream goes on live.
        r = Stream(token=admin["token"], last_id=end)
        time.sleep(0.3)
        assert r.ids() == []
        new_lead(admin["token"])
        assert r.wait(lambda ms: len(ms) == 1) and r.ids() == [end + 1]
        r.close()
    finally:
        live.close()


def test_late_commit_with_a_smaller_id_is_not_skipped(admin):
    """A transaction takes an event id, then waits; a later id commits first. The stream must
    hold the later id back until the earlier one commits, so a client resuming after the
    later id can never miss the earlier."""
    lead = new_lead(admin["token"])
    s = Stream(token=admin["token"])
    try:
        url = env_file()["DATABASE_URL"]
        taken = "SELECT last_value FROM pg_sequences WHERE sequencename = 'events_id_seq'"
        before = sql(taken)
        slow = subprocess.Popen(
            ["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c",
             # Like every statement of the API, it has its xid before it takes an event id.
             "BEGIN; SELECT pg_current_xact_id(); "
             # Its payload is a real activity of the lead, as the API would send (the stream
             # holds every event to docs/openapi.yaml).
             "INSERT INTO events (type, lead_id, owner_id, actor_id, payload) SELECT "
             "'activity.created', %d, NULL, %d, crm_activity_json(a)::jsonb FROM activities a "
             "WHERE a.lead_id = %d; SELECT pg_sleep(2);"
             # The last moment before its commit, on the clock the stream's times are read on.
             " SELECT extract(epoch FROM clock_timestamp()); COMMIT;"
             % (lead["id"], admin["user"]["id"], lead["id"])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The slow transaction holds its id (waited for, not assumed: psql may start slowly).
        deadline = time.time() + 10
        while sql(taken) == before and time.time() < deadline:
            time.sleep(0.05)
        assert sql(taken) != before, "the slow transaction took no event id"
        note(admin["token"], lead["id"], "fast")
        fast_id = last_event_id()
        assert s.wait_id(fast_id, 10)
        out, err = slow.communicate(timeout=10)
        assert slow.returncode == 0, err
        before_commit = float(out.split()[-1])
        # (The lead's own lead.created may come first, had the stream opened before it was sent.)
        got = [m for m in s.messages if m["event"] == "activity.created"]
        ids = [m["id"] for m in got]
        assert ids == [fast_id - 1, fast_id], ids
        fast = got[1]
        # Measured, not assumed from the 2 s sleep: a loaded machine may notice the taken id late.
        assert fast["at"] > before_commit, "the later id was delivered before the earlier committed"
    finally:
        s.close()


def test_aborted_ids_do_not_block_delivery(admin):
    lead = new_lead(admin["token"])
    s = Stream(token=admin["token"])
    try:
        sql("BEGIN; INSERT INTO events (type, lead_id, owner_id, actor_id, payload) VALUES "
            "('activity.created', :'p1', NULL, :'p2', '{}'); ROLLBACK;",
            lead["id"], admin["user"]["id"])
        t0 = time.time()
        note(admin["token"], lead["id"])
        end = last_event_id()
        assert s.wait_id(end, 5)
        assert s.messages[-1]["at"] - t0 < 2
    finally:
        s.close()


def resuming_client(token, start, stop, out):
    """Reads a few events, drops the connection, resumes from the last id seen; repeats until
    stop is set and the newest event has arrived."""
    rng = random.Random(start)
    seen, last = [], start
    while True:
        s = Stream(token=token, last_id=last)
        want = rng.randint(1, 40)
        s.wait(lambda ms: len(ms) >= want, 2)
        s.close()
        got = [i for i in s.ids()]
        seen += got
        if got:
            last = got[-1]
        if stop.is_set() and last >= stop.end:
            break
    out.append(seen)


def test_concurrent_writers_every_client_gets_every_event_once_in_order(admin, sales):
    s_token, s_user = sales
    leads = [new_lead(admin["token"], owner_id=s_user["id"] if i % 2 else None)["id"]
             for i in range(8)]
    start = last_event_id()
    live = [Stream(token=admin["token"]), Stream(token=s_token)]
    stop = threading.Event()
    results = []
    readers = [threading.Thread(target=resuming_client, args=(t, start, stop, results))
               for t in (admin["token"], admin["token"], admin["token"])]
    for t in readers:
        t.start()
    errors = []

    def writer(lead_id):
        for i in range(200):
            r = request("POST", "/api/leads/%d/activity" % lead_id,
                        {"type": "CALL", "content": "call %d" % i}, token=admin["token"])
            if r.status != 201:
                errors.append(r.text)

    writers = [threading.Thread(target=writer, args=(lid,)) for lid in leads]
    try:
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        assert errors == []
        stop.end = last_event_id()
        stop.set()
        for t in readers:
            t.join(60)
        expected = [int(r[0]) for r in sql(
            "SELECT id FROM events WHERE id > :'p1' AND id <= :'p2' ORDER BY id", start, stop.end)]
        assert len(expected) == 1600
        mine = [int(r[0]) for r in sql(
            "SELECT id FROM events WHERE id > :'p1' AND id <= :'p2' AND owner_id = :'p3' "
            "ORDER BY id", start, stop.end, s_user["id"])]
        assert len(mine) == 800
        assert live[0].wait(lambda ms: len(ms) >= 1600, 30)
        assert live[1].wait(lambda ms: len(ms) >= 800, 30)
        assert live[0].ids() == expected
        assert live[1].ids() == mine
        assert len(results) == 3
        for seen in results:
            assert seen == expected
    finally:
        stop.end = 0
        stop.set()
        for s in live:
            s.close()


def test_stalled_client_is_dropped_and_does_not_delay_others(admin):
    lead = new_lead(admin["token"])
    rid = "stalled-%d" % random.randrange(10**9)
    stalled = Stream(token=admin["token"], rcvbuf=4096, read=False, headers={"X-Request-Id": rid})
    quick = Stream(token=admin["token"])
    log = os.path.join(VAR, "log", "crm-events.log")
    big = "\U0001F600" * 10000  # 40 KB of UTF-8 per event
    try:
        worst = 0.0
        dropped = False
        for i in range(400):
            t0 = time.time()
            body = json.dumps({"notes": big[:-1] + str(i % 10)}, ensure_ascii=False).encode()
            r = request("PATCH", "/api/leads/%d" % lead["id"], raw=body, token=admin["token"],
                        headers={"Content-Type": "application/json"})
            assert r.status == 200
            end = last_event_id()
            assert quick.wait_id(end, 10)
            worst = max(worst, quick.messages[-1]["at"] - t0)
            with open(log) as f:
                dropped = "stream closed req=%s user=%d: client too slow" % (
                    rid, admin["user"]["id"]) in f.read()
            if dropped:
                break
        assert dropped, "the stalled stream was never dropped"
        print("dropped after", i + 1, "events of 40 KB")
        assert worst < 2.0, worst
        assert quick.ids() == sorted(set(quick.ids()))
    finally:
        stalled.close()
        quick.close()


def test_curl_n(admin):
    curl = subprocess.Popen(["curl", "-sN", "--max-time", "4", "-H",
                             "Authorization: Bearer " + admin["token"],
                             "http://127.0.0.1:%s/api/events" % os.environ.get("CRM_PORT", "18080")],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(0.7)
    lead = new_lead(admin["token"])
    out, _ = curl.communicate(10)
    assert out.startswith("retry: 3000\n\n")
    assert "event: lead.created\n" in out and '"lead_id":%d,' % lead["id"] in out


def sign(claims):
    secret = env_file()["JWT_SECRET"].encode()
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
    head = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = enc(json.dumps(claims).encode())
    mac = enc(hmac.new(secret, head + b"." + body, hashlib.sha256).digest())
    return (head + b"." + body + b"." + mac).decode()


def test_stream_closes_when_the_token_expires(admin):
    now = int(time.time())
    token = sign({"sub": str(admin["user"]["id"]), "role": "ADMIN", "iat": now, "exp": now + 2})
    s = Stream(token=token)
    try:
        assert s.status == 200
        assert not s.wait_closed(1)
        assert s.wait_closed(5)
    finally:
        s.close()


def test_deactivated_users_streams_close(admin):
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    s = Stream(token=token)
    try:
        assert s.status == 200 and not s.wait_closed(0.5)
        r = request("PATCH", "/api/users/%d" % user["id"], {"active": False}, token=admin["token"])
        assert r.status == 200
        assert s.wait_closed(5)
        again = Stream(token=token)
        again.wait_closed()
        assert again.status == 401
    finally:
        s.close()


def open_until_refused(tokens, count, accept="text/event-stream"):
    """Opens up to count streams, taking tokens in turn, until one is refused. Returns the
    streams that opened and the refused one (None when none was)."""
    streams = []
    for i in range(count):
        s = Stream(token=tokens[i % len(tokens)], accept=accept)
        if s.status != 200:
            s.wait_closed()
            return streams, s
        streams.append(s)
    return streams, None


def open_again(token, timeout=5):
    """A stream of token, retried while a stream just closed has not yet left crm-events."""
    deadline = time.time() + timeout
    while True:
        s = Stream(token=token)
        if s.status == 200 or time.time() > deadline:
            return s
        s.close()
        time.sleep(0.2)


def test_streams_per_user_then_429(admin):
    """A user holds at most SSE_MAX_STREAMS_PER_USER streams; its next is refused with 429
    while other users, ADMIN included, still get theirs; closing one makes room again."""
    cap = int(env_file()["SSE_MAX_STREAMS_PER_USER"])
    assert cap < int(env_file()["SSE_MAX_STREAMS"]) // 2
    token, _ = make_user(admin["token"], "SALES_EXECUTIVE")
    other, _ = make_user(admin["token"], "SALES_EXECUTIVE")
    streams, refused = open_until_refused([token], cap)
    try:
        assert refused is None and len(streams) == cap
        rid = "cap-%d" % random.randrange(10**9)
        refused = Stream(token=token, headers={"X-Request-Id": rid})
        refused.wait_closed()
        assert refused.status == 429 and refused.headers["x-request-id"] == rid
        assert refused.headers["content-type"] == "application/json; charset=utf-8"
        error = json.loads(refused.body)["error"]
        assert error["code"] == "too_many_streams" and "too many open streams" in error["message"]
        assert int(refused.headers["retry-after"]) > 0 and refused.messages == []
        for t in (other, admin["token"]):
            s = Stream(token=t)
            s.close()
            assert s.status == 200
        streams.pop().close()
        streams.append(open_again(token))
        assert streams[-1].status == 200
    finally:
        for s in streams:
            s.close()


def test_max_streams_then_503(admin):
    """Streams of several users, none at its own limit, open until SSE_MAX_STREAMS are open
    (fewer if streams of earlier tests are still being closed), then the next is refused with
    503, which says why; closing one makes room again. An EventSource (Accept:
    text/event-stream), which never retries a 503, is told to come back instead: a 200 stream
    that ends at once with its retry time."""
    limit = int(env_file()["SSE_MAX_STREAMS"])
    cap = int(env_file()["SSE_MAX_STREAMS_PER_USER"])
    tokens = [admin["token"]]
    tokens += [make_user(admin["token"], "SALES_EXECUTIVE")[0] for _ in range(limit // cap + 1)]
    streams, refused = open_until_refused(tokens, limit + 1, accept="*/*")
    try:
        assert refused is not None and len(streams) <= limit
        assert refused.status == 503 and refused.headers["retry-after"] == "1"
        error = json.loads(refused.body)["error"]
        assert error["code"] == "unavailable" and "limit of open streams" in error["message"]
        assert len(streams) >= limit - 5
        told = Stream(token=admin["token"])
        told.wait_closed()
        assert told.status == 200 and told.retry == 3000 and told.messages == []
        assert told.headers["content-type"] == "text/event-stream" and told.comments
    finally:
        for s in streams:
            s.close()
    s = open_again(admin["token"])
    s.close()
    assert s.status == 200


def test_purge_keeps_24_hours(admin):
    lead = new_lead(admin["token"])
    sql("INSERT INTO events (type, lead_id, actor_id, payload, created_at) VALUES "
        "('lead.updated', :'p1', :'p2', '{}', now() - interval '25 hours')",
        lead["id"], admin["user"]["id"])
    old = sql("SELECT count(*) FROM events WHERE created_at < now() - interval '24 hours'")
    assert old == [["1"]]
    recent = int(sql("SELECT count(*) FROM events")[0][0]) - 1
    r = subprocess.run([os.path.join(VAR, "bin", "crmctl"), "purge-events"], capture_output=True,
                       text=True, env=dict(os.environ, CRM_ENV_FILE=os.path.join(VAR, "crm.env")))
    assert r.returncode == 0 and r.stdout == "purged 1 events\n", r.stderr
    assert sql("SELECT count(*) FROM events") == [[str(recent)]]


def test_query_token_stays_out_of_the_logs(admin):
    s = Stream(query_token=admin["token"])
    assert s.status == 200
    s.close()
    time.sleep(0.5)
    logs = os.path.join(VAR, "log")
    for name in os.listdir(logs):
        with open(os.path.join(logs, name), errors="replace") as f:
            assert admin["token"] not in f.read(), name


def test_idle_stream_gets_a_ping_every_15_seconds(admin):
    s = Stream(token=admin["token"])
    try:
        t0 = time.time()
        assert s.wait(lambda ms: len(s.comments) >= 1, 17)
        assert s.comments[0] == ": ping" and time.time() - t0 <= 16
        assert not s.closed
    finally:
        s.close()


def test_bad_fastcgi_input_is_closed_and_harms_nothing(admin):
    """Straight to crm-events' socket: bytes that are not FastCGI are refused at once, a
    connection that never sends its request is closed after 10 s, and streams go on."""
    path = os.path.join(VAR, "run", "crm-events.sock")
    live = Stream(token=admin["token"])
    garbage = socket.socket(socket.AF_UNIX)
    silent = socket.socket(socket.AF_UNIX)
    try:
        garbage.connect(path)
        silent.connect(path)
        garbage.settimeout(5)
        silent.settimeout(15)
        garbage.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"\x01" * 100)
        while garbage.recv(100):  # at most an END_REQUEST, then the close
            pass
        t0 = time.time()
        while silent.recv(100):
            pass
        assert 9 <= time.time() - t0 <= 13
        new_lead(admin["token"])
        assert live.wait_id(last_event_id()) and not live.closed
        with open(os.path.join(VAR, "log", "crm-events.log")) as f:
            log = f.read()
        assert "connection closed before its request: not a FastCGI request" in log
        assert "connection closed before its request: no request" in log
    finally:
        garbage.close()
        silent.close()
        live.close()


def test_event_data_is_compact_json_live_and_replayed(admin):
    """An event's data line is its JSON without white space between tokens (PostgreSQL writes
    "id" : 1), live and on replay, while white space inside strings is kept as it was."""
    start = last_event_id()
    s = Stream(token=admin["token"])
    try:
        lead = new_lead(admin["token"], name='Spaced : out , "quoted" { x }  two  spaces')
        mine = lambda ms: [m for m in ms if json.loads(m["data"])["lead_id"] == lead["id"]]
        assert s.wait(mine)
        replay = Stream(token=admin["token"], last_id=start)
        try:
            assert replay.wait(mine)
            for m in (mine(s.messages)[0], mine(replay.messages)[0]):
                data = json.loads(m["data"])
                assert data["data"]["name"] == lead["name"]
                outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', m["data"])
                assert not re.search(r"\s", outside_strings), m["data"]
        finally:
            replay.close()
    finally:
        s.close()
