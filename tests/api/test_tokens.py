"""Personal API tokens: POST/GET /api/tokens, DELETE /api/tokens/:id, and their use as bearer
tokens: scopes, roles, revocation and expiry acting at once, the secret kept only hashed."""
import hashlib
import re
import uuid

from conftest import make_user, register, request, sql
from sse import Stream
from test_auth import check_error

SECRET = re.compile(r"^crm_pat_[A-Za-z0-9_-]{43}$")


def make_token(token, scope="write", name="script", **extra):
    r = request("POST", "/api/tokens", dict({"name": name, "scope": scope}, **extra), token=token)
    assert r.status == 201, r.text
    return r.json["api_token"], r.json["secret"]


def listed(token, query=""):
    r = request("GET", "/api/tokens" + query, token=token)
    assert r.status == 200, r.text
    return r.json


def test_the_secret_is_shown_once_and_kept_only_as_its_hash(sales):
    token, user = sales
    meta, secret = make_token(token, name="  nightly export ", expires_at="2099-01-01T00:00:00Z")
    assert SECRET.match(secret), secret
    assert meta["name"] == "nightly export" and meta["scope"] == "write"
    assert meta["user_id"] == user["id"] and meta["hint"] == secret[:12]
    assert meta["expires_at"] == "2099-01-01T00:00:00.000Z" and meta["last_used_at"] is None
    rows = sql("SELECT token_hash, t::text FROM api_tokens t WHERE id = :'p1'", meta["id"])
    assert rows[0][0] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in rows[0][1]
    page = listed(token)
    assert page["data"] == [meta] and secret not in str(page)


def test_a_read_token_reads_and_may_not_write(admin, sales):
    token, user = sales
    _, secret = make_token(token, scope="read")
    assert request("GET", "/api/auth/me", token=secret).json == {"user": user}
    assert request("GET", "/api/leads", token=secret).status == 200
    assert request("HEAD", "/api/leads", token=secret).status == 200
    check_error(request("POST", "/api/leads", {"name": "No"}, token=secret), 403, "forbidden")
    check_error(request("POST", "/api/auth/logout-all", token=secret), 403, "forbidden")
    mine, _ = make_token(token)
    check_error(request("DELETE", "/api/tokens/%d" % mine["id"], token=secret), 403, "forbidden")
    assert request("GET", "/api/auth/me", token=token).status == 200


def test_a_write_token_does_what_the_role_allows_and_no_more(sales):
    token, user = sales
    _, secret = make_token(token)
    r = request("POST", "/api/leads", {"name": "By script"}, token=secret)
    assert r.status == 201, r.text
    assert r.json["lead"]["owner"]["id"] == user["id"]
    lead = request("GET", "/api/leads/%d" % r.json["lead"]["id"], token=secret)
    assert lead.status == 200 and lead.json["lead"]["name"] == "By script"
    check_error(request("GET", "/api/users", token=secret), 403, "forbidden")
    check_error(request("GET", "/api/dashboard/stats", token=secret), 403, "forbidden")
    # A leaked token cannot make more tokens.
    check_error(request("POST", "/api/tokens", {"name": "more", "scope": "write"}, token=secret),
                403, "forbidden")


def test_revocation_acts_at_once(sales, manager):
    token, user = sales
    meta, secret = make_token(token)
    other, other_secret = make_token(manager[0])
    assert request("GET", "/api/auth/me", token=secret).status == 200
    # Someone else's token is not there for a non-ADMIN.
    check_error(request("DELETE", "/api/tokens/%d" % other["id"], token=token), 404, "not_found")
    assert request("GET", "/api/auth/me", token=other_secret).status == 200
    r = request("DELETE", "/api/tokens/%d" % meta["id"], token=token)
    assert r.status == 204 and r.body == b""
    check_error(request("GET", "/api/auth/me", token=secret), 401, "unauthenticated")
    check_error(request("GET", "/api/leads", token=secret), 401, "unauthenticated")
    check_error(request("DELETE", "/api/tokens/%d" % meta["id"], token=token), 404, "not_found")
    check_error(request("DELETE", "/api/tokens/abc", token=token), 404, "not_found")
    assert meta["id"] not in [t["id"] for t in listed(token)["data"]]


def test_an_admin_lists_and_revokes_anyones(admin, sales):
    token, user = sales
    meta, secret = make_token(token)
    check_error(request("GET", "/api/tokens?user_id=%d" % admin["user"]["id"], token=token),
                403, "forbidden")
    assert [t["id"] for t in listed(token, "?user_id=%d" % user["id"])["data"]] == [meta["id"]]
    check_error(request("GET", "/api/tokens?user_id=x", token=token), 400, "invalid_query")
    assert listed(admin["token"], "?user_id=%d" % user["id"])["data"] == [meta]
    everyone = listed(admin["token"], "?limit=100")
    assert everyone["page"]["total"] >= 1
    r = request("DELETE", "/api/tokens/%d" % meta["id"], token=admin["token"])
    assert r.status == 204
    check_error(request("GET", "/api/auth/me", token=secret), 401, "unauthenticated")


def test_an_expired_token_is_refused(sales):
    token, _ = sales
    meta, secret = make_token(token, expires_at="2099-01-01T00:00:00Z")
    assert request("GET", "/api/auth/me", token=secret).status == 200
    sql("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = :'p1'",
        meta["id"])
    check_error(request("GET", "/api/auth/me", token=secret), 401, "unauthenticated")
    r = request("POST", "/api/tokens",
                {"name": "late", "scope": "read", "expires_at": "2001-01-01T00:00:00Z"},
                token=token)
    check_error(r, 422, "validation_failed")
    assert r.json["error"]["fields"] == {"expires_at": "must be in the future"}


def test_last_used_at_is_kept_at_most_once_a_minute(sales):
    token, _ = sales
    meta, secret = make_token(token)
    assert request("GET", "/api/auth/me", token=secret).status == 200
    first = [t for t in listed(token)["data"] if t["id"] == meta["id"]][0]["last_used_at"]
    assert first is not None
    assert request("GET", "/api/auth/me", token=secret).status == 200
    assert [t for t in listed(token)["data"] if t["id"] == meta["id"]][0]["last_used_at"] == first
    sql("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = :'p1'",
        meta["id"])
    assert request("GET", "/api/auth/me", token=secret).status == 200
    later = [t for t in listed(token)["data"] if t["id"] == meta["id"]][0]["last_used_at"]
    assert later >= first


def test_a_deactivated_users_tokens_are_refused(admin):
    token, user = make_user(admin["token"], "MANAGER")
    _, secret = make_token(token)
    r = request("PATCH", "/api/users/%d" % user["id"], {"active": False}, token=admin["token"])
    assert r.status == 200
    check_error(request("GET", "/api/auth/me", token=secret), 401, "unauthenticated")


def test_unknown_and_malformed_api_tokens_are_refused():
    for bad in ("crm_pat_" + "A" * 43, "crm_pat_", "crm_pat_" + "x" * 200,
                "crm_pat_" + uuid.uuid4().hex):
        check_error(request("GET", "/api/auth/me", token=bad), 401, "unauthenticated")


def test_token_validation(sales):
    token, _ = sales
    cases = [
        ({"scope": "read"}, "name"),
        ({"name": "", "scope": "read"}, "name"),
        ({"name": "x" * 101, "scope": "read"}, "name"),
        ({"name": "a"}, "scope"),
        ({"name": "a", "scope": "admin"}, "scope"),
        ({"name": "a", "scope": "read", "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "a", "scope": "read", "owner": 1}, "owner"),
    ]
    for body, field in cases:
        r = request("POST", "/api/tokens", body, token=token)
        check_error(r, 422, "validation_failed")
        assert field in r.json["error"]["fields"], (body, r.text)
    check_error(request("POST", "/api/tokens", {"name": "a", "scope": "read"}), 401,
                "unauthenticated")
    assert listed(token)["data"] == []


def test_an_api_token_opens_an_event_stream_until_revoked(sales):
    token, _ = sales
    meta, secret = make_token(token, scope="read")
    for s in (Stream(token=secret), Stream(query_token=secret)):
        try:
            assert s.status == 200 and not s.wait_closed(0.3)
        finally:
            s.close()
    s = Stream(token=secret)
    try:
        assert s.status == 200 and not s.wait_closed(0.3)
        assert request("DELETE", "/api/tokens/%d" % meta["id"], token=token).status == 204
        assert s.wait_closed(5)
        again = Stream(token=secret)
        again.wait_closed()
        assert again.status == 401
    finally:
        s.close()


def test_a_new_user_has_no_tokens():
    r = register()
    assert r.status == 201
    assert listed(r.json["token"]) == {"data": [], "page": {"limit": 20, "offset": 0, "total": 0}}
