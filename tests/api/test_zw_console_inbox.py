"""The console's bell is the user's notification inbox (GET /api/notifications), in a real
headless Chromium against the real stack: a MANAGER assigns a lead to a sales executive through
the API and the executive's bell counts it live; the list says it in a sentence that links to the
lead; clicking it, and "Mark all read", mark read what the API then counts; "Show more" pages by
cursor as the API does; after a reload the count is the API's. Any JavaScript error in a
browser's console fails the test (test_zw_console's fixture)."""
import uuid

import pytest
from selenium.webdriver.common.keys import Keys

from conftest import make_user, request
# The browser, its fixtures (no_console_errors is autouse) and helpers of the console's tests.
from test_zw_console import Browser, browsers, no_console_errors, new_lead  # noqa: F401


def bell(b):
    return b.js("return document.getElementById('bell-count').textContent")


def unread_count(token):
    r = request("GET", "/api/notifications/unread-count", token=token)
    assert r.status == 200, r.text
    return r.json["unread"]


def inbox_ids(token, limit=100):
    r = request("GET", "/api/notifications?limit=%d" % limit, token=token)
    assert r.status == 200, r.text
    return [n["id"] for n in r.json["data"]]


def shown(b):
    """The bell's items as (id, unread, text), top to bottom."""
    return [(int(li["id"]), li["unread"], li["text"]) for li in b.js(
        "return [...document.querySelectorAll('#bell-list li[data-notification-id]')].map((li) =>"
        " ({id: li.dataset.notificationId, unread: li.classList.contains('unread'),"
        " text: li.querySelector('a').textContent}))")]


def assign(lead, user, token):
    r = request("PATCH", "/api/leads/%d/assign" % lead["id"], {"owner_id": user["id"]}, token=token)
    assert r.status == 200, r.text


@pytest.fixture
def team(admin):
    """A MANAGER and a fresh SALES_EXECUTIVE (an empty inbox) whose browser shows the leads."""
    mtoken, manager = make_user(admin["token"], "MANAGER")
    stoken, sales = make_user(admin["token"], "SALES_EXECUTIVE")
    return mtoken, manager, stoken, sales


def test_assignment_counts_live_reads_as_a_sentence_and_marks_read(browsers, team):
    mtoken, manager, stoken, sales = team
    b = browsers()
    b.use_session(stoken, sales, "/leads")
    assert bell(b) == "" and b.one("#bell").get_attribute("aria-label") == "Notifications"

    lead = new_lead(mtoken, name="Acme " + uuid.uuid4().hex[:6])
    b.js("window.__same_page = true")
    assign(lead, sales, mtoken)
    b.wait(lambda: bell(b) == "1", 3, "the bell to count the assignment")
    assert b.one("#bell").get_attribute("aria-label") == "Notifications: 1 unread"
    r = request("PATCH", "/api/leads/%d/status" % lead["id"], {"status": "WON"}, token=mtoken)
    assert r.status == 200, r.text
    b.wait(lambda: bell(b) == "2", 3, "the bell to count the status change")
    assert b.js("return window.__same_page") is True  # live, no reload

    # Keyboard: Enter opens the panel, the list is the API's, newest first, both unread.
    b.one("#bell").send_keys(Keys.ENTER)
    assert b.one("#bell").get_attribute("aria-expanded") == "true"
    b.wait(lambda: len(shown(b)) == 2, what="two notifications")
    items = shown(b)
    assert [i[0] for i in items] == inbox_ids(stoken)
    assert items[0][1] and items[1][1]
    assert items[0][2] == "Unread: Lead %s: status → Won by %s" % (lead["name"], manager["name"])
    assert items[1][2] == "Unread: %s assigned you lead %s" % (manager["name"], lead["name"])
    link = b.one("#bell-list li[data-notification-id='%d'] a" % items[1][0])
    assert link.get_attribute("href").endswith("#/leads/%d" % lead["id"])
    # Every control of the bell has a name; the open panel's links are reachable by Tab.
    assert b.js("return [...document.querySelectorAll('.bell button, .bell a')]"
                ".filter((el) => !(el.getAttribute('aria-label') || el.textContent).trim()).length") == 0
    b.one("#bell").send_keys(Keys.TAB)
    assert b.js("return document.activeElement.id") == "bell-read-all"
    b.screenshot("inbox")

    # Clicking one goes to its lead and marks it (only it) read.
    link.click()
    b.wait(lambda: b.hash() == "#/leads/%d" % lead["id"], what="the lead")
    b.wait(lambda: bell(b) == "1", 3, "the bell after reading one")
    assert unread_count(stoken) == 1
    assert b.one("#bell-panel").get_attribute("hidden") is not None

    # Mark all read: the API counts none, the list shows them read.
    b.click("#bell")
    b.wait(lambda: [i[1] for i in shown(b)] == [True, False], what="one unread, one read")
    b.one("#bell-read-all").send_keys(Keys.ENTER)  # by keyboard
    b.wait(lambda: bell(b) == "", 3, "the bell after mark all read")
    assert unread_count(stoken) == 0
    b.wait(lambda: [i[1] for i in shown(b)] == [False, False], what="both read")
    assert b.one("#bell-read-all").get_attribute("disabled") is not None
    # Focus was on the button, now disabled: it moved to the first item; Escape closes the panel.
    first = "#bell-list li[data-notification-id='%d'] a" % items[0][0]
    b.wait(lambda: b.js("return document.activeElement.matches(arguments[0])", first),
           what="focus on the first item")
    b.one(first).send_keys(Keys.ESCAPE)
    b.wait(lambda: b.js("return document.activeElement.id") == "bell", what="focus back on the bell")
    assert b.one("#bell").get_attribute("aria-expanded") == "false"

    # While the page is away, another notification: a reload counts it from the API.
    r = request("POST", "/api/leads/%d/activity" % lead["id"], {"type": "CALL", "content": "hello"},
                token=mtoken)
    assert r.status == 201, r.text
    b.driver.get("about:blank")
    assert unread_count(stoken) == 1
    b.open("/leads")
    b.wait(lambda: bell(b) == "1", 3, "the count from the API after the reload")
    b.click("#bell")
    b.wait(lambda: shown(b) and shown(b)[0][1], what="the activity, unread")
    assert shown(b)[0][2] == "Unread: %s added a call to lead #%d" % (manager["name"], lead["id"])
    b.click("#bell")


def test_show_more_pages_by_cursor_and_mark_all_read_stops_at_the_newest_shown(browsers, team):
    mtoken, manager, stoken, sales = team
    lead = new_lead(mtoken, name="Busy " + uuid.uuid4().hex[:6])
    assign(lead, sales, mtoken)
    for i in range(22):
        r = request("POST", "/api/leads/%d/activity" % lead["id"],
                    {"type": "NOTE", "content": "note %d" % i}, token=mtoken)
        assert r.status == 201, r.text
    every = inbox_ids(stoken)
    assert len(every) == 23
    b = browsers()
    b.use_session(stoken, sales, "/leads")
    b.wait(lambda: bell(b) == "23", 3, "the count from the API")
    b.click("#bell")
    b.wait(lambda: len(shown(b)) == 20, what="the first page")
    assert [i[0] for i in shown(b)] == every[:20]
    b.click("#bell-more")
    b.wait(lambda: len(shown(b)) == 23, what="the second page")
    assert [i[0] for i in shown(b)] == every
    assert b.one("#bell-more").get_attribute("hidden") is not None  # the last page
    assert shown(b)[-1][2] == "Unread: %s assigned you lead %s" % (manager["name"], lead["name"])
    # On a phone-sized window the open panel lies within it.
    b.driver.set_window_size(360, 800)
    try:
        box = b.js("const r = document.getElementById('bell-panel').getBoundingClientRect();"
                   " return [r.left, r.right, document.documentElement.clientWidth]")
        assert box[0] >= 0 and box[1] <= box[2], box
    finally:
        b.driver.set_window_size(1440, 1000)

    # "Mark all read" marks up to the newest one shown (the API leaves any later one unread).
    b.js("window.__asked = []; const f = window.fetch;"
         "window.fetch = (url, init) => { window.__asked.push(init.method + ' ' + url);"
         " return f(url, init); }")
    b.click("#bell-read-all")
    b.wait(lambda: bell(b) == "", 3, "the bell after mark all read")
    assert "POST /api/notifications/read-all?up_to=%d" % every[0] in b.js("return window.__asked")
    assert unread_count(stoken) == 0
    b.click("#bell")
