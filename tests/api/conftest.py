"""Black-box API tests: helpers to talk HTTP to the stack that scripts/test.sh started."""
import http.client
import itertools
import json
import os
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest
from aiosmtpd.controller import Controller

import contract

HOST = "127.0.0.1"
PORT = int(os.environ.get("CRM_PORT", "18080"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VAR = os.path.realpath(os.environ.get("CRM_VAR", os.path.join(ROOT, "var", "test")))

# nginx limits login/register per client address; each request comes from its own loopback
# address (Linux routes all of 127/8 to lo) so tests do not throttle each other.
_sources = itertools.count(1)


def next_source():
    n = next(_sources)
    return "127.%d.%d.%d" % (10 + n // 62500 % 200, n // 250 % 250, n % 250 + 1)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self.text = body.decode("utf-8", "replace")
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        return self.headers.get(name.lower())

    def error_code(self):
        return (self.json or {}).get("error", {}).get("code")


def request(method, path, body=None, token=None, headers=None, raw=None, source=None,
            barrier=None, addr=None):
    """Sends one request and returns a Response. body is JSON-encoded; raw is sent as is. With a
    threading.Barrier, the connection is made first and the request sent when all have arrived.
    addr: (host, port) of another nginx than the test stack's (the cluster test's hosts)."""
    hdrs = {}
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    if token:
        hdrs["Authorization"] = "Bearer " + token
    hdrs.update(headers or {})
    host, port = addr or (HOST, PORT)
    conn = http.client.HTTPConnection(host, port, timeout=30,
                                      source_address=(source or next_source(), 0))
    try:
        if barrier is not None:
            conn.connect()
            barrier.wait()
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        resp = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()
    # Every answer is held to docs/openapi.yaml; the test it came in fails if it does not conform.
    contract.record("%s %s -> %d" % (method, path, resp.status),
                    contract.check(method, path, resp.status, resp.headers, resp.body))
    return resp


@pytest.fixture(autouse=True)
def conforms_to_contract():
    """Fails a test whose requests or event streams got anything docs/openapi.yaml does not
    allow (from any thread)."""
    contract.take_violations()
    yield
    seen = contract.take_violations()
    assert not seen, "responses that break docs/openapi.yaml:\n" + "\n".join(seen)


def fcgi(path, params, body=b""):
    """One FastCGI request (the records nginx sends: params, then body) to the worker listening
    on the unix socket path, past nginx; returns the response's head and body, read as they
    come."""
    def record(rtype, content):
        return struct.pack(">BBHHBx", 1, rtype, 1, len(content), 0) + content

    def pair(k, v):
        k, v = k.encode(), v.encode()
        return bytes([len(k)]) + (struct.pack(">I", len(v) | 1 << 31) if len(v) > 127
                                  else bytes([len(v)])) + k + v

    stdin = b"".join(record(5, body[i:i + 65535]) for i in range(0, len(body), 65535))
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(60)
    sock.connect(path)
    sock.sendall(record(1, struct.pack(">HB5x", 1, 0)) +
                 record(4, b"".join(pair(k, v) for k, v in params.items())) + record(4, b"") +
                 stdin + record(5, b""))
    out, buf = [], b""
    while True:
        while len(buf) >= 8:
            _, rtype, _, clen, plen = struct.unpack(">BBHHB", buf[:7])
            if len(buf) < 8 + clen + plen:
                break
            if rtype == 6:
                out.append(buf[8:8 + clen])
            elif rtype == 3:
                sock.close()
                head, _, body = b"".join(out).partition(b"\r\n\r\n")
                return head.decode(), body
            buf = buf[8 + clen + plen:]
        chunk = sock.recv(65536)
        assert chunk, "the worker closed the connection before the end of the request"
        buf += chunk


def env_file():
    values = {}
    with open(os.path.join(VAR, "crm.env")) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                values[k] = v
    return values


def sql(query, *args):
    """Runs a query with psql (values passed as psql variables, quoted by psql); returns rows."""
    cmd = ["psql", env_file()["DATABASE_URL"], "-X", "-q", "-t", "-A", "-F", "|",
           "-v", "ON_ERROR_STOP=1"]
    for i, a in enumerate(args, 1):
        cmd += ["-v", "p%d=%s" % (i, a)]
    out = subprocess.run(cmd, input=query, capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


CRMCTL = os.path.join(VAR, "bin", "crmctl")
ENV = dict(os.environ, CRM_ENV_FILE=os.path.join(VAR, "crm.env"))


def crmctl(*args, stdin=""):
    return subprocess.run([CRMCTL, *args], input=stdin, capture_output=True, text=True, env=ENV)


def kept_plan(statement, types, values, calls=6):
    """EXPLAIN of the plan PostgreSQL uses for a statement of lib/db.c (crmctl statement NAME),
    prepared with parameters of types and run calls times with values first, as a pool's
    connection runs it: after 5 calls PostgreSQL keeps one plan made without the values (shown
    with $n in it) unless a plan for the values looks cheaper. Sequential scans off: the test
    database is small enough for them to win where an index serves a large one."""
    text = crmctl("statement", statement)
    assert text.returncode == 0, text.stderr
    script = "SET enable_seqscan = off;\n\\o /dev/null\nPREPARE p (%s) AS %s;\n%s\\o\n" \
             "EXPLAIN EXECUTE p(%s);\n" % (types, text.stdout.strip(),
                                             "EXECUTE p(%s);\n" % values * calls, values)
    return "\n".join(row[0] for row in sql(script))


def own_json(table, rows):
    """What the one-row function (crm_lead_json, crm_activity_json, crm_task_json) gives for
    each row's id, looking its users up by id; the pages join them instead (lib/db.c
    LEAD_USERS, ACTIVITY_ROWS, TASK_USERS)."""
    got = sql("SELECT id, crm_%s_json(t) FROM %s t WHERE id = ANY (:'p1'::bigint[])"
              % ({"leads": "lead", "activities": "activity", "tasks": "task"}[table], table),
              "{%s}" % ",".join(str(r["id"]) for r in rows))
    want = {int(i): json.loads(j) for i, j in got}
    return [want[r["id"]] for r in rows]


def unique_email(prefix="user"):
    return "%s-%s@example.com" % (prefix, uuid.uuid4().hex[:12])


def register(name="Test User", email=None, password="password123", token=None, addr=None,
             source=None, **extra):
    body = {"name": name, "email": email or unique_email(), "password": password}
    body.update(extra)
    return request("POST", "/api/auth/register", body, token=token, addr=addr, source=source)


def login(email, password):
    return request("POST", "/api/auth/login", {"email": email, "password": password})


@pytest.fixture(scope="session")
def admin():
    """Token and user of the first ADMIN that make run created (var/test/admin.txt)."""
    creds = dict(line.strip().split("=", 1) for line in open(os.path.join(VAR, "admin.txt")))
    r = login(creds["email"], creds["password"])
    assert r.status == 200, r.text
    return r.json


def make_user(admin_token, role):
    """A new user of role, made by the ADMIN; returns (token, user, password)."""
    r = register(token=admin_token, role=role)
    assert r.status == 201, r.text
    return r.json["token"], r.json["user"]


@pytest.fixture
def sales(admin):
    return make_user(admin["token"], "SALES_EXECUTIVE")


@pytest.fixture
def manager(admin):
    return make_user(admin["token"], "MANAGER")


# --- a real SMTP server on loopback (aiosmtpd), where the stack's crm-mailer delivers ---------

SMTP_PORT = int(os.environ.get("CRM_MAIL_PORT", "18025"))


class Inbox:
    """Records every message the server accepts; refuses recipients starting with 'reject-'."""

    def __init__(self):
        self.messages = []  # (recipient, raw bytes)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject-"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append((rcpt, envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    def to(self, address):
        with self.lock:
            return [raw for rcpt, raw in self.messages if rcpt == address]

    def wait_for(self, address, count=1, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.to(address)) >= count:
                break
            time.sleep(0.1)
        return self.to(address)


class SmtpServer:
    def __init__(self):
        self.inbox = Inbox()
        self.controller = None

    def start(self):
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=SMTP_PORT)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture(scope="session", autouse=True)
def smtp():
    """Up for the whole run, so every registration's welcome e-mail has somewhere to go."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()
