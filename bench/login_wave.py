"""login_wave.py [BASE_URL]: how long /api/health takes while 30 logins (3 client addresses, 10
each: nginx's per-address burst) run bcrypt at the server's BCRYPT_COST. Prints p50, p99 and max
of /api/health during the wave, and the wave's length. Against `make run`'s stack by default."""
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse
import uuid

BASE = urllib.parse.urlsplit(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080")


def call(method, path, body=None, source="127.0.0.1"):
    conn = http.client.HTTPConnection(BASE.hostname, BASE.port, timeout=60,
                                      source_address=(source, 0))
    conn.request(method, path, json.dumps(body) if body else None,
                 {"Content-Type": "application/json"} if body else {})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status


def main():
    email = "wave-%s@example.com" % uuid.uuid4().hex[:10]
    body = {"email": email, "password": "login-wave-123"}
    net = "127.%d.%d" % (100 + uuid.uuid4().int % 100, uuid.uuid4().int % 250)
    assert call("POST", "/api/auth/register", dict(body, name="Login Wave"), net + ".9") == 201
    statuses, done = [], threading.Event()

    def login(src):
        statuses.append(call("POST", "/api/auth/login", body, src))

    threads = [threading.Thread(target=login, args=("%s.%d" % (net, i % 3 + 1),))
               for i in range(30)]
    start = time.time()
    for t in threads:
        t.start()
    waits = []
    while any(t.is_alive() for t in threads):
        t0 = time.time()
        assert call("GET", "/api/health") == 200
        waits.append((time.time() - t0) * 1000)
        time.sleep(0.05)
    wave = time.time() - start
    waits.sort()
    print("logins: %d (%s), wave %.2f s; /api/health during it: n=%d p50 %.1f ms, p99 %.1f ms, "
          "max %.1f ms" % (len(statuses), ",".join(sorted(set(map(str, statuses)))), wave,
                           len(waits), statistics.median(waits),
                           waits[min(len(waits) - 1, int(len(waits) * 0.99))], waits[-1]))


main()
