"""User administration and RBAC: who may list and change users, and that changes act at once."""
import threading
import time

import pytest

from conftest import make_user, register, request, sql
from test_auth import forge


def error_code(r):
    return (r.json or {}).get("error", {}).get("code")


def test_list_users_roles(admin, manager, sales):
    for token in (admin["token"], manager[0]):
        r = request("GET", "/api/users?limit=2&offset=0", token=token)
        assert r.status == 200, r.text
        total = int(sql("SELECT count(*) FROM users")[0][0])
        assert r.json["page"] == {"limit": 2, "offset": 0, "total": total}
        assert len(r.json["data"]) == 2
        assert all("password_hash" not in u for u in r.json["data"])
    r = request("GET", "/api/users", token=sales[0])
    assert r.status == 403 and error_code(r) == "forbidden"
    r = request("GET", "/api/users")
    assert r.status == 401 and error_code(r) == "unauthenticated"


def test_list_users_pages_are_disjoint_and_complete(admin):
    for _ in range(3):
        make_user(admin["token"], "SALES_EXECUTIVE")
    total = int(sql("SELECT count(*) FROM users")[0][0])
    seen = []
    for offset in range(0, total, 2):
        r = request("GET", "/api/users?limit=2&offset=%d" % offset, token=admin["token"])
        assert r.status == 200
        seen += [u["id"] for u in r.json["data"]]
    assert len(seen) == total == len(set(seen))
    assert seen == sorted(seen)


def test_list_users_bad_query(admin):
    for q in ("limit=abc", "limit=0", "limit=101", "offset=-1", "offset=1x", "limit=%zz"):
        r = request("GET", "/api/users?" + q, token=admin["token"])
        assert r.status == 400 and error_code(r) == "invalid_query", q


def test_patch_user_role_acts_at_once(admin):
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    assert request("GET", "/api/users", token=token).status == 403
    r = request("PATCH", "/api/users/%d" % user["id"], {"role": "MANAGER", "name": "Promoted"},
                token=admin["token"])
    assert r.status == 200, r.text
    assert r.json["user"]["role"] == "MANAGER" and r.json["user"]["name"] == "Promoted"
    # The same token, issued while SALES_EXECUTIVE, now carries the new role.
    assert request("GET", "/api/users", token=token).status == 200
    me = request("GET", "/api/auth/me", token=token)
    assert me.json["user"]["role"] == "MANAGER"


def test_deactivation_revokes_tokens_at_once(admin):
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    assert request("GET", "/api/auth/me", token=token).status == 200
    r = request("PATCH", "/api/users/%d" % user["id"], {"active": False}, token=admin["token"])
    assert r.status == 200 and r.json["user"]["active"] is False
    r = request("GET", "/api/auth/me", token=token)
    assert r.status == 401 and error_code(r) == "unauthenticated"
    r = request("PATCH", "/api/users/%d" % user["id"], {"active": True}, token=admin["token"])
    assert r.status == 200
    assert request("GET", "/api/auth/me", token=token).status == 200


def test_deactivated_user_cannot_log_in(admin):
    r = register(token=admin["token"], role="SALES_EXECUTIVE", password="password123")
    uid, email = r.json["user"]["id"], r.json["user"]["email"]
    request("PATCH", "/api/users/%d" % uid, {"active": False}, token=admin["token"])
    r = request("POST", "/api/auth/login", {"email": email, "password": "password123"})
    assert r.status == 401 and error_code(r) == "unauthenticated"


def test_patch_user_rbac_and_errors(admin, manager, sales):
    target = sales[1]["id"]
    for token in (manager[0], sales[0]):
        r = request("PATCH", "/api/users/%d" % target, {"name": "X"}, token=token)
        assert r.status == 403 and error_code(r) == "forbidden"
    r = request("PATCH", "/api/users/%d" % target, {"name": "X"})
    assert r.status == 401
    for path in ("/api/users/999999999", "/api/users/abc", "/api/users/0"):
        r = request("PATCH", path, {"name": "X"}, token=admin["token"])
        assert r.status == 404 and error_code(r) == "not_found", path
    for body, field in (({"role": "KING"}, "role"), ({"active": "no"}, "active"),
                        ({"email": "a@b.co"}, "email"), ({"name": None}, "name")):
        r = request("PATCH", "/api/users/%d" % target, body, token=admin["token"])
        assert r.status == 422 and field in r.json["error"]["fields"], r.text
    assert sql("SELECT name, role FROM users WHERE id = :'p1'", target) == [
        [sales[1]["name"], "SALES_EXECUTIVE"]]


def test_admin_cannot_lock_itself_out(admin):
    me = admin["user"]["id"]
    for body in ({"role": "MANAGER"}, {"active": False}):
        r = request("PATCH", "/api/users/%d" % me, body, token=admin["token"])
        assert r.status == 422, r.text
    assert sql("SELECT role, active FROM users WHERE id = :'p1'", me) == [["ADMIN", "t"]]


def at_once(*calls):
    """Sends every call (method, path, body, token) at the same moment, each from its own thread
    and connection; returns the responses in order."""
    barrier = threading.Barrier(len(calls))
    out = [None] * len(calls)

    def send(i, method, path, body, token):
        out[i] = request(method, path, body, token=token, barrier=barrier)

    threads = [threading.Thread(target=send, args=(i, *c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


@pytest.mark.parametrize("change,field,late", [({"role": "MANAGER"}, "role", "forbidden"),
                                               ({"active": False}, "active", "unauthenticated")])
def test_two_admins_demoting_each_other_at_once_leave_one(admin, change, field, late):
    """The last-admin rule holds under concurrency: of two ADMINs demoting (or deactivating) each
    other at the same moment, one wins and the other is refused, round after round."""
    first = admin["user"]["id"]
    token, second = make_user(admin["token"], "ADMIN")
    second = second["id"]
    side = {first: admin["token"], second: token}
    # The two are the only active ADMINs meanwhile (other tests make more).
    others = sql("UPDATE users SET active = false WHERE role = 'ADMIN' AND active"
                 " AND id NOT IN (:'p1', :'p2') RETURNING id", first, second)
    try:
        for _ in range(10):
            rs = at_once(("PATCH", "/api/users/%d" % second, change, side[first]),
                         ("PATCH", "/api/users/%d" % first, change, side[second]))
            assert sorted(r.status for r in rs) in ([200, 401], [200, 403], [200, 422]), \
                [r.text for r in rs]
            won, lost = (first, second) if rs[0].status == 200 else (second, first)
            refused = rs[1] if rs[0].status == 200 else rs[0]
            # 422 with this rule's field; or, when the loser was already demoted (403) or
            # deactivated (401) by the time its request was authenticated, that refusal.
            if refused.status == 422:
                assert refused.error_code() == "validation_failed"
                assert field in refused.json["error"]["fields"], refused.text
            else:
                assert refused.error_code() == late, refused.text
            assert sql("SELECT id FROM users WHERE role = 'ADMIN' AND active") == [[str(won)]]
            r = request("PATCH", "/api/users/%d" % lost, {"role": "ADMIN", "active": True},
                        token=side[won])
            assert r.status == 200, r.text
    finally:
        sql("UPDATE users SET role = 'ADMIN', active = true WHERE id = :'p1';"
            " UPDATE users SET active = false WHERE id = :'p2';"
            " UPDATE users SET active = true WHERE id = ANY (string_to_array(:'p3', ',')::bigint[])",
            first, second, ",".join(r[0] for r in others))


DASHBOARD_READS = ["/api/dashboard/stats", "/api/dashboard/leads-by-status",
                   "/api/dashboard/top-sales?limit=3",
                   "/api/dashboard/top-sales?from=2024-01-01&to=2024-12-31"]


def test_the_dashboard_rechecks_the_caller_at_once(admin):
    """Each dashboard route reads the caller in its one statement: a demotion, a deactivation,
    the end of every session and a deleted account act on the very next read, and a bad query
    is a 400 only for a caller who may read the dashboard at all."""
    tok = admin["token"]
    token, user = make_user(tok, "MANAGER")
    bad = "/api/dashboard/top-sales?limit=0"

    def statuses(t):
        return [request("GET", p, token=t).status for p in DASHBOARD_READS + [bad]]

    assert statuses(token) == [200] * 4 + [400]
    assert request("PATCH", "/api/users/%d" % user["id"], {"role": "SALES_EXECUTIVE"},
                   token=tok).status == 200
    assert statuses(token) == [403] * 5
    assert error_code(request("GET", DASHBOARD_READS[0], token=token)) == "forbidden"
    request("PATCH", "/api/users/%d" % user["id"], {"role": "MANAGER"}, token=tok)
    assert statuses(token) == [200] * 4 + [400]
    request("PATCH", "/api/users/%d" % user["id"], {"active": False}, token=tok)
    assert statuses(token) == [401] * 5
    request("PATCH", "/api/users/%d" % user["id"], {"active": True}, token=tok)
    assert statuses(token) == [200] * 4 + [400]
    assert request("POST", "/api/auth/logout-all", token=token).status == 204
    assert statuses(token) == [401] * 5
    now = int(time.time())
    gone = forge({"sub": "999999999999", "role": "ADMIN", "iat": now, "exp": now + 60})
    assert statuses(gone) == [401] * 5
    assert statuses(None) == [401] * 5


def test_reading_a_lead_rechecks_the_caller_at_once(admin):
    """GET /api/leads/:id reads the caller with the lead in one statement: a role change,
    a deactivation and a deleted account act on the very next read, as on every other route."""
    tok = admin["token"]
    token, user = make_user(tok, "MANAGER")
    others = request("POST", "/api/leads", {"name": "Not hers"}, token=tok).json["lead"]
    path = "/api/leads/%d" % others["id"]
    r = request("GET", path, token=token)
    assert r.status == 200 and r.json["lead"]["id"] == others["id"] and r.header("ETag") == '"1"'
    # Demoted: another's lead is no longer hers to see.
    assert request("PATCH", "/api/users/%d" % user["id"], {"role": "SALES_EXECUTIVE"},
                   token=tok).status == 200
    r = request("GET", path, token=token)
    assert r.status == 404 and error_code(r) == "not_found"
    own = request("POST", "/api/leads", {"name": "Hers"}, token=token).json["lead"]
    assert request("GET", "/api/leads/%d" % own["id"], token=token).status == 200
    # Deactivated: refused, whichever lead and whatever the id looks like.
    request("PATCH", "/api/users/%d" % user["id"], {"active": False}, token=tok)
    for p in ("/api/leads/%d" % own["id"], path, "/api/leads/999999999", "/api/leads/0"):
        r = request("GET", p, token=token)
        assert r.status == 401 and error_code(r) == "unauthenticated", p
    request("PATCH", "/api/users/%d" % user["id"], {"active": True}, token=tok)
    assert request("GET", "/api/leads/%d" % own["id"], token=token).status == 200
    # Gone: a valid token for a user id that does not exist.
    now = int(time.time())
    gone = forge({"sub": "999999999999", "role": "ADMIN", "iat": now, "exp": now + 60})
    r = request("GET", path, token=gone)
    assert r.status == 401 and error_code(r) == "unauthenticated"
    request("DELETE", "/api/leads/%d" % own["id"], token=tok)
    for bad in ("", "x.y.z", token[:-2] + ("AA" if not token.endswith("AA") else "BB")):
        assert request("GET", path, token=bad or None).status == 401
    assert request("GET", "/api/leads/999999999", token=tok).status == 404
    request("DELETE", path, token=tok)
