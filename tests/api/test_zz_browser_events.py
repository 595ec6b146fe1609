"""A browser's plain EventSource survives crm-events being away, for any length of time, and
resumes with Last-Event-ID (defect 13), and no log holds its token meanwhile (defect 14). The
HTML standard's EventSource retries after a network error or a 200 text/event-stream answer
that ends, and gives up for good on any other status. Runs late: it takes crm-events and the
database away."""
import glob
import os
import subprocess
import time

import pytest

from chromium import start
from conftest import HOST, PORT, ROOT, VAR, request

PAGE = """<!doctype html><meta charset="utf-8"><title>EventSource probe</title>
<script type="module" src="es-probe.js"></script>"""
SCRIPT = """
const token = new URLSearchParams(location.hash.slice(1)).get("token");
window.__created = [];
window.__errors = 0;
window.__es = new EventSource("/api/events?access_token=" + encodeURIComponent(token));
window.__es.addEventListener("lead.created", (e) => {
    window.__created.push({id: e.lastEventId, lead: JSON.parse(e.data).lead_id});
});
window.__es.onerror = () => { window.__errors += 1; };
"""


def stack(*args):
    subprocess.run([os.path.join(ROOT, "scripts", "stack.sh"), *args], check=True,
                   capture_output=True, timeout=120)


def wait_for(browser, script, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = browser.execute_script("return " + script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("%s: not within %s s (%s)" % (what, timeout, script))


def new_lead(token, name):
    r = request("POST", "/api/leads", {"name": name}, token=token)
    assert r.status == 201, r.text
    return r.json["lead"]["id"]


@pytest.fixture
def page(admin):
    web = os.path.join(VAR, "web")
    for name, text in (("es-probe.html", PAGE), ("es-probe.js", SCRIPT)):
        with open(os.path.join(web, name), "w") as f:
            f.write(text)
    browser = start()
    try:
        browser.get("http://%s:%d/es-probe.html#token=%s" % (HOST, PORT, admin["token"]))
        wait_for(browser, "window.__es && window.__es.readyState === 1", 15, "stream open")
        yield browser
    finally:
        browser.quit()
        stack("release", "crm-events")
        for name in ("es-probe.html", "es-probe.js"):
            os.unlink(os.path.join(web, name))


def check_no_token_in_logs(token):
    signature = token.rsplit(".", 1)[1].encode()
    for path in glob.glob(os.path.join(VAR, "log", "*")):
        with open(path, "rb") as f:
            assert signature not in f.read(), path


def test_event_source_outlives_crm_events_outage(page, admin):
    before = new_lead(admin["token"], "before the outage")
    wait_for(page, "window.__created.some(e => e.lead === %d)" % before, 10, "live event")
    stack("hold", "crm-events")  # stopped, and kept down
    wait_for(page, "window.__errors > 0", 10, "the browser sees the stream end")
    during = new_lead(admin["token"], "during the outage")
    time.sleep(8)  # several of the browser's retries meet nginx with crm-events away
    assert page.execute_script("return window.__es.readyState") != 2, "EventSource gave up"
    stack("release", "crm-events")
    wait_for(page, "window.__created.some(e => e.lead === %d)" % during, 20,
             "the event of the outage, by resuming")
    ids = [int(e["id"]) for e in page.execute_script("return window.__created")]
    assert ids == sorted(set(ids)), ids  # in order, none twice
    check_no_token_in_logs(admin["token"])


def test_event_source_outlives_crm_events_starting_without_database(page, admin):
    """crm-events starting while PostgreSQL is down cannot open a stream; what it answers must
    still be something a browser retries."""
    stack("hold", "crm-events")
    stack("pg-stop")
    try:
        stack("release", "crm-events")
        time.sleep(14)  # past crm-events' 10 s wait for the database
        assert page.execute_script("return window.__es.readyState") != 2, "EventSource gave up"
    finally:
        stack("pg-start")
    deadline = time.time() + 20
    while time.time() < deadline and request("GET", "/api/health").status != 200:
        time.sleep(0.2)
    after = new_lead(admin["token"], "after the database came back")
    wait_for(page, "window.__created.some(e => e.lead === %d)" % after, 25, "resumed stream")
    check_no_token_in_logs(admin["token"])
