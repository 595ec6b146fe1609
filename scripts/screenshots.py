#!/usr/bin/env python3
"""make screenshots: the console's pictures in docs/ that the README shows, made afresh.

Starts a stack of the optimised build under var/screens with a modest seeded data set (crmctl
seed), signs in through the console's sign-in screen in headless Chromium at 1440 px wide and
saves docs/screen-leads.png (the leads page), docs/screen-lead.png (a lead, with its tasks and
timeline), docs/screen-tasks.png (the ADMIN's tasks) and docs/screen-dashboard.png. crmctl seed
makes no tasks: a few are added through the API, on the newest lead, whose edit is recorded too.
Settings (environment): SCREENS_PORT (default 18093).
"""
import datetime
import os
import sys
import time

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from stackctl import ROOT, Stack

sys.path.insert(0, os.path.join(ROOT, "tests", "api"))
import chromium  # noqa: E402 (the browser tests' launcher)

WIDTH, HEIGHT = 1440, 900
MAX_HEIGHT = 2400  # a long page is cut here: the picture shows its top


def wait(driver, script, what, timeout=15):
    """Waits until the JavaScript expression script is true in the page."""
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.1).until(
            lambda d: d.execute_script("return !!(%s)" % script))
    except TimeoutException:
        raise SystemExit("screenshots: no %s at %s" % (what, driver.current_url))


def screen_ready(driver, h1):
    wait(driver, "!document.getElementById('main').hasAttribute('aria-busy') && "
                 "(document.querySelector('main h1') || {}).textContent === %r" % h1, h1)
    wait(driver, "document.getElementById('conn').dataset.state === 'live'", "live stream")


def save(driver, name, full_page):
    """Saves the page at WIDTH as docs/<name>, as tall as its content when full_page."""
    height = HEIGHT
    if full_page:
        height = min(MAX_HEIGHT, max(HEIGHT, driver.execute_script(
            "return document.documentElement.scrollHeight")))
    chromium.viewport(driver, WIDTH, height)
    time.sleep(0.3)  # layout at the new height
    path = os.path.join(ROOT, "docs", name)
    driver.save_screenshot(path)
    chromium.viewport(driver, WIDTH, HEIGHT)
    print("screenshots: %s (%d x %d, %d KiB)" % (os.path.relpath(path, ROOT), WIDTH, height,
                                                 os.path.getsize(path) // 1024))


def at(hours):
    """An RFC 3339 time hours from now, on the minute."""
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)
    return t.strftime("%Y-%m-%dT%H:%M:00Z")


TASKS = [  # title, hours from now, notes, done
    ("Call back about the renewal", -20, "Asked for a discount on two seats.", False),
    ("Send the revised proposal", 2, None, False),
    ("Book a demo with their IT lead", 26, "Prefers mornings.", False),
    ("Check the contract draft", 75, None, False),
    ("First call", -50, None, True),
]


def add_tasks(stack):
    """The ADMIN's tasks on the newest lead (the one screen-lead.png shows), and an edit of it."""
    token, user = stack.login()
    lead = stack.api("GET", "leads?limit=1", token=token)["data"][0]
    for title, hours, notes, done in TASKS:
        body = {"title": title, "due_at": at(hours), "user_id": user["id"]}
        if notes:
            body["notes"] = notes
        task = stack.api("POST", "leads/%d/tasks" % lead["id"], body, token=token)["task"]
        if done:
            stack.api("POST", "tasks/%d/complete" % task["id"], token=token)
    stack.api("PATCH", "leads/%d" % lead["id"],
              {"phone": "+1 555 0100", "value": round(float(lead["value"] or 0) + 2500, 2)},
              token=token)


def main():
    stack = Stack("screens", int(os.environ.get("SCREENS_PORT", "18093")), CRM_BCRYPT_COST="10")
    stack.start()
    driver = None
    try:
        # A modest demo set, the same every time (--seed): 8 users, 240 leads and their timelines.
        stack.crmctl("seed", "--leads", "240", "--users", "8", "--seed", "13")
        stack.psql("VACUUM ANALYZE")
        add_tasks(stack)
        driver = chromium.start(WIDTH, HEIGHT)
        chromium.viewport(driver, WIDTH, HEIGHT)
        driver.get(stack.base + "#/login")
        wait(driver, "document.activeElement.name === 'email'", "sign-in screen")
        admin = stack.admin()
        driver.switch_to.active_element.send_keys(admin["email"], Keys.TAB, admin["password"],
                                                  Keys.ENTER)
        screen_ready(driver, "Leads")
        wait(driver, "document.querySelectorAll('tr[data-lead-id]').length === 20", "leads")
        save(driver, "screen-leads.png", False)
        # The first lead of the list (the newest), opened by its link.
        driver.execute_script("document.querySelector('tr[data-lead-id] a.lead-name').click()")
        wait(driver, "/^#\\/leads\\/\\d+$/.test(location.hash)", "lead page")
        wait(driver, "document.querySelectorAll('#timeline li').length > 3", "timeline")
        screen_ready(driver, driver.execute_script(
            "return document.getElementById('lead-title').textContent"))
        save(driver, "screen-lead.png", True)
        driver.execute_script("document.querySelector('#menu a[href=\"#/tasks\"]').click()")
        screen_ready(driver, "Tasks")
        driver.execute_script("document.querySelector('.tabs a[data-filter=all]').click()")
        wait(driver, "/filter=all/.test(location.hash) && "
                     "document.querySelectorAll('.tasks li[data-task-id]').length === %d" % len(TASKS),
             "tasks")
        save(driver, "screen-tasks.png", False)
        driver.execute_script("document.querySelector('#menu a[href=\"#/dashboard\"]').click()")
        screen_ready(driver, "Dashboard")
        wait(driver, "document.querySelector('#by-status svg g[data-status]') && "
                     "document.querySelector('#top-sales table, #top-sales .empty')", "figures")
        save(driver, "screen-dashboard.png", True)
        errors = [e for e in driver.get_log("browser")
                  if e["level"] == "SEVERE" and e.get("source") != "network"]
        if errors:
            raise SystemExit("screenshots: errors in the browser's console: %s" % errors)
    finally:
        if driver:
            driver.quit()
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
