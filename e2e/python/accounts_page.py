"""Drives auth-local's page at / in headless Chromium through Selenium: signs up, opens the
mail in the page's outbox, follows its link, confirms with the sign-up's password, logs in;
then, for an existing account, asks for a reset, follows the reset mail's link, sets a new
password and logs in with it. Every step is read from what the page shows.

usage: accounts_page.py BASE_URL NEW_USERNAME NEW_EMAIL PASSWORD OLD_USERNAME OLD_EMAIL NEW_PASSWORD
OLD_USERNAME must exist with PASSWORD. Exits non-zero naming the first step that failed.
"""
import sys
import time

from browser import WAIT, Failed, Page, check, expect_ok, expect_problem, main
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BASE, NEW_USER, NEW_EMAIL, PASSWORD, OLD_USER, OLD_EMAIL, NEW_PASSWORD = sys.argv[1:8]


def mail_link(p, to, subject_part):
    """Refreshes the outbox until a mail to `to` whose subject has `subject_part` shows, and
    returns its link's address."""
    def found(_):
        # Each refresh rebuilds the list: wait for it to finish before reading it.
        p.click("outbox-out", "#outbox-button")
        try:
            for mail in p.d.find_elements(By.CSS_SELECTOR, "#outbox article.mail"):
                meta = mail.find_element(By.CSS_SELECTOR, ".meta").get_attribute("textContent")
                subject = mail.find_element(By.CSS_SELECTOR, "h3").get_attribute("textContent")
                links = mail.find_elements(By.CSS_SELECTOR, "a.mail-link")
                if f"to {to}" in meta and subject_part in subject and links:
                    return links[0].get_attribute("href")
        except StaleElementReferenceException:
            pass
        return False
    try:
        return WebDriverWait(p.d, WAIT, poll_frequency=0.5).until(found)
    except TimeoutException:
        raise Failed(f"no mail to {to} about {subject_part!r} in the outbox within {WAIT} s: {p.text('#outbox')!r}") from None


def follow(p, href, action):
    check(f"?action={action}#token=" in href, f"the link carries its token in the fragment: {href}")
    # The outbox may be rebuilt under the click (a refresh the page scheduled): find the link
    # again until the click lands.
    for _ in range(5):
        try:
            p.d.find_element(By.CSS_SELECTOR, f'#outbox a.mail-link[href="{href}"]').click()
            break
        except StaleElementReferenceException:
            time.sleep(0.2)
    else:
        raise Failed(f"the link {href} could not be clicked")
    WebDriverWait(p.d, WAIT).until(lambda d: f"action={action}" in d.current_url)
    # The page reads the token, then drops it from the address bar and history.
    WebDriverWait(p.d, WAIT).until(lambda d: "#token=" not in d.current_url)
    print(f"ok   followed the {action} link; the address bar keeps no token: {p.d.current_url}")


def run(driver):
    p = Page(driver)
    driver.get(BASE + "/")
    # Sign up; before the address is confirmed, its login fails as a wrong password.
    p.type("#signup-username", NEW_USER)
    p.type("#signup-email", NEW_EMAIL)
    p.type("#signup-password", PASSWORD)
    expect_ok("sign up", p.click("signup-out", "#signup-submit"))
    expect_problem("log in before confirming", p.log_in(NEW_USER, PASSWORD),
                   401, "invalid_credentials", "The identifier or the password is incorrect.")
    link = mail_link(p, NEW_EMAIL, "Confirm")
    follow(p, link, "verify-email")
    check(p.text("#verify-title") == "Confirm your sign-up", f"the verify form is shown: {p.text('#verify-title')!r}")
    check(not p.el("#verify-link-note").get_attribute("hidden"), "the form says it uses the link")
    p.type("#verify-password", PASSWORD + " wrong")
    expect_problem("confirm with a wrong password", p.click("verify-out", "#verify-submit"),
                   400, "invalid_code", "The code or link is invalid")
    p.type("#verify-password", PASSWORD)
    expect_ok("confirm with the link", p.click("verify-out", "#verify-submit"))
    expect_ok("log in after confirming", p.log_in(NEW_USER, PASSWORD))

    # Forgot, mail, reset by the link, log in with the new password.
    p.type("#forgot-identifier", OLD_EMAIL)
    expect_ok("forgot password", p.click("forgot-out", "#forgot-submit"))
    link = mail_link(p, OLD_EMAIL, "Reset")
    follow(p, link, "reset-password")
    p.type("#reset-password", "password")
    expect_problem("reset to a weak password", p.click("reset-out", "#reset-submit"),
                   400, "weak_password", "The new password is too weak")
    p.type("#reset-password", NEW_PASSWORD)
    expect_ok("reset with the link", p.click("reset-out", "#reset-submit"))
    expect_problem("log in with the old password", p.log_in(OLD_USER, PASSWORD),
                   401, "invalid_credentials", "The identifier or the password is incorrect.")
    expect_ok("log in with the new password", p.log_in(OLD_USER, NEW_PASSWORD))


if __name__ == "__main__":
    sys.exit(main("accounts page", run))
