"""Auth endpoints: register, login, me, health, and the error table of API.md they can produce."""
import base64
import hashlib
import hmac
import json
import re
import time

from conftest import env_file, login, next_source, register, request, sql, unique_email

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def check_user(u, name, email, role):
    assert set(u) == {"id", "name", "email", "role", "active", "created_at"}
    assert isinstance(u["id"], int) and u["id"] > 0
    assert (u["name"], u["email"], u["role"], u["active"]) == (name, email, role, True)
    assert TS.match(u["created_at"]), u["created_at"]


def check_error(r, status, code):
    assert r.status == status, (r.status, r.text)
    assert r.header("Content-Type") == "application/json; charset=utf-8"
    assert r.json["error"]["code"] == code, r.text
    assert isinstance(r.json["error"]["message"], str) and r.json["error"]["message"]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(payload, alg="HS256", key=None):
    """A token signed with the server's own secret (or key), for expiry and alg tests."""
    key = key if key is not None else env_file()["JWT_SECRET"].encode()
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    sig = b64(hmac.new(key, (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


def test_health_ok_with_request_id():
    r = request("GET", "/api/health")
    assert r.status == 200
    assert r.json == {"status": "ok", "database": "ok"}
    assert re.match(r"^[0-9a-f]{32}$", r.header("X-Request-Id"))
    r = request("GET", "/api/health", headers={"X-Request-Id": "trace-abc.123"})
    assert r.header("X-Request-Id") == "trace-abc.123"
    r = request("GET", "/api/health", headers={"X-Request-Id": "bad id with spaces"})
    assert r.header("X-Request-Id") != "bad id with spaces"


def test_register_creates_sales_executive_and_queues_mail():
    email = unique_email("reg")
    r = register(name="  Asha Rao ", email="  " + email.upper() + " ")
    assert r.status == 201, r.text
    assert set(r.json) == {"token", "user"}
    check_user(r.json["user"], "Asha Rao", email.upper(), "SALES_EXECUTIVE")
    assert "password" not in r.text and "$2b$" not in r.text
    rows = sql("SELECT kind, to_addr, to_name, status IN ('pending', 'sent') FROM mail_outbox"
               " WHERE user_id = :'p1'", r.json["user"]["id"])
    assert rows == [["welcome", email.upper(), "Asha Rao", "t"]]  # crm-mailer may be quick
    me = request("GET", "/api/auth/me", token=r.json["token"])
    assert me.status == 200 and me.json == {"user": r.json["user"]}


def test_register_email_taken_case_insensitive():
    email = unique_email("dup")
    assert register(email=email).status == 201
    r = register(email=email.upper())
    check_error(r, 409, "conflict")
    assert sql("SELECT count(*) FROM users WHERE lower(email) = lower(:'p1')", email) == [["1"]]


def test_register_validation():
    cases = [
        ({"email": unique_email(), "password": "password123"}, "name", "is required"),
        ({"name": "", "email": unique_email(), "password": "password123"}, "name", None),
        ({"name": "x" * 101, "email": unique_email(), "password": "password123"}, "name", None),
        ({"name": "A", "email": "not-an-email", "password": "password123"}, "email", None),
        ({"name": "A", "email": unique_email(), "password": "short"}, "password", None),
        ({"name": "A", "email": unique_email(), "password": "p" * 73}, "password", None),
        ({"name": "A", "email": unique_email(), "password": "password123", "nmae": 1}, "nmae",
         "unknown field"),
        ({"name": 5, "email": unique_email(), "password": "password123"}, "name",
         "must be a string"),
    ]
    for body, field, msg in cases:
        r = request("POST", "/api/auth/register", body)
        check_error(r, 422, "validation_failed")
        assert field in r.json["error"]["fields"], (body, r.text)
        if msg:
            assert r.json["error"]["fields"][field] == msg
        assert r.json["error"]["message"].startswith(field + ": ") or len(
            r.json["error"]["fields"]) > 1


def test_register_role_needs_admin(admin, sales):
    # Public registration cannot choose a role.
    r = register(role="ADMIN")
    check_error(r, 403, "forbidden")
    # Nor can a SALES_EXECUTIVE.
    r = register(role="MANAGER", token=sales[0])
    check_error(r, 403, "forbidden")
    # A bad token with a role is unauthenticated.
    r = register(role="MANAGER", token="nope")
    check_error(r, 401, "unauthenticated")
    # An ADMIN can.
    r = register(role="MANAGER", token=admin["token"])
    assert r.status == 201 and r.json["user"]["role"] == "MANAGER"
    assert sql("SELECT role FROM users WHERE id = :'p1'", r.json["user"]["id"]) == [["MANAGER"]]


def test_bad_bodies():
    r = request("POST", "/api/auth/register", raw=b'{"name":', headers={
        "Content-Type": "application/json"})
    check_error(r, 400, "invalid_json")
    r = request("POST", "/api/auth/register", raw=b'["a"]', headers={
        "Content-Type": "application/json"})
    check_error(r, 400, "invalid_json")
    r = request("POST", "/api/auth/register", raw=b'{"name":"\xff\xfe"}', headers={
        "Content-Type": "application/json"})
    check_error(r, 400, "invalid_json")
    r = request("POST", "/api/auth/login", raw=b"", headers={"Content-Type": "application/json"})
    check_error(r, 400, "invalid_json")
    r = request("POST", "/api/auth/register", raw=b"name=a", headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    check_error(r, 415, "unsupported_media_type")
    big = json.dumps({"name": "x" * 70000}).encode()
    r = request("POST", "/api/auth/register", raw=big, headers={"Content-Type": "application/json"})
    check_error(r, 413, "payload_too_large")


def test_login():
    email = unique_email("login")
    reg = register(email=email, password="correct-horse")
    assert reg.status == 201
    r = login(email.upper(), "correct-horse")
    assert r.status == 200, r.text
    assert r.json["user"] == reg.json["user"]
    head, payload, _ = r.json["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == str(reg.json["user"]["id"]) and claims["role"] == "SALES_EXECUTIVE"
    assert claims["exp"] - claims["iat"] == int(env_file()["JWT_TTL"])
    wrong = login(email, "wrong-horse")
    unknown = login(unique_email("nobody"), "correct-horse")
    check_error(wrong, 401, "invalid_credentials")
    check_error(unknown, 401, "invalid_credentials")
    assert wrong.json == unknown.json
    r = request("POST", "/api/auth/login", {"email": email})
    check_error(r, 422, "validation_failed")


def test_me_refuses_bad_tokens():
    reg = register()
    uid = reg.json["user"]["id"]
    now = int(time.time())
    good = {"sub": str(uid), "role": "SALES_EXECUTIVE", "iat": now, "exp": now + 60}
    assert request("GET", "/api/auth/me", token=forge(good)).status == 200
    bad = [
        None,
        "garbage",
        forge(dict(good, exp=now - 1)),
        forge(good, alg="none"),
        forge(good, alg="HS512"),
        forge(good, key=b"x" * 32),
        reg.json["token"][:-2] + ("AA" if not reg.json["token"].endswith("AA") else "BB"),
        forge(dict(good, sub="999999999")),
    ]
    for token in bad:
        r = request("GET", "/api/auth/me", token=token)
        check_error(r, 401, "unauthenticated")
        assert r.header("WWW-Authenticate") == "Bearer"
    r = request("GET", "/api/auth/me", headers={"Authorization": "Basic abc"})
    check_error(r, 401, "unauthenticated")


def test_unknown_route_and_method():
    check_error(request("GET", "/api/nothing-here"), 404, "not_found")
    check_error(request("GET", "/api/auth/nothing"), 404, "not_found")
    r = request("DELETE", "/api/auth/me")
    check_error(r, 405, "method_not_allowed")
    assert r.header("Allow") == "GET, HEAD"
    r = request("GET", "/api/auth/login")
    check_error(r, 405, "method_not_allowed")
    assert r.header("Allow") == "POST"


def test_rate_limit_login():
    """nginx's limit per client address; each attempt names another e-mail, so that the
    per-account lockout does not come first."""
    statuses = []
    for _ in range(12):
        r = request("POST", "/api/auth/login", {"email": unique_email("x"), "password": "p"},
                    source="127.250.0.1")
        statuses.append(r.status)
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    check_error(r, 429, "rate_limited")
    assert int(r.header("Retry-After")) > 0
    # Another address is not affected.
    assert login(unique_email("x"), "p").status == 401


MAX_FAILURES = 5  # LOGIN_MAX_FAILURES: the test stack keeps the default


def check_locked(r):
    """The account's own 429 (not nginx's per-address one), with a Retry-After; returns it."""
    check_error(r, 429, "rate_limited")
    assert "failed logins" in r.json["error"]["message"], r.text
    assert r.header("X-Request-Id")
    return int(r.header("Retry-After"))


def test_login_failures_lock_the_account_from_any_address():
    """Wrong passwords for one account from several addresses, each under nginx's per-address
    limit: after MAX_FAILURES the account's logins are refused unchecked, the right password
    too, until the lockout (short in the test stack) has passed."""
    env = env_file()
    first, most = int(env["LOGIN_LOCKOUT_SECONDS"]), int(env["LOGIN_LOCKOUT_MAX_SECONDS"])
    email = unique_email("victim")
    assert register(email=email, password="correct-horse").status == 201
    other = unique_email("bystander")
    assert register(email=other, password="correct-horse").status == 201
    sources = [next_source() for _ in range(5)]
    statuses = []
    for i in range(50):
        # The case of the e-mail does not matter: it is one account.
        r = request("POST", "/api/auth/login", {"email": email.upper() if i % 2 else email,
                    "password": "guess-%d" % i}, source=sources[i % 5])
        statuses.append(r.status)
    assert statuses[:MAX_FAILURES] == [401] * MAX_FAILURES
    assert statuses[MAX_FAILURES] == 429 and set(statuses) == {401, 429}, statuses
    wait = check_locked(login(email, "correct-horse"))
    assert 1 <= wait <= most
    # Another account is not affected.
    check_error(login(other, "wrong-horse"), 401, "invalid_credentials")
    assert login(other, "correct-horse").status == 200
    time.sleep(wait)
    assert login(email, "correct-horse").status == 200
    # The success reset the count: the owner may mistype again, and the lockout starts anew.
    statuses = [login(email, "wrong-horse").status for _ in range(MAX_FAILURES - 1)]
    assert statuses == [401] * (MAX_FAILURES - 1)
    assert login(email, "correct-horse").status == 200
    statuses = [login(email, "wrong-horse").status for _ in range(MAX_FAILURES)]
    assert statuses == [401] * MAX_FAILURES
    assert check_locked(login(email, "wrong-horse")) <= first


def test_login_lockout_doubles_up_to_the_maximum():
    env = env_file()
    first, most = int(env["LOGIN_LOCKOUT_SECONDS"]), int(env["LOGIN_LOCKOUT_MAX_SECONDS"])
    assert first < 2 * first <= most  # the test stack's settings show the doubling
    email = unique_email("backoff")
    assert register(email=email, password="correct-horse").status == 201
    for _ in range(MAX_FAILURES):
        check_error(login(email, "wrong-horse"), 401, "invalid_credentials")
    time.sleep(check_locked(login(email, "wrong-horse")))
    # One more failure after the lockout: the next lockout is twice as long.
    start = time.time()
    check_error(login(email, "wrong-horse"), 401, "invalid_credentials")
    wait = check_locked(login(email, "wrong-horse"))
    assert 2 * first - (time.time() - start) <= wait <= 2 * first
    # However many failures there were, a lockout is never longer than the maximum.
    sql("UPDATE login_failures SET failures = 100000, last_failure_at = now()"
        " WHERE email = lower(:'p1')", email)
    wait = check_locked(login(email, "correct-horse"))
    assert most - 1 <= wait <= most


def test_login_lockout_also_for_unknown_emails():
    """An e-mail without an account locks the same way, so answers do not tell which exist."""
    nobody = unique_email("nobody")
    statuses = [login(nobody, "wrong-horse").status for _ in range(MAX_FAILURES)]
    assert statuses == [401] * MAX_FAILURES
    check_locked(login(nobody, "wrong-horse"))
