"""Drives auth-local's page at / in headless Chromium through Selenium: a person sets up an
authenticator app (the QR code drawn, the key read back as pyotp, the authenticator app,
would), confirms it, sees the recovery codes once, signs in again with the second step (a
wrong code first, then the app's), and turns the factor off with a recovery code.

usage: mfa_page.py BASE_URL USERNAME PASSWORD
The account must exist with PASSWORD and no second factor. Exits non-zero with a message
naming the first step that failed.
"""
import re
import sys
import time

import pyotp
from browser import Page, check, expect_ok, expect_problem, main
from selenium.webdriver.common.by import By

BASE, USERNAME, PASSWORD = sys.argv[1:4]


def next_code(secret):
    """The app's code for the next 30-second step (the current one was used by the confirmation)."""
    return pyotp.TOTP(secret).at(int(time.time()) + 30)


def run(driver):
    p = Page(driver)
    driver.get(BASE + "/")
    expect_ok("log in with the password alone", p.log_in(USERNAME, PASSWORD))

    # A first factor needs the password: none is refused.
    expect_problem("set up without the password", p.click("mfa-enrol-out", "#mfa-enrol-submit"),
                   400, "invalid_request", "Give the current password")
    p.type("#mfa-password", PASSWORD)
    expect_ok("set up an authenticator app", p.click("mfa-enrol-out", "#mfa-enrol-submit"))
    check(p.el("#mfa-enrolment").is_displayed(), "the QR code and the key are shown")
    src = p.el("#mfa-qr").get_attribute("src") or ""
    check(src.startswith("data:image/svg+xml;base64,"), f"the QR code is an SVG image: {src[:40]!r}")
    width = driver.execute_script("return document.getElementById('mfa-qr').naturalWidth")
    check(width >= 200, f"the QR code image loaded ({width} px wide)")
    secret = p.text("#mfa-secret")
    check(re.fullmatch(r"[A-Z2-7]{32}", secret) is not None, f"the key is 160 bits of base32: {secret!r}")
    check(p.el("#mfa-password").get_attribute("value") == "", "the password field is cleared")

    # Confirm with the app's code: the recovery codes show once, the token says mfa.
    p.type("#mfa-verify-code", pyotp.TOTP(secret).now())
    expect_ok("confirm the factor", p.click("mfa-verify-out", "#mfa-verify-submit"))
    codes = [li.get_attribute("textContent") for li in driver.find_elements(By.CSS_SELECTOR, "#mfa-recovery-codes li")]
    check(len(codes) == 10 and all(re.fullmatch(r"[0-9a-z]{5}-[0-9a-z]{5}", c) for c in codes),
          f"ten recovery codes are shown: {codes}")
    check("mfa" in p.table("#claims").get("amr", ""), f"the new token's amr holds mfa: {p.table('#claims')}")
    check(not p.el("#mfa-enrolment").is_displayed() and p.text("#mfa-secret") == "", "the key is no longer shown")
    print(f"ok   recovery codes: {len(codes)}, first {codes[0]}")

    # Sign in again: the password alone now asks for the second step.
    result = p.log_in(USERNAME, PASSWORD)
    expect_ok("the password asks for the second step", result)
    check("second step" in result[1] and result[2] == "POST /login · 403 mfa_required", f"the page says so: {result}")
    check(p.el("#mfa-step-section").is_displayed(), "the second-step form is shown")
    p.type("#mfa-step-code", "000000" if next_code(secret) != "000000" else "111111")
    expect_problem("a wrong code", p.click("mfa-step-out", "#mfa-step-submit"), 400, "invalid_code", "The code")
    p.type("#mfa-step-code", next_code(secret))
    expect_ok("the app's code", p.click("mfa-step-out", "#mfa-step-submit"))
    check(not p.el("#mfa-step-section").is_displayed(), "the second-step form is hidden again")
    amr = p.table("#claims").get("amr", "")
    check("otp" in amr and "mfa" in amr, f"the session's token carries otp and mfa: {amr!r}")

    # Off, with a recovery code; then the password alone logs in again.
    p.type("#mfa-disable-code", codes[0])
    expect_ok("turn the factor off with a recovery code", p.click("mfa-disable-out", "#mfa-disable-submit"))
    result = p.log_in(USERNAME, PASSWORD)
    expect_ok("log in with the password alone again", result)
    check(result[2] == "POST /login · 200", f"one step again: {result}")


if __name__ == "__main__":
    sys.exit(main("mfa page", run))
