"""What the page tests share: headless Chromium through Selenium (WebDriver, with Debian's
chromedriver), a page object that fills fields, clicks and waits for an outcome, the checks
of an outcome's kind, HTTP status and error code, the console check, and the run of a whole
script (`main`).
"""
import shutil
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
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

    def log_in(self, who, password):
        """Fills the page's login form (scrolled into view) and submits it; the outcome."""
        self.d.execute_script("window.scrollTo(0, 0)")
        self.type("#login-identifier", who)
        self.type("#login-password", password)
        return self.click("login-out", "#login-submit")

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


def check_console(driver):
    """No error in the browser's console besides the refused requests a script made on purpose
    (logged by the browser as failed loads, 400, 401): a CSP violation or a script error fails."""
    logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE" and "favicon" not in e.get("message", "")]
    unexpected = [e["message"] for e in logs if "the server responded with a status of 4" not in e["message"]]
    check(not unexpected, f"the browser console has errors: {unexpected}")
    print(f"ok   browser console: no errors besides the {len(logs)} refused requests")


def main(name, run, failure_screenshot=None):
    """Runs `run(driver)` in a fresh headless Chromium, then the console check; 0 when every
    step passed, 1 naming the first that failed (with a screenshot at `failure_screenshot`
    if given). For `sys.exit`."""
    profile_dir = tempfile.mkdtemp(prefix=f"chromium-{name.replace(' ', '-')}-")
    driver = None
    try:
        driver = start_browser(profile_dir)
        started = time.monotonic()
        run(driver)
        check_console(driver)
        print(f"{name}: every step passed in {time.monotonic() - started:.1f} s")
        return 0
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        if driver is not None and failure_screenshot:
            try:
                driver.save_screenshot(failure_screenshot)
                print(f"screenshot of the failure: {failure_screenshot}", file=sys.stderr)
            except WebDriverException:
                pass
        return 1
    except WebDriverException as e:
        print(f"FAILED: the browser or its driver failed: {e.msg or e}", file=sys.stderr)
        return 1
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile_dir, ignore_errors=True)
