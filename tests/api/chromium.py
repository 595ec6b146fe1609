"""A real headless Chromium (Debian's chromium and chromium-driver) driven through Selenium: the
one launcher of the browser tests, make screenshots and make bench-console."""
from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def start(width=1280, height=900):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=%d,%d" % (width, height), "--lang=en-US", "--no-first-run",
                "--disable-extensions", "--disable-background-networking"):
        opts.add_argument(arg)
    # The browser's console, for the tests that fail on any JavaScript error.
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_script_timeout(10)
    return driver


def viewport(driver, width, height):
    """Makes the page's viewport exactly width x height CSS pixels (a window has a minimum
    width, and its frame takes some of it; the emulated viewport has neither)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
