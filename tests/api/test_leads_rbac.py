"""The RBAC matrix of the lead and dashboard routes: every route x every role x own/foreign row."""
import pytest

from conftest import make_user, request, sql


@pytest.fixture(scope="module")
def people(admin):
    """A caller of each role, plus another sales executive whose leads are 'foreign'."""
    p = {"ADMIN": (admin["token"], admin["user"])}
    for role in ("MANAGER", "SALES_EXECUTIVE"):
        p[role] = make_user(admin["token"], role)
    p["OTHER"] = make_user(admin["token"], "SALES_EXECUTIVE")
    return p


def new_lead(people, owner_key):
    token = people["ADMIN"][0]
    r = request("POST", "/api/leads", {"name": "RBAC lead", "owner_id": people[owner_key][1]["id"]},
                token=token)
    assert r.status == 201, r.text
    return r.json["lead"]


def lead_state(lead_id):
    """What a refused write must leave alone: the row, its timeline, its events."""
    return (sql("SELECT status, owner_id, notes, version FROM leads WHERE id = :'p1'", lead_id),
            sql("SELECT count(*) FROM activities WHERE lead_id = :'p1'", lead_id),
            sql("SELECT count(*) FROM events WHERE lead_id = :'p1'", lead_id))


# (method, path, body); {id} is the lead, {other} the other sales executive's id.
ROUTES = {
    "get": ("GET", "/api/leads/{id}", None),
    "edit": ("PATCH", "/api/leads/{id}", {"notes": "edited"}),
    "status": ("PATCH", "/api/leads/{id}/status", {"status": "QUALIFIED"}),
    "activity": ("POST", "/api/leads/{id}/activity", {"type": "CALL", "content": "called"}),
    "timeline": ("GET", "/api/leads/{id}/activities", None),
    "assign": ("PATCH", "/api/leads/{id}/assign", {"owner_id": "{other}"}),
    "delete": ("DELETE", "/api/leads/{id}", None),
}
OK = {"get": 200, "edit": 200, "status": 200, "activity": 201, "timeline": 200, "assign": 200,
      "delete": 204}
# role -> route -> (own row, foreign row); None = the route's success status.
MATRIX = {
    "ADMIN": {r: (None, None) for r in ROUTES},
    "MANAGER": {r: (None, None) for r in ROUTES},
    "SALES_EXECUTIVE": {
        "get": (None, 404), "edit": (None, 404), "status": (None, 404), "activity": (None, 404),
        "timeline": (None, 404), "assign": (403, 403), "delete": (403, 403),
    },
}
CASES = [(role, route, own) for role in MATRIX for route in ROUTES for own in (True, False)]


def fill(value, lead, people):
    if isinstance(value, dict):
        return {k: fill(v, lead, people) for k, v in value.items()}
    if value == "{other}":
        return people["OTHER"][1]["id"]
    return value


@pytest.mark.parametrize("role,route,own", CASES,
                         ids=["%s-%s-%s" % (r, t, "own" if o else "foreign") for r, t, o in CASES])
def test_matrix(people, role, route, own):
    lead = new_lead(people, role if own else "OTHER")
    method, path, body = ROUTES[route]
    if route == "assign" and not own:
        body = {"owner_id": people[role][1]["id"]}  # a real change: to the caller
    before = lead_state(lead["id"])
    r = request(method, path.format(id=lead["id"]), fill(body, lead, people),
                token=people[role][0])
    expected = MATRIX[role][route][0 if own else 1] or OK[route]
    assert r.status == expected, r.text
    if expected >= 400:
        assert r.error_code() == {403: "forbidden", 404: "not_found"}[expected]
        assert lead_state(lead["id"]) == before, "a refused request changed the lead"
    elif method != "GET":
        assert lead_state(lead["id"]) != before


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_no_token_is_401(people, route):
    lead = new_lead(people, "OTHER")
    method, path, body = ROUTES[route]
    before = lead_state(lead["id"])
    r = request(method, path.format(id=lead["id"]), fill(body, lead, people))
    assert r.status == 401 and r.error_code() == "unauthenticated"
    assert r.header("WWW-Authenticate") == "Bearer"
    assert lead_state(lead["id"]) == before


@pytest.mark.parametrize("role", ["ADMIN", "MANAGER", "SALES_EXECUTIVE"])
def test_every_role_creates_and_lists(people, role):
    token, user = people[role]
    r = request("POST", "/api/leads", {"name": "mine"}, token=token)
    assert r.status == 201
    expected_owner = user["id"] if role == "SALES_EXECUTIVE" else None
    assert (r.json["lead"]["owner"] or {}).get("id") == expected_owner
    assert r.json["lead"]["created_by"] == {"id": user["id"], "name": user["name"]}
    assert r.header("Location") == "/api/leads/%d" % r.json["lead"]["id"]
    r = request("GET", "/api/leads?limit=100", token=token)
    assert r.status == 200


def test_sales_list_is_only_its_own(people):
    token, user = people["SALES_EXECUTIVE"]
    new_lead(people, "SALES_EXECUTIVE")
    new_lead(people, "OTHER")
    r = request("GET", "/api/leads?limit=100", token=token)
    assert r.status == 200
    owned = int(sql("SELECT count(*) FROM leads WHERE owner_id = :'p1'", user["id"])[0][0])
    assert r.json["page"]["total"] == owned > 0
    assert {l["owner"]["id"] for l in r.json["data"]} == {user["id"]}
    # Asking for another owner's leads finds nothing rather than leaking them.
    r = request("GET", "/api/leads?owner_id=%d" % people["OTHER"][1]["id"], token=token)
    assert r.status == 200 and r.json["page"]["total"] == 0 and r.json["data"] == []


def test_sales_cannot_create_for_someone_else(people):
    r = request("POST", "/api/leads", {"name": "x", "owner_id": people["OTHER"][1]["id"]},
                token=people["SALES_EXECUTIVE"][0])
    assert r.status == 403 and r.error_code() == "forbidden"
    r = request("POST", "/api/leads",
                {"name": "x", "owner_id": people["SALES_EXECUTIVE"][1]["id"]},
                token=people["SALES_EXECUTIVE"][0])
    assert r.status == 201


DASHBOARD = ["/api/dashboard/stats", "/api/dashboard/leads-by-status", "/api/dashboard/top-sales"]


@pytest.mark.parametrize("path", DASHBOARD)
@pytest.mark.parametrize("role,expected", [("ADMIN", 200), ("MANAGER", 200),
                                           ("SALES_EXECUTIVE", 403), (None, 401)])
def test_dashboard_roles(people, path, role, expected):
    r = request("GET", path, token=people[role][0] if role else None)
    assert r.status == expected, r.text
    if expected != 200:
        assert r.error_code() == ("forbidden" if expected == 403 else "unauthenticated")
