"""docs/openapi.yaml is the contract: it lints, it names every route the programs have and no
other, nginx serves it as it is, the reference page renders it, a client generated from it works,
and the response check every test runs (conftest.request) refuses what the spec does not allow."""
import json
import os
import re
import subprocess

import yaml

import contract
from conftest import HOST, PORT, ROOT, VAR, register, request

CONTRACT_DIR = os.path.join(ROOT, "tests", "contract")
# The npm tools make no calls home during the tests.
NPM_ENV = dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true",
               NO_UPDATE_NOTIFIER="1")


def npm(*args, env=None):
    return subprocess.run(["npm", "--silent", *args], cwd=CONTRACT_DIR, capture_output=True,
                          text=True, timeout=180, env=env or NPM_ENV)


def test_spec_passes_redocly_lint():
    """Redocly CLI's recommended rules (tests/contract/redocly.yaml), no errors, no warnings but
    the ones judged in .redocly.lint-ignore.yaml."""
    r = npm("run", "lint")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Your API description is valid" in r.stdout + r.stderr, r.stdout + r.stderr


def crmctl_routes():
    """(METHOD, /api/path/{param}) of every route in the programs' routing tables."""
    out = subprocess.run([os.path.join(VAR, "bin", "crmctl"), "routes"], capture_output=True,
                         text=True, check=True).stdout
    routes = set()
    for line in out.splitlines():
        method, path = line.split(" ")
        routes.add((method, re.sub(r":([a-z_]+)", r"{\1}", path)))
    return routes


def test_every_route_is_in_the_spec_and_every_spec_path_is_routed():
    routes = crmctl_routes()
    assert len(routes) >= 19 and ("GET", "/api/events") in routes
    static = {(m.upper(), p) for p, item in contract.SPEC["paths"].items()
              for m, op in item.items() if isinstance(op, dict) and op.get("x-static")}
    assert static == {("GET", "/api/openapi.yaml"), ("GET", "/api/openapi.json")}
    documented = contract.operations() - static
    assert routes - documented == set(), "routed but not in docs/openapi.yaml"
    assert documented - routes == set(), "in docs/openapi.yaml but not routed"


def test_every_operation_says_its_roles():
    for (method, path) in contract.operations():
        op = contract.SPEC["paths"][path][method.lower()]
        roles = op.get("x-roles")
        assert isinstance(roles, list), (method, path)
        assert set(roles) <= {"ADMIN", "MANAGER", "SALES_EXECUTIVE"}
        said = "Roles: " + (", ".join(roles) if roles else "public")
        assert op["description"].startswith(said), (method, path, said)
        # Public operations need no token; the others need the bearer token.
        assert (op.get("security") == []) == (roles == []) or path == "/api/auth/register"


def test_served_spec_is_docs_openapi_yaml_byte_for_byte():
    r = request("GET", "/api/openapi.yaml")
    assert r.status == 200
    assert r.header("content-type") == "application/yaml"
    assert r.header("x-request-id")
    with open(contract.SPEC_PATH, "rb") as f:
        assert r.body == f.read()
    j = request("GET", "/api/openapi.json")
    assert j.status == 200 and j.header("content-type").startswith("application/json")
    assert j.json == contract.SPEC
    for answer in (r, j):  # the site's security headers, as on every other answer
        assert answer.header("x-content-type-options") == "nosniff"
        assert answer.header("x-frame-options") == "DENY"


def test_reference_page_renders_the_spec_without_a_cdn():
    page = request("GET", "/docs/")
    assert page.status == 200 and "text/html" in page.header("content-type")
    assert "/api/openapi.json" in page.text or "docs.js" in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(not re.match(r"(https?:)?//", a) for a in assets), assets
    for a in assets:
        r = request("GET", a if a.startswith("/") else "/docs/" + a)
        assert r.status == 200, a
        assert not re.search(r"https?://(?!127\.0\.0\.1|localhost)", r.text), a


def me(token):
    r = request("GET", "/api/auth/me", token=token)
    assert r.status == 200
    return r


def test_response_check_refuses_what_the_spec_does_not_allow(admin):
    """The check every request goes through fails on an undocumented status, a missing required
    member and an extra member, and passes the real answer."""
    r = me(admin["token"])
    assert contract.check("GET", "/api/auth/me", r.status, r.headers, r.body) == []
    body = json.loads(r.body)
    # A status the route cannot give.
    assert contract.check("GET", "/api/auth/me", 409, r.headers, r.body)
    # A required member missing.
    missing = json.loads(r.body)
    del missing["user"]["email"]
    problems = contract.check("GET", "/api/auth/me", 200, r.headers, json.dumps(missing).encode())
    assert any("email" in p for p in problems), problems
    # A member the spec does not have (User has additionalProperties: false).
    extra = dict(body, user=dict(body["user"], password_hash="x"))
    problems = contract.check("GET", "/api/auth/me", 200, r.headers, json.dumps(extra).encode())
    assert any("password_hash" in p for p in problems), problems
    # The header every answer carries.
    no_id = {k: v for k, v in r.headers.items() if k != "x-request-id"}
    assert contract.check("GET", "/api/auth/me", 200, no_id, r.body)
    # An error code the status does not have.
    wrong = json.dumps({"error": {"code": "forbidden", "message": "no"}}).encode()
    assert contract.check("GET", "/api/auth/me", 401, r.headers, wrong)
    # A path outside the spec answering anything but an error.
    assert contract.check("GET", "/api/nowhere", 200, r.headers, b"{}")


def test_unknown_paths_and_methods_conform():
    """The answers outside the operations: 404 for no such path, 405 with Allow for another
    method. request() holds them to the spec; here they are also checked directly."""
    r = request("GET", "/api/no-such-thing")
    assert r.status == 404 and r.error_code() == "not_found"
    r = request("PUT", "/api/leads")
    assert r.status == 405 and "GET" in r.header("allow") and "POST" in r.header("allow")
    assert contract.check("PUT", "/api/leads", r.status, r.headers, r.body) == []


def test_client_generated_from_the_spec_works(admin):
    """openapi-typescript types + openapi-fetch, type-checked by tsc, against the stack: register,
    log in, create a lead, list leads. What it reports is then read back through the API."""
    r = npm("run", "client", env=dict(NPM_ENV, CRM_URL="http://%s:%d" % (HOST, PORT)))
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["role"] == "SALES_EXECUTIVE" and out["owner"] == out["user"]
    assert out["location"] == "/api/leads/%d" % out["lead"]
    assert out["lead"] in out["listed"] and out["total"] >= 1
    lead = request("GET", "/api/leads/%d" % out["lead"], token=admin["token"])
    assert lead.status == 200
    assert lead.json["lead"]["name"] == "Initech upgrade" and lead.json["lead"]["value"] == 1200.5


def test_generated_types_follow_the_spec():
    """The client's types come from the spec: a call the spec does not have fails to compile."""
    bin_dir = os.path.join(CONTRACT_DIR, "node_modules", ".bin")
    bad = os.path.join(CONTRACT_DIR, "build", "bad.ts")
    os.makedirs(os.path.dirname(bad), exist_ok=True)
    types = os.path.join(CONTRACT_DIR, "build", "api.d.ts")
    # The client test made them from this spec already, unless it ran apart.
    if not os.path.exists(types) or os.path.getmtime(types) < os.path.getmtime(contract.SPEC_PATH):
        subprocess.run([os.path.join(bin_dir, "openapi-typescript"), contract.SPEC_PATH, "-o",
                        types], cwd=CONTRACT_DIR, capture_output=True, check=True, timeout=120,
                       env=NPM_ENV)
    with open(bad, "w") as f:
        f.write('import createClient from "openapi-fetch";\n'
                'import type { paths } from "./api.js";\n'
                'const c = createClient<paths>({ baseUrl: "http://x" });\n'
                'await c.POST("/api/leads", { body: { title: "no such member" } });\n')
    try:
        r = subprocess.run([os.path.join(bin_dir, "tsc"),
                            "--noEmit", "--strict", "--target", "es2022", "--module", "nodenext",
                            "--moduleResolution", "nodenext", "--skipLibCheck", bad],
                           cwd=CONTRACT_DIR, capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(bad)
    assert r.returncode != 0 and "title" in r.stdout, r.stdout + r.stderr
