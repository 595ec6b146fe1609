"""HEAD works wherever GET does (RFC 9110 9.3.2): the same status and headers, and no body."""
import http.client
import uuid

from conftest import HOST, PORT, make_user, next_source, request

# Headers that differ between two answers to the same request, or that only a body has: a HEAD
# has no body to frame, so nginx sends neither Transfer-Encoding nor (unless it knows it)
# Content-Length for it.
VARYING = {"date", "transfer-encoding", "content-length"}


def exchange(requests):
    """Sends (method, path, token) one after another on one keep-alive connection, with one
    X-Request-Id, and returns each answer as (status, headers, body). A body sent after a HEAD
    answer would be read as the next answer's status line, so the next request checks that none
    came; a HEAD that holds its response open makes the next request time out."""
    conn = http.client.HTTPConnection(HOST, PORT, timeout=10, source_address=(next_source(), 0))
    rid = uuid.uuid4().hex
    out = []
    try:
        for method, path, token in requests:
            headers = {"X-Request-Id": rid}
            if token:
                headers["Authorization"] = "Bearer " + token
            conn.request(method, path, headers=headers)
            r = conn.getresponse()
            out.append((r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()))
        return out
    finally:
        conn.close()


def check_head_like_get(path, token=None):
    """HEAD path answers as GET path does, without a body. Returns the GET answer."""
    (hs, hh, hb), (gs, gh, gb) = exchange([("HEAD", path, token), ("GET", path, token)])
    assert (hs, hb) == (gs, b""), (path, hs, gs, hb)
    assert gb != b"", path
    strip = lambda h: {k: v for k, v in h.items() if k not in VARYING}
    assert strip(hh) == strip(gh), path
    assert hh.get("content-length") in (None, gh.get("content-length")), path
    return gs, gh


def test_head_health():
    status, headers = check_head_like_get("/api/health")
    assert status == 200 and headers["content-type"] == "application/json; charset=utf-8"


def test_head_authenticated_routes(admin):
    lead = request("POST", "/api/leads", {"name": "Head lead"}, token=admin["token"]).json["lead"]
    for path in ("/api/leads", "/api/leads/%d" % lead["id"],
                 "/api/leads/%d/activities" % lead["id"], "/api/users", "/api/auth/me",
                 "/api/dashboard/stats", "/api/dashboard/leads-by-status"):
        status, _ = check_head_like_get(path, admin["token"])
        assert status == 200, path


def test_head_errors_as_get(admin):
    sales_token, _ = make_user(admin["token"], "SALES_EXECUTIVE")
    for path, token, status in (("/api/leads/999999999", admin["token"], 404),
                                ("/api/leads", None, 401), ("/api/dashboard/stats", None, 401),
                                ("/api/users", sales_token, 403), ("/api/nothing", None, 404)):
        got, _ = check_head_like_get(path, token)
        assert got == status, path
    _, headers = check_head_like_get("/api/leads", None)
    assert headers["www-authenticate"] == "Bearer"


def test_allow_lists_head_with_get(admin):
    (s1, h1, b1), (s2, h2, _), (s3, h3, _), (s4, h4, _), (s5, h5, _) = exchange([
        ("HEAD", "/api/auth/login", None), ("GET", "/api/auth/login", None),
        ("DELETE", "/api/auth/me", admin["token"]), ("PUT", "/api/leads/1", admin["token"]),
        ("HEAD", "/api/users/1", admin["token"])])
    # A POST-only route: HEAD is refused as GET is, and only POST is allowed.
    assert (s1, s2, b1) == (405, 405, b"")
    assert h1["allow"] == h2["allow"] == "POST"
    assert s3 == 405 and h3["allow"] == "GET, HEAD"
    assert s4 == 405 and set(h4["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}
    assert s5 == 405 and h5["allow"] == "PATCH"


def test_head_events(admin):
    """The stream's head after authentication, then the end: the next request on the
    connection is answered, which it could not be while a stream held it."""
    (hs, hh, hb), (gs, _, _) = exchange([("HEAD", "/api/events", admin["token"]),
                                          ("GET", "/api/health", None)])
    assert (hs, hb, gs) == (200, b"", 200)
    assert hh["content-type"] == "text/event-stream" and hh["cache-control"] == "no-cache"
    assert hh["x-request-id"]
    (hs, hh, hb), (ps, ph, _) = exchange([("HEAD", "/api/events", None),
                                          ("POST", "/api/events", admin["token"])])
    assert (hs, hb) == (401, b"") and hh["www-authenticate"] == "Bearer"
    assert hh["content-type"] == "application/json; charset=utf-8"
    assert ps == 405 and ph["allow"] == "GET, HEAD"
