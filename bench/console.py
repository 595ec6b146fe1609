#!/usr/bin/env python3
"""make bench-console (also part of make bench): how soon the console's leads page is usable on
a database of 100 000 leads, in a real browser on loopback.

Starts a fresh stack of the optimised build under var/bench-console, seeds BENCH_CONSOLE_LEADS
leads (default 100000) with crmctl seed, and loads the console's leads page (as the ADMIN, who
sees every lead) in headless Chromium BENCH_CONSOLE_RUNS times (default 10) with an empty cache
and as many times with the cache it left (the files revalidated, 304). For each load it reads
the page's Navigation Timing (performance.getEntriesByType('navigation')), the time of the API's
list request, and the mark the console sets when the table is first drawn ("crm:leads-rendered",
web/js/views/leads.js): that moment, from the start of the navigation, is when the page is
usable. Writes the median and p95 to its section of bench/results.md (the rest of that file is
bench/bench.py's). Settings (environment): BENCH_CONSOLE_PORT (default 18094).
"""
import datetime
import os
import statistics
import sys
import time

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "scripts"), os.path.join(ROOT, "tests", "api")]
import chromium  # noqa: E402 (the browser tests' launcher)
import results  # noqa: E402 (bench/results.md by section)
from stackctl import Stack, sh  # noqa: E402

LEADS = int(os.environ.get("BENCH_CONSOLE_LEADS", "100000"))
RUNS = int(os.environ.get("BENCH_CONSOLE_RUNS", "10"))
PORT = int(os.environ.get("BENCH_CONSOLE_PORT", "18094"))
HEADING = "## The console's leads page"
TARGET_MS = 1000

# What one load measured, in ms from the start of the navigation.
TIMING_JS = """
const nav = performance.getEntriesByType("navigation")[0];
const list = performance.getEntriesByType("resource").filter((r) => /\\/api\\/leads\\?/.test(r.name))[0];
const files = performance.getEntriesByType("resource").filter((r) => !/\\/api\\//.test(r.name));
return {
  rendered: performance.getEntriesByName("crm:leads-rendered")[0].startTime,
  html: nav.responseEnd, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
  list: list ? list.duration : NaN, files: files.length,
  bytes: nav.transferSize + files.reduce((n, r) => n + r.transferSize, 0),
  rows: document.querySelectorAll("tr[data-lead-id]").length,
  total: document.getElementById("leads-status").textContent,
};
"""


def load(driver, url):
    """One page load of the leads page; returns TIMING_JS's figures once the table is drawn."""
    driver.get("about:blank")  # the same URL again would only be a hash change
    driver.get(url)
    try:
        WebDriverWait(driver, 30, poll_frequency=0.05).until(lambda d: d.execute_script(
            "return performance.getEntriesByName('crm:leads-rendered').length > 0"
            " && performance.getEntriesByType('navigation')[0].loadEventEnd > 0"))
    except TimeoutException:
        raise SystemExit("bench-console: the leads table was not drawn within 30 s")
    t = driver.execute_script(TIMING_JS)
    if t["rows"] != 20:
        raise SystemExit("bench-console: the table shows %d rows, not a first page" % t["rows"])
    return t


def p95(values):
    """The nearest-rank 95th percentile (of 10 runs: the slowest)."""
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def summary(name, runs):
    cols = ("rendered", "html", "dcl", "load", "list")
    return "| %s | %s |" % (name, " | ".join(
        "%.0f / %.0f" % (statistics.median(r[c] for r in runs), p95([r[c] for r in runs]))
        for c in cols))



def main():
    started = time.time()
    load_before = os.getloadavg()[0]  # other work on the machine shows in the figures
    stack = Stack("bench-console", PORT, CRM_WORKERS="4", CRM_BCRYPT_COST="10")
    stack.start()
    driver = None
    try:
        t = time.time()
        stack.crmctl("seed", "--leads", str(LEADS), "--users", "50", "--seed", str(LEADS))
        stack.psql("VACUUM ANALYZE")
        print("bench-console: seeded %d leads in %.0f s" % (LEADS, time.time() - t), flush=True)
        token, user = stack.login()
        driver = chromium.start(1440, 900)
        chromium.viewport(driver, 1440, 900)
        # Signed in as the console's sign-in screen leaves it: the session in sessionStorage,
        # which a tab keeps across its page loads.
        driver.get(stack.base + "favicon.svg")
        driver.execute_script("sessionStorage.setItem('crm.session', JSON.stringify("
                              "{token: arguments[0], user: arguments[1]}))", token, user)
        url = stack.base + "#/leads"
        load(driver, url)  # the database's and the pools' caches warm, as in use
        cold, warm = [], []
        for _ in range(RUNS):
            driver.execute_cdp_cmd("Network.clearBrowserCache", {})
            cold.append(load(driver, url))
            warm.append(load(driver, url))
        errors = [e for e in driver.get_log("browser")
                  if e["level"] == "SEVERE" and e.get("source") != "network"]
        if errors:
            raise SystemExit("bench-console: errors in the browser's console: %s" % errors)
        version = driver.capabilities.get("browserVersion", "?")
    finally:
        if driver:
            driver.quit()
        stack.stop()
    usable = max(p95([r["rendered"] for r in runs]) for runs in (cold, warm))
    lines = [
        "- Date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- Machine: %s cores (`nproc`), %s GiB memory; %s; load average %.1f before the run;"
        " Chromium %s headless on the same machine (loopback)" % (
            os.cpu_count(), round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                  / 2 ** 30), sh(["uname", "-sr"]).strip(), load_before, version),
        "- Command: `make bench-console` (also run by `make bench`): %s leads (crmctl seed), the"
        " ADMIN's `#/leads` (every lead: \"%s\"), 1440 x 900, %d loads with an empty cache and %d"
        " with the cache they left; the page and its %d files: %d KiB transferred with an empty cache" % (
            format(LEADS, ","), cold[0]["total"], RUNS, RUNS, cold[0]["files"],
            cold[0]["bytes"] // 1024),
        "",
        "Milliseconds from the start of the navigation, median / p95 (nearest rank):",
        "",
        "| cache | table drawn (usable) | HTML received | DOMContentLoaded | load event |"
        " GET /api/leads (its own time) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        summary("empty", cold),
        summary("revalidated", warm),
        "",
        "- usable (the table drawn), the slower p95: **%.0f ms** (target < %d ms: %s)" % (
            usable, TARGET_MS, "met" if usable < TARGET_MS else "NOT met"),
        "- wall time: %.0f s" % (time.time() - started),
    ]
    results.write_section(HEADING, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
