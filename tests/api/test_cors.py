"""CORS (CORS_ORIGINS): nginx answers a listed origin's preflight and puts the CORS headers on
every answer to it, errors and its own included; an unlisted origin gets none; a real Chromium
page from another origin can fetch and hold an EventSource when listed, and is blocked when not.

scripts/test.sh lists http://localhost:$CRM_CORS_PAGE_PORT, the page server's origin here; the
same server reached as http://127.0.0.1:$CRM_CORS_PAGE_PORT is an origin it does not list."""
import functools
import http.server
import os
import subprocess
import threading

import pytest

from chromium import start
from conftest import HOST, PORT, ROOT, VAR, request
from sse import Stream

PAGE_PORT = int(os.environ.get("CRM_CORS_PAGE_PORT", PORT + 1))
LISTED = "http://localhost:%d" % PAGE_PORT
UNLISTED = "http://127.0.0.1:%d" % PAGE_PORT
EXPOSED = "ETag, X-Request-Id, Retry-After, Location"
ALLOWED_HEADERS = ["Authorization", "Content-Type", "If-Match", "Last-Event-ID", "X-Request-Id"]


def preflight(origin, path="/api/leads", method="PATCH",
              headers="authorization,content-type,if-match"):
    return request("OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers})


def assert_cors(r, origin):
    assert r.header("Access-Control-Allow-Origin") == origin, r.headers
    assert r.header("Access-Control-Expose-Headers") == EXPOSED
    assert r.header("Vary") == "Origin"
    assert r.header("Access-Control-Allow-Credentials") is None


def assert_no_cors(r):
    assert r.header("Access-Control-Allow-Origin") is None, r.headers
    assert r.header("Access-Control-Expose-Headers") is None
    # The setting lists origins, so every answer says it depends on Origin.
    assert r.header("Vary") == "Origin"


def test_preflight_from_a_listed_origin():
    for path, method in [("/api/leads", "POST"), ("/api/leads/1", "PATCH"),
                         ("/api/auth/login", "POST"), ("/api/events", "GET"),
                         ("/api/users/7", "DELETE")]:
        r = preflight(LISTED, path, method)
        assert r.status == 204 and r.body == b"", (path, r.status, r.text)
        assert_cors(r, LISTED)
        assert r.header("Access-Control-Allow-Methods") == "GET, HEAD, POST, PUT, PATCH, DELETE"
        assert [h.strip() for h in r.header("Access-Control-Allow-Headers").split(",")] == \
            ALLOWED_HEADERS
        assert r.header("Access-Control-Max-Age") == "600"
        assert r.header("X-Request-Id")


def test_preflight_from_an_unlisted_origin_gets_nothing():
    for origin in (UNLISTED, "http://evil.example", "http://localhost:%d.evil" % PAGE_PORT,
                   "null"):
        r = preflight(origin)
        # A plain OPTIONS, as without CORS: the program's 405, and no CORS header.
        assert r.status == 405, (origin, r.status)
        assert r.error_code() == "method_not_allowed"
        assert_no_cors(r)


def test_simple_requests(admin):
    r = request("GET", "/api/health", headers={"Origin": LISTED})
    assert r.status == 200
    assert_cors(r, LISTED)
    r = request("GET", "/api/auth/me", token=admin["token"], headers={"Origin": UNLISTED})
    assert r.status == 200
    assert_no_cors(r)
    # No Origin (a server, curl): nothing but Vary.
    r = request("GET", "/api/health")
    assert_no_cors(r)


def test_error_answers_carry_the_headers(admin):
    """A listed origin's page must be able to read the error, whoever answers it."""
    cases = [
        ("GET", "/api/leads", None, None, 401),  # the program: no token
        ("GET", "/api/leads/999999999", admin["token"], None, 404),  # the program: no such lead
        ("GET", "/api/nothing", None, None, 404),  # nginx's own 404
        ("GET", "/api/leads?access_token=x", None, None, 400),  # nginx: token in the query
        ("POST", "/api/leads", admin["token"], b"x" * 70000, 413),  # nginx: body too large
        ("DELETE", "/api/health", None, None, 405),  # the program: no such method
    ]
    for method, path, token, raw, status in cases:
        r = request(method, path, token=token, raw=raw,
                    headers={"Origin": LISTED, "Content-Type": "application/json"})
        assert r.status == status, (path, r.status, r.text)
        assert r.error_code(), r.text
        assert_cors(r, LISTED)
        r = request(method, path, token=token, raw=raw,
                    headers={"Origin": UNLISTED, "Content-Type": "application/json"})
        assert r.status == status
        assert_no_cors(r)


def test_event_stream_from_a_listed_origin(admin):
    s = Stream(query_token=admin["token"], headers={"Origin": LISTED})
    try:
        assert s.status == 200
        assert s.headers["access-control-allow-origin"] == LISTED
        assert s.headers["vary"] == "Origin"
    finally:
        s.close()


def test_nothing_changes_without_origins():
    """With CORS_ORIGINS empty, crmctl nginx-settings gives nginx no origin and no Vary, so the
    headers above are empty, which nginx leaves out; the shipped default is exactly that."""
    env = dict(os.environ, CRM_ENV_FILE=os.path.join(VAR, "crm.env"), CORS_ORIGINS="",
               METRICS_ALLOW="")
    out = subprocess.run([os.path.join(VAR, "bin", "crmctl"), "nginx-settings"], env=env,
                         capture_output=True, text=True, check=True).stdout
    with open(os.path.join(ROOT, "nginx", "crm-settings.conf")) as f:
        assert out == f.read()
    assert "$http_origin;" not in out and 'default "";\n}\nmap $http_origin $crm_cors_vary {\n' \
        '    default "";\n}' in out
    # The stack's own settings, from its env file, list the page's origin.
    env.pop("CORS_ORIGINS")
    out = subprocess.run([os.path.join(VAR, "bin", "crmctl"), "nginx-settings"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert '"%s" $http_origin;' % LISTED in out and 'default "Origin";' in out
    # A value nginx could misread is refused, with the reason.
    env["CORS_ORIGINS"] = 'https://a.example"; }'
    r = subprocess.run([os.path.join(VAR, "bin", "crmctl"), "nginx-settings"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 1 and "CORS_ORIGINS" in r.stderr and r.stdout == ""
    # Behind a load balancer, nginx takes the client from the X-Forwarded-For it adds (the
    # cluster test, tests/cluster, shows the rate limits then count each client apart).
    env.pop("CORS_ORIGINS")
    assert "set_real_ip_from" not in out
    env["TRUSTED_PROXIES"] = "10.77.0.2, 10.78.0.0/16"
    out = subprocess.run([os.path.join(VAR, "bin", "crmctl"), "nginx-settings"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out.endswith("set_real_ip_from 10.77.0.2;\nset_real_ip_from 10.78.0.0/16;\n"
                        "real_ip_header X-Forwarded-For;\nreal_ip_recursive on;\n")


PROBE = """
const [api, token, done] = arguments;
const out = {};
(async () => {
    try {
        const r = await fetch(api + "/api/leads", {method: "POST", headers: {
            "Authorization": "Bearer " + token, "Content-Type": "application/json",
            "X-Request-Id": "cors-probe"}, body: JSON.stringify({name: "From another origin"})});
        out.fetch = r.status;
        out.location = r.headers.get("Location");
        out.rid = r.headers.get("X-Request-Id");
        out.lead = (await r.json()).lead.id;
    } catch (e) {
        out.fetch = "blocked";
    }
    const es = new EventSource(api + "/api/events?access_token=" + encodeURIComponent(token));
    const finish = (what) => { out.es = what; es.close(); done(out); };
    es.onopen = async () => {
        if (out.fetch !== 201) return finish("open");
        es.addEventListener("lead.updated", (e) => {
            if (JSON.parse(e.data).lead_id === out.lead) finish("event");
        });
        await fetch(api + "/api/leads/" + out.lead, {method: "PATCH", headers: {
            "Authorization": "Bearer " + token, "Content-Type": "application/json",
            "If-Match": '"1"'}, body: JSON.stringify({notes: "seen across origins"})});
    };
    es.onerror = () => finish("error, readyState " + es.readyState);
})();
"""


@pytest.fixture(scope="module")
def page_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("cors-page")
    (root / "index.html").write_text('<!doctype html><meta charset="utf-8"><title>other</title>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", PAGE_PORT), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    driver = start()
    yield driver
    driver.quit()


def probe(browser, origin, token):
    browser.get(origin + "/index.html")
    browser.set_script_timeout(20)
    return browser.execute_async_script(PROBE, "http://%s:%d" % (HOST, PORT), token)


def test_browser_from_a_listed_origin(page_server, browser, admin):
    out = probe(browser, LISTED, admin["token"])
    # The preflighted POST, its exposed headers, then the stream's event of the PATCH after it.
    assert out["fetch"] == 201, out
    assert out["rid"] == "cors-probe" and out["location"] == "/api/leads/%d" % out["lead"]
    assert out["es"] == "event", out


def test_browser_from_an_unlisted_origin_is_blocked(page_server, browser, admin):
    before = request("GET", "/api/leads?limit=1", token=admin["token"]).json["page"]["total"]
    out = probe(browser, UNLISTED, admin["token"])
    assert out == {"fetch": "blocked", "es": "error, readyState 2"}, out
    # The preflight was refused, so the POST was never sent.
    assert request("GET", "/api/leads?limit=1", token=admin["token"]).json["page"]["total"] == \
        before
