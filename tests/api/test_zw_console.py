"""The web console (web/) in a real browser against the real stack: Debian's chromium, headless,
driven through chromium-driver by selenium. Any JavaScript error or CSP violation in a browser's
console fails the test that caused it. Screenshots go to <test var>/screens/."""
import gzip
import http.client
import os
import re
import time
import uuid

import pytest
import chromium
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import (HOST, PORT, ROOT, VAR, login, make_user, register, request, sql,
                      unique_email)

BASE = "http://%s:%d/" % (HOST, PORT)
SCREENS = os.path.join(VAR, "screens")
XSS_NAME = '<img src=x onerror="window.__xss=1">'
XSS_NOTE = "<script>window.__xss=2</script> and <b>bold</b>"


class Browser:
    """One headless Chromium with its own session (sessionStorage is per browser)."""

    def __init__(self):
        self.driver = chromium.start(1440, 1000)

    def quit(self):
        self.driver.quit()

    # --- what the page shows -------------------------------------------------------------

    def console_errors(self):
        """The console's errors since the last call: JavaScript errors, CSP violations, the
        app's console.error. A failed request (the API answering 4xx) is logged by the browser
        as a 'network' error; those are the API's business, not a script error."""
        return [e for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE" and e.get("source") != "network"]

    def wait(self, cond, timeout=5, what="condition"):
        try:
            # Live events re-render lists under the test: a vanished element means look again.
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(
                lambda d: cond())
        except TimeoutException:
            raise AssertionError("timed out waiting for %s (at %s)" % (what, self.driver.current_url))

    def find(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def one(self, css, timeout=5):
        return self.wait(lambda: (self.find(css) or [None])[0], timeout, css)

    def text(self, css, timeout=5):
        def get():
            els = self.find(css)
            return (els[0].text,) if els else None
        return self.wait(get, timeout, css)[0]

    def wait_text(self, css, text, timeout=5):
        """Waits until an element matching css contains text; returns that element."""
        def hit():
            for el in self.find(css):
                try:
                    if text in el.text:
                        return el
                except StaleElementReferenceException:
                    pass  # re-rendered under us: look again
            return None
        return self.wait(hit, timeout, "%r in %s" % (text, css))

    def click(self, css, timeout=5):
        """Clicks what css finds, finding it again if a re-render replaced it meanwhile."""
        def attempt():
            els = self.find(css)
            if not els:
                return None
            els[0].click()
            return True
        self.wait(attempt, timeout, "to click " + css)

    def hash(self):
        return self.driver.execute_script("return location.hash")

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    # --- doing things ----------------------------------------------------------------------

    def open(self, hash_):
        """Loads the console at #hash_ afresh (a real page load, not a hash change)."""
        self.driver.get(BASE + "#" + hash_)
        self.driver.refresh()
        self.wait(lambda: self.js("return !document.getElementById('main').hasAttribute('aria-busy')"
                                  " && !!document.querySelector('main h1')"), 10, "the screen")

    def use_session(self, token, user, hash_="/leads"):
        """Signs in by handing the console a token (as its sign-in screen would keep it), so tests
        other than the sign-in test do not spend nginx's 10 logins a minute from 127.0.0.1."""
        self.driver.get(BASE + "favicon.svg")
        self.js("sessionStorage.setItem('crm.session', JSON.stringify({token: arguments[0], user: arguments[1]}))",
                token, user)
        self.open(hash_)
        self.wait(lambda: self.js("return document.getElementById('conn').dataset.state") == "live",
                  5, "the live stream")

    def fill(self, form_css, **values):
        for name, value in values.items():
            el = self.one("%s [name=%s]" % (form_css, name))
            if el.tag_name == "select":
                Select(el).select_by_value(value)
            else:
                el.clear()
                el.send_keys(value)

    def screenshot(self, name):
        os.makedirs(SCREENS, exist_ok=True)
        for width in (360, 1440):
            self.driver.set_window_size(width, 1000)
            time.sleep(0.2)  # let the layout settle
            self.driver.save_screenshot(os.path.join(SCREENS, "%s-%d.png" % (name, width)))
        self.driver.set_window_size(1440, 1000)


@pytest.fixture(scope="module")
def browsers():
    """Browsers made on demand and closed at the end of the module."""
    made = []

    def make():
        b = Browser()
        made.append(b)
        return b
    make.made = made
    yield make
    for b in made:
        b.quit()


@pytest.fixture(autouse=True)
def no_console_errors(browsers):
    """Every test ends with no JavaScript error in any browser (their logs are read after it)."""
    yield
    errors = [e for b in browsers.made for e in b.console_errors()]
    assert errors == [], errors


@pytest.fixture(scope="module")
def admin_browser(browsers, admin):
    b = browsers()
    b.use_session(admin["token"], admin["user"])
    return b


@pytest.fixture(scope="module")
def sales_user(admin):
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    return token, user


@pytest.fixture(scope="module")
def sales_browser(browsers, sales_user):
    b = browsers()
    b.use_session(*sales_user)
    return b


def new_lead(token, **fields):
    body = {"name": "Console lead " + uuid.uuid4().hex[:8]}
    body.update(fields)
    r = request("POST", "/api/leads", body, token=token)
    assert r.status == 201, r.text
    return r.json["lead"]


# --- serving ---------------------------------------------------------------------------------

def get(path, headers=None):
    conn = http.client.HTTPConnection(HOST, PORT, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_console_is_served_with_csp_gzip_and_validators():
    status, h, body = get("/")
    assert status == 200 and b'<script type="module" src="/js/app.js">' in body
    csp = h["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert h["x-content-type-options"] == "nosniff" and h["cache-control"] == "no-cache"
    # No inline script or style, no on* attribute: the CSP would refuse them anyway.
    assert not re.search(rb"<script(?![^>]*\bsrc=)|<style|\son[a-z]+=|style=", body)
    status, h, body = get("/js/app.js", {"Accept-Encoding": "gzip"})
    assert status == 200 and h["content-encoding"] == "gzip"
    assert h["content-type"].startswith("application/javascript")
    assert b"import" in gzip.decompress(body)
    status, _, body = get("/js/app.js", {"If-None-Match": h["etag"]})
    assert status == 304 and body == b""
    status, _, _ = get("/css/app.css", {"If-Modified-Since": h["last-modified"]})
    assert status == 304


def test_scripts_and_styles_stay_under_150_kib():
    total = sum(os.path.getsize(os.path.join(d, f))
                for d, _, names in os.walk(os.path.join(ROOT, "web"))
                for f in names if f.endswith((".js", ".css")))
    assert 0 < total < 150 * 1024, total


# --- signing in and out ----------------------------------------------------------------------

def test_sign_in_wrong_password_then_sign_in_and_out(browsers, admin):
    email = unique_email("console")
    r = register(name="Console Casey", email=email, password="password123")
    assert r.status == 201, r.text
    b = browsers()
    b.open("/leads")
    assert b.hash() == "#/login"  # no session: the sign-in screen
    b.fill("form", email=email, password="wrong-password")
    b.click("form button[type=submit]")
    b.wait_text("form .alert.error", "e-mail or password")
    b.fill("form", password="password123")
    b.click("form button[type=submit]")
    b.wait_text("main h1", "Leads")
    assert "Console Casey" in b.text("#me")
    assert b.js("return JSON.parse(sessionStorage.getItem('crm.session')).user.email") == email
    assert b.js("return localStorage.length") == 0
    b.click("#signout")
    b.wait_text("main h1", "Sign in")
    b.wait_text("main .alert", "signed out")
    assert b.js("return sessionStorage.getItem('crm.session')") is None
    assert b.one("#top").is_displayed() is False


def test_a_forgotten_password_is_reset_through_the_e_mailed_link(browsers, smtp):
    """Sign-in screen -> "Forgot your password?" -> the e-mail's link opens the console's reset
    screen -> the new password signs in; the same link a second time is refused, in words."""
    from test_password import reset_links
    email = unique_email("forgot")
    assert register(name="Forgetful Fay", email=email, password="password123").status == 201
    b = browsers()
    b.open("/login")
    b.click("a[href='#/forgot-password']")
    b.wait_text("main h1", "Forgot your password")
    b.fill("form", email=email)
    b.click("form button[type=submit]")
    b.wait_text("form .alert", "link")
    [token] = reset_links(smtp, email)
    b.open("/reset-password?token=" + token)
    b.wait_text("main h1", "Choose a new password")
    b.fill("form", password="brand-new-pass-1")
    b.click("form button[type=submit]")
    b.wait_text("main h1", "Sign in")
    b.wait_text("main .alert", "password is set")
    assert login(email, "password123").status == 401
    assert login(email, "brand-new-pass-1").status == 200
    b.open("/reset-password?token=" + token)
    b.wait_text("main h1", "Choose a new password")
    b.fill("form", password="yet-another-pass-2")
    b.click("form button[type=submit]")
    b.wait_text("form .alert.error", "used or has expired")
    assert login(email, "yet-another-pass-2").status == 401


def test_register_lands_on_the_leads(browsers):
    b = browsers()
    b.open("/register")
    b.fill("form", name="Reggie", email="not-an-email", password="password123")
    b.click("form button[type=submit]")
    b.wait_text("[data-error-for=email]", "e-mail")  # the API's field error, next to the field
    assert b.one("[name=email]").get_attribute("aria-invalid") == "true"
    b.fill("form", email=unique_email("reggie"))
    b.click("form button[type=submit]")
    b.wait_text("main h1", "Leads")
    b.wait_text("main .empty", "No leads")
    assert "Reggie" in b.text("#me") and "sales executive" in b.text("#me")


def test_revoked_token_returns_to_sign_in_with_a_message(browsers, admin):
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    b = browsers()
    b.use_session(token, user)
    r = request("PATCH", "/api/users/%d" % user["id"], {"active": False}, token=admin["token"])
    assert r.status == 200, r.text
    # The stream closes when the user is deactivated; the console finds the token refused and
    # goes to sign-in by itself.
    b.wait_text("main .alert", "session has ended", timeout=12)
    assert b.hash() == "#/login"
    assert b.js("return sessionStorage.getItem('crm.session')") is None


# --- leads -----------------------------------------------------------------------------------

def test_new_lead_form_shows_field_errors_then_creates(sales_browser):
    b = sales_browser
    b.open("/leads")
    b.click("a[href='#/leads/new']")
    b.wait_text("main h1", "New lead")
    name = "Zephyr " + uuid.uuid4().hex[:8]
    b.fill("#new-lead", name=name, email="nope", value="12.5", company="Acme Zephyr")
    b.click("#new-lead button[type=submit]")
    err = b.wait_text("[data-error-for=email]", "e-mail")
    assert err.is_displayed()
    assert b.one("#new-lead [name=email]").get_attribute("aria-invalid") == "true"
    assert b.hash() == "#/leads/new"
    b.fill("#new-lead", email="zephyr@example.com")
    b.click("#new-lead button[type=submit]")
    b.wait(lambda: re.fullmatch(r"#/leads/\d+", b.hash()), what="the new lead's page")
    lead_id = int(b.hash().rsplit("/", 1)[1])
    r = request("GET", "/api/leads/%d" % lead_id, token=b.js(
        "return JSON.parse(sessionStorage.getItem('crm.session')).token"))
    assert r.json["lead"]["name"] == name and r.json["lead"]["value"] == 12.5


def test_filter_search_sort_and_the_url_keeps_the_view(sales_browser, sales_user):
    b = sales_browser
    tag = uuid.uuid4().hex[:8]
    a = new_lead(sales_user[0], name="Orchid %s alpha" % tag, source="REFERRAL", value=10)
    c = new_lead(sales_user[0], name="Orchid %s gamma" % tag, source="EVENT", value=30)
    new_lead(sales_user[0], name="Unrelated %s" % uuid.uuid4().hex[:8])
    b.open("/leads")
    search = b.one("#f-q")
    search.send_keys("orchid " + tag, Keys.ENTER)
    b.wait(lambda: len(b.find("tr[data-lead-id]")) == 2, what="two search hits")
    assert "q=orchid" in b.hash()
    Select(b.one("#f-source")).select_by_value("EVENT")
    b.wait(lambda: [r.get_attribute("data-lead-id") for r in b.find("tr[data-lead-id]")]
           == [str(c["id"])], what="the source filter")
    assert "source=EVENT" in b.hash()
    # A reload shows the same view, its controls set as the URL says.
    b.driver.refresh()
    b.wait(lambda: [r.get_attribute("data-lead-id") for r in b.find("tr[data-lead-id]")]
           == [str(c["id"])], what="the same rows after reload")
    assert b.one("#f-q").get_attribute("value") == "orchid " + tag
    assert Select(b.one("#f-source")).first_selected_option.get_attribute("value") == "EVENT"
    # Back: the search without the source filter.
    b.driver.back()
    b.wait(lambda: len(b.find("tr[data-lead-id]")) == 2, what="the previous view")
    # Sorting by value, highest first, then lowest first by the column's button.
    Select(b.one("#f-sort")).select_by_value("-value")
    b.wait(lambda: [r.get_attribute("data-lead-id") for r in b.find("tr[data-lead-id]")]
           == [str(c["id"]), str(a["id"])], what="sorted by value, highest first")
    b.wait_text("th[aria-sort=descending]", "Value")
    b.click("th[aria-sort=descending] button")
    b.wait(lambda: [r.get_attribute("data-lead-id") for r in b.find("tr[data-lead-id]")]
           == [str(a["id"]), str(c["id"])], what="sorted by value, lowest first")
    assert "sort=value" in b.hash()
    b.screenshot("leads")
    Select(b.one("#f-status")).select_by_value("WON")
    b.wait_text("main .empty", "No leads match")
    assert "status=WON" in b.hash()


def test_paging(sales_browser, sales_user):
    b = sales_browser
    tag = uuid.uuid4().hex[:8]
    for i in range(23):
        new_lead(sales_user[0], name="Paged %s %02d" % (tag, i))
    b.open("/leads?q=paged%%20%s&sort=name" % tag)
    b.wait(lambda: len(b.find("tr[data-lead-id]")) == 20, what="a full first page")
    assert b.text("#leads-status").startswith("1–20 of 23")
    b.click(".pager button:last-child")
    b.wait(lambda: len(b.find("tr[data-lead-id]")) == 3, what="the second page")
    assert "page=2" in b.hash()
    assert b.text("tr[data-lead-id] .lead-name").endswith("20")


def test_paging_past_the_counted_total(sales_browser, sales_user):
    """Past 1 000 matches the API stops counting (total_exact false): the status says "1,000+",
    the page count is not shown, and Next still leads on."""
    b = sales_browser
    tag = uuid.uuid4().hex[:8]
    sql("INSERT INTO leads (name, owner_id, created_by) SELECT 'Many %s ' || lpad(i::text, 4, '0'),"
        " :'p1', :'p1' FROM generate_series(1, 1001) i" % tag, sales_user[1]["id"])
    try:
        b.open("/leads?q=many%%20%s&sort=name&page=50" % tag)
        b.wait(lambda: b.text("#leads-status").startswith("981–1,000 of 1,000+"),
               what="the 50th page of an inexact total")
        assert b.text(".pager span") == "Page 50"
        b.click(".pager button:last-child")
        b.wait(lambda: b.text("#leads-status") == "1,001–1,001 of 1,000+", what="page 51")
        assert b.text("tr[data-lead-id] .lead-name").endswith("1001")
        assert b.one(".pager button:last-child").get_attribute("disabled") is not None
    finally:
        sql("DELETE FROM leads WHERE name LIKE 'Many %s %%'" % tag)


def test_user_strings_are_shown_as_text(sales_browser, sales_user):
    b = sales_browser
    lead = new_lead(sales_user[0], name=XSS_NAME, company="<i>Co</i>")
    b.open("/leads?q=" + "onerror")
    link = b.wait_text("a.lead-name", "onerror")
    assert link.text == XSS_NAME
    assert b.text("tr[data-lead-id='%d'] td:nth-child(2)" % lead["id"]) == "<i>Co</i>"
    assert b.find("img[src=x]") == [] and b.find("main i") == []
    assert b.js("return window.__xss") is None


# --- one lead --------------------------------------------------------------------------------

def test_lead_detail_status_timeline_and_load_more(sales_browser, sales_user):
    b = sales_browser
    lead = new_lead(sales_user[0], value=99.5, company="Detail Co")
    for i in range(55):
        r = request("POST", "/api/leads/%d/activity" % lead["id"],
                    {"type": "CALL", "content": "call %02d" % i}, token=sales_user[0])
        assert r.status == 201, r.text
    b.open("/leads/%d" % lead["id"])
    assert b.text("#lead-title") == lead["name"]
    b.wait(lambda: len(b.find("#timeline li")) == 50, what="the 50 newest activities")
    b.click("#load-more")
    b.wait(lambda: len(b.find("#timeline li")) == 56, what="the rest of the timeline")
    assert not b.one("#load-more").is_displayed()
    assert "Created" in b.find("#timeline li")[-1].text
    # Status with a note.
    Select(b.one("#new-status")).select_by_value("QUALIFIED")
    b.one("#status-note").send_keys("budget confirmed")
    b.click("#status-form button")
    b.wait_text("#lead-status", "Qualified")
    first = b.wait_text("#timeline li", "budget confirmed")
    assert "New → Qualified" in first.text
    # An activity of one's own, with markup in it: shown as text.
    Select(b.one("#add-activity [name=type]")).select_by_value("MEETING")
    b.one("#add-activity [name=content]").send_keys(XSS_NOTE)
    b.click("#add-activity button")
    note = b.wait_text("#timeline li .content", "window.__xss=2")
    assert note.text == XSS_NOTE
    assert b.find("#timeline b") == [] and b.js("return window.__xss") is None
    # An empty activity: the API's field error next to the field.
    # (Waited for: the answer comes after the click, later still on a busy machine.)
    b.click("#add-activity button")
    b.wait(lambda: b.one("#add-activity [name=content]").get_attribute("aria-invalid") == "true",
           what="the empty activity's field marked invalid")
    assert b.text("#add-activity [data-error-for=content]") != ""
    # Sales executives do not get the assign and delete controls.
    assert b.find("#assign-form") == [] and b.find("#delete-lead") == []
    b.screenshot("lead")


def test_edit_conflict_shows_theirs_and_reapplies(sales_browser, sales_user, admin):
    b = sales_browser
    lead = new_lead(sales_user[0], notes="first notes", phone="111")
    b.open("/leads/%d" % lead["id"])
    b.fill("#edit-lead", notes="my notes")
    # Someone else saves first (the page hears of it, but keeps the user's edits).
    r = request("PATCH", "/api/leads/%d" % lead["id"], {"notes": "their notes", "phone": "222"},
                token=admin["token"], headers={"If-Match": '"%d"' % lead["version"]})
    assert r.status == 200, r.text
    b.wait_text("#edit-lead", "")  # the form is still there
    b.wait(lambda: "222" in b.text(".facts"), what="their change shown live")
    assert b.one("#edit-lead [name=notes]").get_attribute("value") == "my notes"
    b.click("#edit-lead button[type=submit]")
    b.wait_text("#conflict .alert", "Someone else changed this lead")
    assert b.text("#conflict td.theirs") == "their notes"
    assert b.text("#conflict td.mine") == "my notes"
    b.screenshot("conflict")
    b.click("#reapply")
    b.wait_text("#edit-lead", "")
    b.wait_text(".alert.ok", "Saved")
    now = request("GET", "/api/leads/%d" % lead["id"], token=admin["token"]).json["lead"]
    assert now["notes"] == "my notes" and now["phone"] == "222"  # theirs kept, mine applied
    assert now["version"] == lead["version"] + 2


def test_admin_assigns_and_deletes_with_confirmation(admin_browser, admin, sales_user):
    b = admin_browser
    lead = new_lead(admin["token"], owner_id=admin["user"]["id"])
    b.open("/leads/%d" % lead["id"])
    b.wait(lambda: len(b.find("#new-owner option")) > 1, what="the users to assign to")
    Select(b.one("#new-owner")).select_by_value(str(sales_user[1]["id"]))
    b.click("#assign-form button")
    b.wait_text("#assign-form .alert", "Assigned to")
    r = request("GET", "/api/leads/%d" % lead["id"], token=admin["token"])
    assert r.json["lead"]["owner"]["id"] == sales_user[1]["id"]
    b.click("#delete-lead")
    b.click("#delete-no")  # cancelling deletes nothing
    assert request("GET", "/api/leads/%d" % lead["id"], token=admin["token"]).status == 200
    b.click("#delete-lead")
    b.click("#delete-yes")
    b.wait(lambda: b.hash() == "#/leads", what="back to the list")
    assert request("GET", "/api/leads/%d" % lead["id"], token=admin["token"]).status == 404


# --- live ------------------------------------------------------------------------------------

def bell(b):
    return b.js("return document.getElementById('bell-count').textContent")


def read_all(token):
    """Empties token's inbox through the API (a page loaded after it counts 0 unread)."""
    r = request("POST", "/api/notifications/read-all", token=token)
    assert r.status == 200, r.text


def test_live_status_change_reaches_list_detail_and_bell(admin_browser, sales_browser, sales_user,
                                                         admin):
    manager_token, _ = make_user(admin["token"], "MANAGER")
    lead = new_lead(sales_user[0], name="Live " + uuid.uuid4().hex[:8])
    read_all(sales_user[0])
    admin_browser.open("/leads?q=" + lead["name"].replace(" ", "%20"))
    admin_browser.wait_text("tr[data-lead-id='%d']" % lead["id"], "New")
    sales_browser.open("/leads/%d" % lead["id"])
    sales_browser.wait(lambda: bell(sales_browser) == "", 2, "an empty inbox")
    for b in (admin_browser, sales_browser):
        b.js("window.__same_page = true")
    r = request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": "WON"},
                token=manager_token)
    assert r.status == 200, r.text
    sent = time.time()
    admin_browser.wait_text("tr[data-lead-id='%d'] .badge" % lead["id"], "Won", timeout=2)
    sales_browser.wait_text("#lead-status", "Won", timeout=2)
    sales_browser.wait_text("#timeline li", "New → Won", timeout=2)
    for b in (admin_browser, sales_browser):
        b.wait_text(".toast", "to Won", timeout=2)
    # The bell is the owner's inbox: the sales executive's counts the change, the admin's (not
    # the owner) does not.
    sales_browser.wait(lambda: bell(sales_browser) == "1", 2, "the bell")
    assert time.time() - sent < 2.5
    for b in (admin_browser, sales_browser):
        assert b.js("return window.__same_page") is True  # no reload
    b = sales_browser
    b.click("#bell")
    link = b.wait_text("#bell-list a", "status → Won")
    assert link.get_attribute("href").endswith("#/leads/%d" % lead["id"])
    sales_browser.screenshot("bell")
    link.click()  # the link goes to the lead and marks it read
    b.wait(lambda: bell(b) == "", 2, "the bell once read")


def test_sales_session_never_sees_events_of_others_leads(sales_browser, sales_user, admin):
    b = sales_browser
    other_token, _ = make_user(admin["token"], "SALES_EXECUTIVE")
    hidden = new_lead(other_token, name="Hidden " + uuid.uuid4().hex[:8])
    mine = new_lead(sales_user[0], name="Mine " + uuid.uuid4().hex[:8])
    read_all(sales_user[0])
    b.open("/leads")
    b.wait(lambda: bell(b) == "", 2, "an empty inbox")
    request("PATCH", "/api/leads/%d/status" % hidden["id"], {"status": "LOST"}, token=admin["token"])
    request("POST", "/api/leads/%d/activity" % hidden["id"], {"type": "NOTE", "content": "x"},
            token=admin["token"])
    # An event it may see, after those: when it has arrived, the others would have too.
    request("PATCH", "/api/leads/%d/status" % mine["id"], {"status": "CONTACTED"},
            token=admin["token"])
    b.wait(lambda: bell(b) == "1", 3, "the visible event")
    b.click("#bell")
    b.wait_text("#bell-list", mine["name"])
    items = [li.text for li in b.find("#bell-list li")]
    assert any(mine["name"] in t for t in items), items
    assert not any(hidden["name"] in t or "#%d" % hidden["id"] in t for t in items), items
    assert hidden["name"] not in b.driver.page_source
    b.click("#bell")


# --- dashboard, users and who sees what ------------------------------------------------------

def menu(b):
    return [a.text for a in b.find("#menu a")]


def test_sales_executive_sees_no_dashboard_or_users(sales_browser):
    b = sales_browser
    b.open("/leads")
    assert menu(b) == ["Leads", "Tasks"]
    for screen in ("/dashboard", "/users"):
        b.open(screen)
        b.wait_text("main h1", "Not allowed")
        assert "not allow" in b.text("#not-allowed")
        assert b.find("#stats") == [] and b.find(".role-select") == []
    b.screenshot("not-allowed")


def test_manager_has_the_dashboard_but_not_users(browsers, admin):
    b = browsers()
    b.use_session(*make_user(admin["token"], "MANAGER"))
    assert menu(b) == ["Leads", "Tasks", "Dashboard"]
    b.open("/users")
    b.wait_text("main h1", "Not allowed")
    b.open("/dashboard")
    b.wait_text("main h1", "Dashboard")
    b.one("#stats [data-stat=total_leads]")
    b.quit()
    browsers.made.remove(b)


def test_dashboard_figures_chart_period_and_live(admin_browser, admin, sales_user):
    b = admin_browser
    b.open("/dashboard")
    assert menu(b) == ["Leads", "Tasks", "Dashboard", "Users"]
    stats = request("GET", "/api/dashboard/stats", token=admin["token"]).json

    def shown(key):
        return b.text("#stats [data-stat=%s] .value" % key)
    b.wait(lambda: shown("total_leads") == "{:,}".format(stats["total_leads"]), what="the total")
    by = request("GET", "/api/dashboard/leads-by-status", token=admin["token"]).json["data"]
    bars = b.find("#by-status svg g[data-status]")
    assert [g.get_attribute("data-status") for g in bars] == [d["status"] for d in by]
    widths = {g.get_attribute("data-status"): float(g.find_element(By.TAG_NAME, "rect")
                                                       .get_attribute("width")) for g in bars}
    top = max(by, key=lambda d: d["count"])
    assert widths[top["status"]] == 260  # the longest bar is the largest count
    # The period is in the URL, and the top sales follow it.
    Select(b.one("#period")).select_by_value("30")
    b.wait(lambda: "period=30" in b.hash(), what="the period in the URL")
    b.wait(lambda: b.find("#top-sales table, #top-sales .empty"), what="top sales")
    b.driver.refresh()
    b.wait(lambda: Select(b.one("#period")).first_selected_option.get_attribute("value") == "30",
           what="the period after reload")
    # Live: a lead won elsewhere moves the figures without a reload.
    before = request("GET", "/api/dashboard/stats", token=admin["token"]).json["won"]
    b.wait(lambda: shown("won") == "{:,}".format(before), what="the won count")
    lead = new_lead(sales_user[0], value=10)
    request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": "WON"}, token=sales_user[0])
    b.wait(lambda: shown("won") == "{:,}".format(before + 1), 3, "the won count, live")
    b.screenshot("dashboard")


def test_users_change_role_deactivate_and_reactivate(admin_browser, admin):
    b = admin_browser
    token, user = make_user(admin["token"], "SALES_EXECUTIVE")
    total = request("GET", "/api/users?limit=1", token=admin["token"]).json["page"]["total"]
    b.open("/users?page=%d" % ((total + 19) // 20))
    row = "tr[data-user-id='%d']" % user["id"]
    b.one(row)
    Select(b.one(row + " .role-select")).select_by_value("MANAGER")
    b.wait_text("main .alert.ok", "role is now Manager")
    assert request("GET", "/api/auth/me", token=token).json["user"]["role"] == "MANAGER"
    b.wait_text(row + " .toggle-active", "Deactivate").click()
    b.wait_text(row + " .toggle-active", "Reactivate")
    assert request("GET", "/api/auth/me", token=token).status == 401
    b.click(row + " .toggle-active")
    b.wait_text(row + " .toggle-active", "Deactivate")
    assert login(user["email"], "password123").status == 200
    # An admin cannot lock itself out: its own controls are disabled.
    b.open("/users")
    me = "tr[data-user-id='%d']" % admin["user"]["id"]
    assert not b.one(me + " .role-select").is_enabled()
    assert not b.one(me + " .toggle-active").is_enabled()
    b.screenshot("users")


# --- labels, keyboard and narrow screens -----------------------------------------------------

# Every form control on the page with no accessible name: none of label (for= or around it),
# aria-label or aria-labelledby gives it text. Returns [controls seen, the unnamed ones].
UNNAMED_JS = """
const text = (els) => els.map((e) => e.textContent.trim()).join(" ").trim();
const all = [...document.querySelectorAll("input, select, textarea")].filter((el) => el.type !== "hidden");
const unnamed = all.filter((el) => {
  const by = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean);
  return !((el.getAttribute("aria-label") || "").trim() || text(by.map((id) => document.getElementById(id)).filter(Boolean))
           || text([...(el.labels || [])]));
});
return [all.length, unnamed.map((el) => el.outerHTML.slice(0, 160))];
"""


def unnamed_controls(b):
    seen, unnamed = b.js(UNNAMED_JS)
    assert seen > 0, "no form controls on " + b.hash()  # the check ran on a real form
    return unnamed


def test_every_form_control_has_an_accessible_name(browsers, admin_browser, admin):
    b = browsers()
    for screen, ready in (("/login", "form [name=password]"), ("/register", "form [name=name]")):
        b.open(screen)
        b.one(ready)
        assert unnamed_controls(b) == [], screen
    lead = new_lead(admin["token"])
    # As an ADMIN, every control there is: the owner filter, the owner of a new lead, assigning.
    for screen, ready in (("/leads", "#f-owner option:nth-child(2)"),
                          ("/leads/new", "#new-lead [name=owner_id] option:nth-child(2)"),
                          ("/leads/%d" % lead["id"], "#new-owner option"),
                          ("/dashboard", "#period"), ("/users", ".role-select")):
        admin_browser.open(screen)
        admin_browser.one(ready)
        assert unnamed_controls(admin_browser) == [], screen


def press(b, *keys):
    """Types keys into whatever has the focus, as a keyboard would (no element is clicked)."""
    b.driver.switch_to.active_element.send_keys(*keys)


FOCUSED_JS = """
const el = document.activeElement, r = el.getBoundingClientRect(), s = getComputedStyle(el);
return {tag: el.tagName, cls: el.className, href: el.getAttribute("href"), text: (el.textContent || "").trim().slice(0, 40),
        visible: r.width > 0 && r.height > 0, outline: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0};
"""


def tab_to(b, wanted, limit=60):
    """Presses TAB until the focused element matches css wanted; every stop on the way must be
    visible and show where the focus is (an outline). Returns the stops."""
    stops = []
    for _ in range(limit):
        press(b, Keys.TAB)
        stop = b.js(FOCUSED_JS)
        stops.append(stop)
        assert stop["visible"] and stop["outline"], stops
        if b.js("return document.activeElement.matches(arguments[0])", wanted):
            return stops
    raise AssertionError("TAB never reached %s: %s" % (wanted, stops))


def test_sign_in_and_open_a_lead_with_the_keyboard_only(browsers, admin):
    email = unique_email("keys")
    r = register(name="Kim Keys", email=email, password="password123")
    assert r.status == 201, r.text
    lead = new_lead(r.json["token"], name="Keyboard lead " + uuid.uuid4().hex[:8])
    b = browsers()
    b.open("/login")
    # The sign-in screen puts the focus in its first field: type, TAB, type, ENTER.
    assert b.js("return document.activeElement.name") == "email"
    press(b, email)
    press(b, Keys.TAB)
    assert b.js("return document.activeElement.name") == "password"
    press(b, "password123", Keys.ENTER)
    b.wait_text("main h1", "Leads")
    b.one("tr[data-lead-id='%d']" % lead["id"])
    # The focus is on the new screen's heading; TAB walks the header, the filters and the
    # table's sort buttons to the lead, and ENTER opens it.
    assert b.js("return document.activeElement.tagName") == "H1"
    stops = tab_to(b, "a.lead-name")
    assert [s["tag"] for s in stops].count("SELECT") >= 3  # the filters are on the way
    assert b.js("return document.activeElement.textContent") == lead["name"]
    press(b, Keys.ENTER)
    b.wait(lambda: b.hash() == "#/leads/%d" % lead["id"], what="the lead's page")
    b.wait_text("#lead-title", lead["name"])
    b.wait(lambda: b.js("return document.activeElement.id") == "lead-title", what="focus on the title")
    # Status change by keyboard: TAB to the status select, pick with the arrows, ENTER submits.
    tab_to(b, "#new-status")
    press(b, Keys.ARROW_DOWN)
    tab_to(b, "#status-note")
    press(b, "by keyboard", Keys.ENTER)
    b.wait_text("#lead-status", "Contacted")
    b.wait_text("#timeline li", "by keyboard")


def test_no_horizontal_scroll_at_360_px(browsers, admin):
    """At 360 px wide, no screen is wider than the window: long unbroken names and e-mail
    addresses wrap, wide tables scroll inside their own box."""
    long = "Supercalifragilisticexpialidocious" * 3
    lead = new_lead(admin["token"], name=long, company=long, email=long[:60] + "@example.com")
    request("POST", "/api/leads/%d/activity" % lead["id"], {"type": "NOTE", "content": long},
            token=admin["token"])
    r = request("POST", "/api/leads/%d/tasks" % lead["id"],
                {"title": long, "notes": long, "due_at": "2031-01-01T09:00:00Z"}, token=admin["token"])
    assert r.status == 201, r.text
    b = browsers()
    chromium.viewport(b.driver, 360, 740)
    wide = {}

    def check(screen):
        b.open(screen)
        time.sleep(0.3)  # the lists and charts that load after the heading
        w = b.js("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert w[1] == 360, w
        if w[0] > w[1]:
            wide[screen] = w[0]
    for screen in ("/login", "/register"):
        check(screen)
    b.use_session(admin["token"], admin["user"])
    for screen in ("/leads", "/leads?q=supercalifragilistic", "/leads/new",
                   "/leads/%d" % lead["id"], "/tasks?filter=all&user_id=%d" % admin["user"]["id"],
                   "/dashboard", "/users"):
        check(screen)
    assert wide == {}
