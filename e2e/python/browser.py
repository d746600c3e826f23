"""What the page tests share: headless Chromium through Selenium (WebDriver, with Debian's
chromedriver), a page object that fills fields, clicks and waits for an outcome, and the checks
of an outcome's kind, HTTP status and error code.
"""
import shutil

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 20


class Failed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failed(message)


def find(program, *fallbacks):
    for name in (program, *fallbacks):
        path = shutil.which(name)
        if path:
            return path
    raise Failed(f"{program} is not installed: `make tools` installs it (apt-get install chromium chromium-driver)")


def start_browser(profile_dir):
    options = webdriver.ChromeOptions()
    # Explicit paths: Selenium Manager would otherwise try to download a browser and a driver.
    options.binary_location = find("chromium", "chromium-browser", "google-chrome")
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1000",
        f"--user-data-dir={profile_dir}",
    ]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=find("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


class Page:
    def __init__(self, driver):
        self.d = driver

    def el(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def text(self, css):
        # textContent: also what sits in a closed <details>.
        return self.el(css).get_attribute("textContent").strip()

    def type(self, css, value):
        field = self.el(css)
        field.clear()
        field.send_keys(value)

    def count(self, outcome_id):
        return int(self.el(f"#{outcome_id}").get_attribute("data-count") or 0)

    def act(self, outcome_id, trigger):
        """Runs `trigger` (a click or a key press) and waits for the outcome it produces;
        returns (kind, detail, code line)."""
        before = self.count(outcome_id)
        trigger()
        try:
            WebDriverWait(self.d, WAIT).until(lambda _: self.count(outcome_id) > before)
        except TimeoutException:
            raise Failed(f"#{outcome_id} showed no outcome within {WAIT} s: {self.text('#' + outcome_id)!r}") from None
        out = self.el(f"#{outcome_id}")
        kind = "error" if "error" in out.get_attribute("class").split() else "ok"
        code = self.text(f"#{outcome_id} .code") if out.find_elements(By.CSS_SELECTOR, ".code") else ""
        return kind, self.text(f"#{outcome_id} .detail"), code

    def click(self, outcome_id, button_css):
        return self.act(outcome_id, self.el(button_css).click)

    def table(self, css):
        rows = {}
        for row in self.d.find_elements(By.CSS_SELECTOR, f"{css} tbody tr"):
            rows[row.get_attribute("data-name")] = row.find_element(By.CSS_SELECTOR, ".value").get_attribute("textContent")
        return rows


def expect_ok(step, result):
    kind, detail, code = result
    check(kind == "ok", f"{step}: expected success, the page shows an error: {detail} ({code})")
    print(f"ok   {step}: {detail}")
    return detail


def expect_problem(step, result, status, error, detail_start):
    kind, detail, code = result
    check(kind == "error", f"{step}: expected the {error} problem, the page shows success: {detail}")
    check(code == f"HTTP {status} · {error}", f"{step}: expected HTTP {status} · {error}, the page shows {code!r} ({detail})")
    check(detail.startswith(detail_start), f"{step}: expected a detail starting {detail_start!r}, the page shows {detail!r}")
    print(f"ok   {step}: {code}: {detail}")
