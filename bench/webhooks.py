#!/usr/bin/env python3
"""make bench-webhooks (also part of make bench): crm-webhooks against fast local receivers.

A fresh stack of the optimised build (under var/bench-webhooks) with WEBHOOK_ALLOW_NETS letting
webhooks reach loopback; the receivers are the stack's own nginx answering `return 204` on
another port (the fastest receiver there is, so the figures are crm-webhooks' own). Measures:
(1) throughput: BENCH_WEBHOOK_ENDPOINTS endpoints subscribed to lead.created, then
BENCH_WEBHOOK_EVENTS leads created in one statement: deliveries per second until every queue is
empty; (2) latency: leads created one at a time through the API, 20 a second for
BENCH_SECONDS: the time from the event's transaction (events.created_at) to the receiver's 2xx
being recorded (delivered_at), p50 and p99, from the database's own clock. Writes its section of
bench/results.md, with the previous run's figures beside. Settings: BENCH_WEBHOOK_PORT (18097;
the next port is the receiver), BENCH_WEBHOOK_ENDPOINTS (8), BENCH_WEBHOOK_EVENTS (5000),
BENCH_SECONDS (15).
"""
import datetime
import json
import os
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "scripts"), os.path.join(ROOT, "bench")]
import results  # noqa: E402 (bench/results.md by section)
from stackctl import Stack  # noqa: E402

PORT = int(os.environ.get("BENCH_WEBHOOK_PORT", "18097"))
RECEIVER = PORT + 1
ENDPOINTS = int(os.environ.get("BENCH_WEBHOOK_ENDPOINTS", "8"))
EVENTS = int(os.environ.get("BENCH_WEBHOOK_EVENTS", "5000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
HEADING = "## Webhook deliveries (make bench-webhooks)"


def api(stack, tok, method, path, body):
    req = urllib.request.Request(stack.base + path.lstrip("/"), json.dumps(body).encode(),
                                 {"Content-Type": "application/json",
                                  "Authorization": "Bearer " + tok}, method=method)
    return json.load(urllib.request.urlopen(req))


def receiver(stack):
    """The stack's nginx answers 204 to any POST on the receiver port."""
    conf = os.path.join(os.path.realpath(stack.var), "nginx", "conf.d", "bench-receiver.conf")
    with open(conf, "w") as f:
        f.write("server {\n    listen 127.0.0.1:%d;\n    access_log off;\n"
                "    location / { return 204; }\n}\n" % RECEIVER)
    stack.stack("start")  # reloads nginx


def pending(stack):
    return int(stack.psql("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"))


def throughput(stack, tok, uid):
    hooks = [api(stack, tok, "POST", "/api/webhooks",
                 {"url": "http://127.0.0.1:%d/hook/%d" % (RECEIVER, i),
                  "events": ["lead.created"]})["webhook"]["id"] for i in range(ENDPOINTS)]
    t = time.time()
    # One statement: every lead.created event of it, queued for every endpoint, commits at once.
    stack.psql("WITH l AS (INSERT INTO leads (name, created_by, owner_id) SELECT 'Bench ' || g,"
               " %d, %d FROM generate_series(1, %d) g RETURNING *) INSERT INTO events (type,"
               " lead_id, owner_id, actor_id, payload) SELECT 'lead.created', l.id, l.owner_id,"
               " %d, crm_lead_json(l) FROM l" % (uid, uid, EVENTS, uid))
    total = EVENTS * ENDPOINTS
    while pending(stack) > 0 and time.time() - t < 600:
        time.sleep(0.2)
    secs = time.time() - t
    left = pending(stack)
    for h in hooks:
        urllib.request.urlopen(urllib.request.Request(
            stack.base + "api/webhooks/%d" % h, headers={"Authorization": "Bearer " + tok},
            method="DELETE"))
    return {"deliveries": total - left, "secs": secs, "rate": (total - left) / secs, "left": left}


def latency(stack, tok):
    api(stack, tok, "POST", "/api/webhooks",
        {"url": "http://127.0.0.1:%d/latency" % RECEIVER, "events": ["lead.created"]})
    first = int(stack.psql("SELECT coalesce(max(id), 0) FROM events"))
    end = time.time() + SECONDS
    n = 0
    while time.time() < end:
        api(stack, tok, "POST", "/api/leads", {"name": "Latency %d" % n})
        n += 1
        time.sleep(0.05)
    deadline = time.time() + 60
    while pending(stack) > 0 and time.time() < deadline:
        time.sleep(0.2)
    p50, p99, count = stack.psql(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), count(*) FROM (SELECT"
        " extract(epoch FROM d.delivered_at - e.created_at) * 1000 AS ms FROM webhook_deliveries d"
        " JOIN events e ON e.id = d.event_id WHERE d.event_id > %d AND d.status = 'delivered') x"
        % first).split("|")
    return {"p50": float(p50), "p99": float(p99), "count": int(count), "sent": n}


def before_cell(before, key):
    return before.get(key, ("-", "-"))


def main():
    started = time.time()
    subprocess.run(["make", "-s", "-C", ROOT, "all"], check=True)
    stack = Stack("bench-webhooks", PORT, CRM_WORKERS="4", CRM_BCRYPT_COST="10",
                  CRM_WEBHOOK_ALLOW_NETS="127.0.0.0/8")
    stack.start()
    try:
        receiver(stack)
        tok, user = stack.login()
        tp = throughput(stack, tok, user["id"])
        lat = latency(stack, tok)
    finally:
        stack.stop()
    before = results.previous(HEADING)
    what_tp = "deliveries/s, %d endpoints, %d events each" % (ENDPOINTS, EVENTS)
    what_lat = "commit to delivery, one endpoint, 20 leads/s for %d s" % SECONDS
    lines = [
        "- Date: %s; machine: %s cores; load average at the start %.1f" % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            os.cpu_count(), os.getloadavg()[0]),
        "- Command: `make bench-webhooks`; receivers: nginx `return 204` on loopback; one"
        " crm-webhooks; optimised build",
        "",
        "| # | what | req/s | p50 ms | p99 ms | left | before: req/s | before: p99 ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        "| 1 | %s | %.0f | - | - | %d | %s | %s |" % (what_tp, tp["rate"], tp["left"],
                                                     *before_cell(before, what_tp)),
        "| 2 | %s | - | %.1f | %.1f | %d | %s | %s |" % (
            what_lat, lat["p50"], lat["p99"], lat["sent"] - lat["count"],
            *before_cell(before, what_lat)),
        "",
        "- (1): %d deliveries in %.1f s; (2): %d of %d events delivered" % (
            tp["deliveries"], tp["secs"], lat["count"], lat["sent"]),
        "- wall time: %.0f s" % (time.time() - started),
    ]
    results.write_section(HEADING, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
