"""Drives auth-local's page at / in headless Chromium through Selenium, with WebDriver's
virtual authenticator (CTAP2, internal transport, resident keys, user verification) standing in
for the device's platform authenticator: a person signs in with the password, adds a passkey
with a name (refused first without the password), sees it listed, signs in with it (no
username, no password), removes it, and sees the next passkey sign-in refused.

usage: passkey_page.py BASE_URL USERNAME PASSWORD
BASE_URL must be on localhost (the relying party's id). The account must exist with PASSWORD,
verified, with no second factor and no passkey. Exits non-zero naming the first failed step.
"""
import sys

from browser import Page, check, expect_ok, expect_problem, main
from selenium.webdriver.common.by import By
from selenium.webdriver.common.virtual_authenticator import Protocol, Transport, VirtualAuthenticatorOptions

BASE, USERNAME, PASSWORD = sys.argv[1:4]


def run(driver):
    options = VirtualAuthenticatorOptions()
    options.protocol = Protocol.CTAP2
    options.transport = Transport.INTERNAL
    options.has_resident_key = True
    options.has_user_verification = True
    options.is_user_verified = True
    options.is_user_consenting = True
    driver.add_virtual_authenticator(options)

    p = Page(driver)
    driver.get(BASE + "/")
    expect_ok("log in with the password", p.log_in(USERNAME, PASSWORD))

    # Adding one needs the password (this session showed no second factor).
    p.type("#passkey-name", "Laptop")
    expect_problem("add a passkey without the password", p.click("passkey-add-out", "#passkey-add-submit"),
                   400, "invalid_request", "Give the current password")
    check(len(driver.get_credentials()) == 0, "nothing was created on the authenticator")
    p.type("#passkey-password", PASSWORD)
    expect_ok("add a passkey", p.click("passkey-add-out", "#passkey-add-submit"))
    creds = driver.get_credentials()
    check(len(creds) == 1, f"the authenticator holds one credential: {creds}")
    check(creds[0].is_resident_credential, "it is a discoverable (resident) credential")
    items = driver.find_elements(By.CSS_SELECTOR, "#passkey-list li")
    check(len(items) == 1 and "Laptop" in items[0].get_attribute("textContent"),
          f"the list shows it by name: {[i.get_attribute('textContent') for i in items]}")
    check(p.el("#passkey-password").get_attribute("value") == "", "the password field is cleared")

    # Sign in with it: no username, no password.
    result = p.click("passkey-login-out", "#passkey-login-button")
    expect_ok("sign in with the passkey", result)
    amr = p.table("#claims").get("amr", "")
    check("hwk" in amr and "mfa" in amr, f"the token carries hwk and mfa: {amr!r}")
    check(p.table("#claims").get("username") == USERNAME, f"as {USERNAME}: {p.table('#claims')}")
    check(result[2] == "POST /passkeys/login · 200", f"the page says which call: {result}")

    # Remove it (this session signed in with the passkey); the next passkey sign-in is refused.
    expect_ok("list the passkeys", p.click("passkey-list-out", "#passkey-list-button"))
    expect_ok("remove the passkey", p.click("passkey-list-out", "#passkey-list li .passkey-remove"))
    check(not driver.find_elements(By.CSS_SELECTOR, "#passkey-list li"), "the list is empty")
    expect_problem("sign in with the removed passkey", p.click("passkey-login-out", "#passkey-login-button"),
                   401, "invalid_credentials", "The passkey sign-in was not accepted")


if __name__ == "__main__":
    sys.exit(main("passkey page", run))
