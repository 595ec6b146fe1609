"""nginx's own answers keep the API's contract (defects 7 and 9): every answer under /api/,
nginx's refusals included, is a JSON error with a request id of ours (or the client's, when it
is sane) and the security headers; no token in the query reaches a log."""
import glob
import json
import os
import re
import socket
import stat

import pytest

from conftest import HOST, PORT, VAR, request

SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
            "referrer-policy": "no-referrer"}


def raw_http(data, timeout=10):
    """Sends bytes as they are (http.client refuses what these tests need to send)."""
    with socket.create_connection((HOST, PORT), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), v.strip())
    return status, headers, body


def check_contract(status, headers, body, code):
    assert headers.get("content-type", "").startswith("application/json"), (status, body)
    err = json.loads(body)["error"]
    assert err["code"] == code and err["message"], err
    assert re.match(r"^[A-Za-z0-9._-]{1,64}$", headers.get("x-request-id", "")), headers
    for k, v in SECURITY.items():
        assert headers.get(k) == v, (status, k, headers)


@pytest.mark.parametrize("data,status,code", [
    (b"GET /api/%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400, "bad_request"),
    (b"GET /api/health HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "bad_request"),  # no Host
    (b"TRACE /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405,
     "method_not_allowed"),
    (b"GET /api/leads?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 414,
     "uri_too_long"),
    (b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 +
     b"\r\nConnection: close\r\n\r\n", 400, "bad_request"),
    (b"GET /api/nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "not_found"),
], ids=["nul-in-path", "no-host", "trace", "uri-too-long", "header-too-large", "no-route"])
def test_nginx_refusals_are_json_with_request_id(data, status, code):
    got, headers, body = raw_http(data)
    assert got == status, body
    check_contract(got, headers, body, code)


def test_client_request_id_is_bounded_on_nginx_answers():
    """413 (and every answer of nginx's own) never echoes an insane X-Request-Id."""
    long_id = "r" * 2000
    big = b"x" * 70000
    data = (b"POST /api/leads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Request-Id: " + long_id.encode() + b"\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % len(big)) + big
    status, headers, body = raw_http(data)
    assert status == 413
    check_contract(status, headers, body, "payload_too_large")
    assert headers["x-request-id"] != long_id
    r = request("GET", "/api/nothing", headers={"X-Request-Id": "bad id; <script>"})
    assert r.status == 404 and r.header("X-Request-Id") != "bad id; <script>"
    # A sane one is kept, so a client can follow its request through our logs.
    r = request("GET", "/api/nothing", headers={"X-Request-Id": "trace-42.a_b"})
    assert r.header("X-Request-Id") == "trace-42.a_b"
    for k, v in SECURITY.items():
        assert r.header(k) == v


def test_rate_limited_answer_has_the_security_headers():
    src = "127.201.0.1"
    statuses = [request("POST", "/api/auth/login", {"email": "x@example.com", "password": "x"},
                        source=src) for _ in range(12)]
    limited = [r for r in statuses if r.status == 429]
    assert limited, [r.status for r in statuses]
    r = limited[0]
    assert r.error_code() == "rate_limited" and r.header("Retry-After")
    for k, v in SECURITY.items():
        assert r.header(k) == v


def test_token_in_query_refused_off_events_and_never_logged(admin):
    """?access_token= works on /api/events only (EventSource cannot send headers); elsewhere it is
    refused before anything runs, and no log has the token (defect 7)."""
    token = admin["token"]
    for path in ("/api/leads?access_token=%s" % token, "/api/auth/me?x=1&access_token=%s" % token,
                 "/api/nothing?access_token=%s" % token):
        r = request("GET", path)
        assert r.status == 400, (path, r.text)
        assert r.error_code() == "invalid_query" and "access_token" in r.json["error"]["message"]
        assert re.match(r"^[A-Za-z0-9._-]{1,64}$", r.header("X-Request-Id"))
    signature = token.rsplit(".", 1)[1]
    for path in glob.glob(os.path.join(VAR, "log", "*")):
        with open(path, "rb") as f:
            assert signature.encode() not in f.read(), path


def test_logs_not_readable_by_others():
    mode = os.stat(os.path.join(VAR, "log")).st_mode
    assert mode & (stat.S_IROTH | stat.S_IXOTH) == 0, oct(mode)
