"""The token epoch (users.token_epoch, the JWT's "ep"): POST /api/auth/password and
POST /api/auth/logout-all end every session and API token of the user at once; a password change
answers a fresh token for the caller's own session."""
import time

from conftest import login, register, request, sql, unique_email
from sse import Stream
from test_auth import check_error, forge


def new_account(password="password123"):
    """(email, token, user) of a fresh SALES_EXECUTIVE."""
    email = unique_email("pw")
    r = register(email=email, password=password)
    assert r.status == 201, r.text
    return email, r.json["token"], r.json["user"]


def api_token(token, scope="write"):
    r = request("POST", "/api/tokens", {"name": "script", "scope": scope}, token=token)
    assert r.status == 201, r.text
    return r.json["secret"]


def new_lead(token):
    r = request("POST", "/api/leads", {"name": "Epoch lead"}, token=token)
    assert r.status == 201, r.text
    return r.json["lead"]["id"]


def refused(token, lead_id):
    """Whether token is refused (401) on /api/auth/me and on the one-statement lead read."""
    me = request("GET", "/api/auth/me", token=token)
    lead = request("GET", "/api/leads/%d" % lead_id, token=token)
    return me.status == 401 and lead.status == 401


def test_password_change_ends_every_other_session_and_token():
    email, first, user = new_account()
    second = login(email, "password123").json["token"]
    pat = api_token(first)
    lead_id = new_lead(first)
    for t in (first, second, pat):
        assert request("GET", "/api/leads/%d" % lead_id, token=t).status == 200
    r = request("POST", "/api/auth/password",
                {"current_password": "password123", "new_password": "new-password-456"},
                token=second)
    assert r.status == 200, r.text
    assert r.json["user"] == user
    fresh = r.json["token"]
    for t in (first, second, pat):
        assert refused(t, lead_id)
    assert request("GET", "/api/auth/me", token=fresh).json == {"user": user}
    assert request("GET", "/api/leads/%d" % lead_id, token=fresh).status == 200
    check_error(login(email, "password123"), 401, "invalid_credentials")
    assert login(email, "new-password-456").status == 200
    assert sql("SELECT token_epoch FROM users WHERE id = :'p1'", user["id"]) == [["1"]]


def test_password_change_with_a_wrong_current_password_changes_nothing():
    email, token, _ = new_account()
    r = request("POST", "/api/auth/password",
                {"current_password": "wrong-password", "new_password": "new-password-456"},
                token=token)
    check_error(r, 422, "validation_failed")
    assert r.json["error"]["fields"] == {"current_password": "is wrong"}
    assert request("GET", "/api/auth/me", token=token).status == 200
    assert login(email, "password123").status == 200


def test_new_password_follows_the_rules_of_registration():
    _, token, _ = new_account()
    for bad in ("short", "x" * 73):
        r = request("POST", "/api/auth/password",
                    {"current_password": "password123", "new_password": bad}, token=token)
        check_error(r, 422, "validation_failed")
        assert set(r.json["error"]["fields"]) == {"new_password"}
    r = request("POST", "/api/auth/password", {"new_password": "long-enough"}, token=token)
    check_error(r, 422, "validation_failed")
    assert "current_password" in r.json["error"]["fields"]
    check_error(request("POST", "/api/auth/password",
                        {"current_password": "password123", "new_password": "long-enough"}),
                401, "unauthenticated")
    assert request("GET", "/api/auth/me", token=token).status == 200


def test_guessing_the_current_password_is_locked_out_like_a_login():
    email, token, _ = new_account()
    statuses = []
    for _ in range(6):
        r = request("POST", "/api/auth/password",
                    {"current_password": "guess", "new_password": "new-password-456"},
                    token=token)
        statuses.append(r.status)
    assert statuses[:5] == [422] * 5, statuses
    check_error(r, 429, "rate_limited")
    assert 1 <= int(r.header("Retry-After")) <= 6
    # Even the right password is not checked while locked out.
    r = request("POST", "/api/auth/password",
                {"current_password": "password123", "new_password": "new-password-456"},
                token=token)
    check_error(r, 429, "rate_limited")
    check_error(login(email, "password123"), 429, "rate_limited")


def test_logout_all_ends_every_session_and_token():
    email, first, user = new_account()
    second = login(email, "password123").json["token"]
    pat = api_token(first)
    lead_id = new_lead(first)
    r = request("POST", "/api/auth/logout-all", token=pat)
    assert r.status == 204 and r.body == b""
    for t in (first, second, pat):
        assert refused(t, lead_id)
    check_error(request("POST", "/api/auth/logout-all", token=first), 401, "unauthenticated")
    again = login(email, "password123")
    assert again.status == 200
    assert request("GET", "/api/auth/me", token=again.json["token"]).json == {"user": user}


def test_a_token_from_before_epochs_is_of_epoch_0():
    """A JWT made before this version has no "ep": it works until the first logout-all."""
    _, token, user = new_account()
    now = int(time.time())
    old = forge({"sub": str(user["id"]), "role": user["role"], "iat": now, "exp": now + 600})
    assert request("GET", "/api/auth/me", token=old).status == 200
    assert request("POST", "/api/auth/logout-all", token=token).status == 204
    check_error(request("GET", "/api/auth/me", token=old), 401, "unauthenticated")
    ahead = forge({"sub": str(user["id"]), "role": user["role"], "iat": now, "exp": now + 600,
                   "ep": 7})
    check_error(request("GET", "/api/auth/me", token=ahead), 401, "unauthenticated")


def test_logout_all_closes_the_users_event_streams():
    _, token, _ = new_account()
    s = Stream(token=token)
    try:
        assert s.status == 200 and not s.wait_closed(0.5)
        assert request("POST", "/api/auth/logout-all", token=token).status == 204
        assert s.wait_closed(5)
        again = Stream(token=token)
        again.wait_closed()
        assert again.status == 401
    finally:
        s.close()
