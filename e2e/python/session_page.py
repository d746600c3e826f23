"""Drives auth-local's page at / in headless Chromium through Selenium (WebDriver, with Debian's
chromedriver): fills the forms, clicks the buttons, and checks what the page shows.

usage: session_page.py BASE_URL USERNAME EMAIL PASSWORD NEW_PASSWORD SCREENSHOT.png
The account must exist with PASSWORD; the script changes it to NEW_PASSWORD. Exits non-zero with
a message naming the first step that failed.
"""
import sys

from browser import Page, check, expect_ok, expect_problem, main
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

BASE, USERNAME, EMAIL, PASSWORD, NEW_PASSWORD, SCREENSHOT = sys.argv[1:7]


def run(driver):
    p = Page(driver)
    driver.get(BASE + "/")
    check(driver.title == "auth-local: try a session", f"the page's title is {driver.title!r}")
    check(p.text("#session-state") == "not logged in", "a fresh page shows no session")

    # Log in with the username; the form submits with the button.
    p.type("#login-identifier", USERNAME)
    p.type("#login-password", PASSWORD)
    expect_ok("log in", p.click("login-out", "#login-submit"))
    claims = p.table("#claims")
    check(claims.get("username") == USERNAME, f"the claims show username {claims.get('username')!r}: {claims}")
    sid = claims.get("sid", "")
    check(len(sid) == 36, f"the claims show a sid (a uuid): {claims}")
    for name in ("iss", "aud", "sub", "iat", "nbf", "exp", "jti"):
        check(name in claims, f"the claims show {name}: {claims}")
    exp_row = p.text("#claims tr[data-name=exp] td")
    check(exp_row.count("-") >= 2 and ":" in exp_row and "(in " in exp_row, f"exp is shown as a date: {exp_row!r}")
    header = p.table("#jwt-header")
    check(header.get("alg") == "HS256" and header.get("typ") == "JWT", f"the token header is shown: {header}")
    check(p.text("#session-state") == "active", "the session shows as active")
    held = p.text("#refresh-token")
    check(held.startswith("yes, ") and held.endswith("…") and len(held) == len("yes, ") + 6 + 1,
          f"the refresh token is shown as its first 6 characters only: {held!r}")
    check(p.el("#login-password").get_attribute("value") == "", "the password field is cleared after login")
    stored = driver.execute_script("return localStorage.length + sessionStorage.length + document.cookie.length")
    check(stored == 0, "nothing is stored in localStorage, sessionStorage or cookies")
    print(f"ok   claims: username {claims['username']}, sid {sid}, exp {exp_row}")
    driver.save_screenshot(SCREENSHOT)
    print(f"ok   screenshot after login: {SCREENSHOT}")

    # Profile.
    expect_ok("profile", p.click("profile-out", "#profile-button"))
    profile = p.table("#profile")
    check(profile.get("email") == EMAIL and profile.get("username") == USERNAME, f"the profile shows the account: {profile}")

    # Refresh: a new access token for the same session.
    access = p.text("#access-token")
    expect_ok("refresh", p.click("refresh-out", "#refresh-button"))
    refreshed = p.table("#claims")
    check(p.text("#access-token") != access, "refresh shows a different access token")
    check(refreshed.get("sid") == sid, f"refresh keeps the sid {sid}: {refreshed.get('sid')}")
    check(refreshed.get("jti") != claims.get("jti"), "the refreshed token has a new jti")
    changed = [r.get_attribute("data-name") for r in driver.find_elements(By.CSS_SELECTOR, "#claims tr.changed")]
    check("jti" in changed and "sid" not in changed, f"the changed claims are highlighted, sid is not: {changed}")
    print(f"ok   refresh: same sid, changed claims {changed}")

    # Password change: wrong current password, weak new password, then a good one.
    p.type("#password-current", PASSWORD + " but wrong")
    p.type("#password-new", NEW_PASSWORD)
    expect_problem("password, wrong current", p.click("password-out", "#password-submit"),
                   401, "invalid_credentials", "The identifier or the password is incorrect.")
    p.type("#password-current", PASSWORD)
    p.type("#password-new", "password123")
    expect_problem("password, weak new", p.click("password-out", "#password-submit"),
                   400, "weak_password", "The new password is too weak")
    p.type("#password-current", PASSWORD)
    p.type("#password-new", NEW_PASSWORD)
    expect_ok("password change", p.click("password-out", "#password-submit"))
    check(p.table("#claims").get("sid") not in (None, sid), "the password change carries this session on under a new id")
    expect_ok("profile after the password change", p.click("profile-out", "#profile-button"))

    # Log in again with the new password and the email, submitting with the Enter key.
    p.type("#login-identifier", EMAIL)
    p.type("#login-password", NEW_PASSWORD)
    expect_ok("log in with the new password", p.act("login-out", lambda: p.el("#login-password").send_keys(Keys.ENTER)))
    again = p.table("#claims")
    check(again.get("username") == USERNAME, f"the new login's claims show the username: {again}")
    check(again.get("sid") not in ("", sid), f"the new login opened a new session: {again.get('sid')}")

    # Log out (local), then the profile is refused with the kept access token.
    p.el("#scope-local").click()
    expect_ok("log out (local)", p.click("logout-out", "#logout-submit"))
    check(p.text("#session-state").startswith("ended"), "the session shows as ended")
    expect_problem("profile after logout", p.click("profile-out", "#profile-button"),
                   401, "invalid_token", "The access token is invalid, expired or revoked.")
    check(not p.el("#profile").is_displayed(), "the profile table is hidden after a refused request")
    expect_problem("refresh after logout", p.click("refresh-out", "#refresh-button"),
                   401, "invalid_grant", "The refresh token is invalid")

    end = SCREENSHOT.replace(".png", "-end.png")
    driver.set_window_size(1280, 1500)
    driver.save_screenshot(end)
    print(f"ok   screenshot at the end: {end}")


if __name__ == "__main__":
    sys.exit(main("session page", run, SCREENSHOT.replace(".png", "-failure.png")))
