"""The token epoch (users.token_epoch, the JWT's "ep"): POST /api/auth/password and
POST /api/auth/logout-all end every session and API token of the user at once; a password change
answers a fresh token for the caller's own session. Password reset by e-mail, through the outbox
to the tests' SMTP server: single use, an hour, the same answer for any address, rate limited."""
import email
import email.policy
import hashlib
import re
import time

from conftest import PORT, login, register, request, sql, unique_email
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


# --- password reset by e-mail ---------------------------------------------------------------

RESET_SUBJECT = "Reset your Next-Gen CRM password"


def reset_links(smtp, address, count=1, timeout=20):
    """The links of the reset e-mails address has received, once there are count of them."""
    deadline = time.time() + timeout
    while True:
        mails = [email.message_from_bytes(raw, policy=email.policy.default)
                 for raw in smtp.inbox.to(address)]
        mails = [m for m in mails if m["Subject"] == RESET_SUBJECT]
        if len(mails) >= count or time.time() > deadline:
            break
        time.sleep(0.1)
    assert len(mails) >= count, "no reset e-mail for %s" % address
    links = []
    for m in mails:
        text = m.get_body(("plain",)).get_content()
        found = re.findall(r"(http://localhost:%d/#/reset-password\?token=(crm_rst_[A-Za-z0-9_-]{43}))"
                           % PORT, text)
        assert len(found) == 1, text
        html = m.get_body(("html",)).get_content()
        assert 'href="%s"' % found[0][0] in html
        links.append(found[0][1])
    return links


def ask_reset(address, source=None):
    return request("POST", "/api/auth/password-reset", {"email": address}, source=source)


def confirm(token, password="reset-password-789"):
    return request("POST", "/api/auth/password-reset/confirm",
                   {"token": token, "password": password})


def test_reset_by_e_mail_end_to_end(smtp):
    address, first, user = new_account()
    pat = api_token(first)
    r = ask_reset("  " + address.upper() + " ")
    assert r.status == 202, r.text
    [token] = reset_links(smtp, address)
    # Only the hash of the link's secret is stored: not in the reset, not in the outbox.
    assert sql("SELECT token_hash FROM password_resets WHERE user_id = :'p1'", user["id"]) == \
        [[hashlib.sha256(token.encode()).hexdigest()]]
    assert sql("SELECT count(*) FROM mail_outbox WHERE strpos(mail_outbox::text, :'p1') > 0",
               token[8:]) == [["0"]]
    r = confirm(token)
    assert r.status == 204 and r.body == b"", r.text
    for t in (first, pat):
        check_error(request("GET", "/api/auth/me", token=t), 401, "unauthenticated")
    check_error(login(address, "password123"), 401, "invalid_credentials")
    assert login(address, "reset-password-789").json["user"] == user
    # The link works once.
    r = confirm(token, "another-password-0")
    check_error(r, 422, "validation_failed")
    assert r.json["error"]["fields"] == {"token": "is unknown, used or expired"}
    assert login(address, "reset-password-789").status == 200


def test_a_used_reset_ends_the_users_other_links_and_lockout(smtp):
    address, _, _ = new_account()
    assert ask_reset(address).status == 202
    assert ask_reset(address).status == 202
    older, newer = reset_links(smtp, address, 2)
    for _ in range(5):
        login(address, "wrong-password")
    check_error(login(address, "password123"), 429, "rate_limited")
    assert confirm(newer).status == 204
    check_error(confirm(older), 422, "validation_failed")
    # Whoever holds the mailbox may sign in at once, lockout or not.
    assert login(address, "reset-password-789").status == 200


def test_an_expired_reset_link_is_refused(smtp):
    address, token, user = new_account()
    assert ask_reset(address).status == 202
    [link] = reset_links(smtp, address)
    assert sql("SELECT expires_at - created_at = interval '1 hour' FROM password_resets"
               " WHERE user_id = :'p1'", user["id"]) == [["t"]]
    sql("UPDATE password_resets SET expires_at = now() - interval '1 second'"
        " WHERE user_id = :'p1'", user["id"])
    check_error(confirm(link), 422, "validation_failed")
    assert login(address, "password123").status == 200
    assert request("GET", "/api/auth/me", token=token).status == 200


def test_an_unknown_or_deactivated_address_gets_the_same_answer(admin, smtp):
    known, _, _ = new_account()
    unknown = unique_email("nobody")
    gone, _, gone_user = new_account()
    r = request("PATCH", "/api/users/%d" % gone_user["id"], {"active": False},
                token=admin["token"])
    assert r.status == 200
    answers = [ask_reset(a) for a in (known, unknown, gone)]
    assert {(a.status, a.body) for a in answers} == {(answers[0].status, answers[0].body)}
    assert answers[0].status == 202 and answers[0].json["message"]
    reset_links(smtp, known)
    assert sql("SELECT count(*) FROM mail_outbox WHERE kind = 'password_reset'"
               " AND to_addr IN (:'p1', :'p2')", unknown, gone) == [["0"]]
    assert [m for m in smtp.inbox.to(gone) if b"Reset your" in m] == []


def test_reset_confirmation_validation(smtp):
    address, _, _ = new_account()
    assert ask_reset(address).status == 202
    [link] = reset_links(smtp, address)
    r = confirm(link, "short")
    check_error(r, 422, "validation_failed")
    assert set(r.json["error"]["fields"]) == {"password"}
    for bad in ("crm_rst_" + "A" * 43, "x", link + "x"):
        check_error(confirm(bad), 422, "validation_failed")
    check_error(request("POST", "/api/auth/password-reset", {"email": "not-an-e-mail"}), 422,
                "validation_failed")
    # None of it used the link.
    assert confirm(link).status == 204


def test_reset_requests_are_rate_limited_per_address_and_per_client(smtp):
    for address in (new_account()[0], unique_email("nobody")):
        statuses = [ask_reset(address).status for _ in range(3)]
        assert statuses == [202] * 3
        r = ask_reset(address.upper())
        check_error(r, 429, "rate_limited")
        assert 3500 <= int(r.header("Retry-After")) <= 3600
    assert sql("SELECT count(*) FROM mail_outbox WHERE kind = 'password_reset'"
               " AND to_addr = :'p1'", address) == [["0"]]
    source = "127.250.1.1"
    statuses = [ask_reset(unique_email("spray"), source=source).status for _ in range(20)]
    assert statuses == [202] * 20
    r = ask_reset(unique_email("spray"), source=source)
    check_error(r, 429, "rate_limited")
    assert int(r.header("Retry-After")) >= 1
    assert ask_reset(unique_email("spray")).status == 202
