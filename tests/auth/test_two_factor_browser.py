"""Setting up two factors in a real browser (headless Chromium on the live server, tests/browser.py): an admin who
must have them is sent to /admin/2fa/ at sign-in, types the key shown on the page into "their app" (django-otp's TOTP,
as an authenticator app would compute it), keeps the recovery codes, and signs in again with one of them. The
console must stay clean, so the QR code's inline SVG and the page's style pass the Content-Security-Policy."""

from __future__ import annotations

import shutil
from base64 import b32decode
from pathlib import Path
from typing import Any

from django_otp.oath import TOTP
from selenium.webdriver.common.by import By

from tests.browser import BROWSER_TESTS, PASSWORD, Browser

pytestmark = BROWSER_TESTS

SCREENSHOTS = Path("/tmp/itsm-two-factor")  # noqa: S108  (where a person looks at them after a run)


def code_from_key(key: str) -> str:
    """What an authenticator app shows now for the key typed into it."""
    return f"{TOTP(b32decode(key.replace(' ', ''))).token():06d}"


def keep(path: Path) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / path.name)


def test_an_admin_sets_up_two_factors_in_a_real_browser_and_signs_in_with_a_recovery_code(
    browser: Browser, admin: Any, settings: Any
):
    settings.ITSM_REQUIRE_2FA_FOR_ADMINS = True

    browser.sign_in_to_admin("adam")
    assert browser.driver.current_url == f"{browser.base_url}/admin/2fa/"
    qr = browser.find("svg.qr-code")
    assert qr.is_displayed()
    assert qr.size["width"] >= 150
    key = browser.text("#totp-secret")
    assert len(key.replace(" ", "")) == 32
    keep(browser.shot("enrol"))

    browser.type("#id_code", code_from_key(key))
    browser.click("input[value='Turn on two factors']")
    codes = [element.text for element in browser.driver.find_elements(By.CSS_SELECTOR, "ul.codes li")]
    assert len(set(codes)) == 10
    assert "Two factors are on." in browser.text()
    keep(browser.shot("recovery-codes"))

    browser.click("#recovery-codes a.button")
    assert browser.driver.current_url == f"{browser.base_url}/admin/"
    browser.click("#logout-form button[type=submit]")

    browser.open("/admin/login/")
    browser.type("#id_username", "adam")
    browser.type("#id_password", PASSWORD)
    browser.type("#id_otp", codes[0])
    keep(browser.shot("sign-in-with-code"))
    browser.click("input[type=submit]")
    assert browser.driver.current_url == f"{browser.base_url}/admin/"
    assert browser.h1() != "Two factors"
