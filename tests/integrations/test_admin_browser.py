"""An admin issues an integration token in the admin, in a real browser: the form, the token shown once, the list
with its scope and state, and the revoke action (docs/security.md#integration-tokens)."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from itsm.models import IntegrationToken
from tests.browser import BROWSER_TESTS

pytestmark = BROWSER_TESTS


def test_an_admin_issues_and_revokes_a_token_in_the_admin(browser: Any, admin: Any) -> None:
    browser.sign_in_to_admin(admin.username)
    browser.open("/admin/itsm/integrationtoken/add/")
    browser.driver.find_element(By.NAME, "name").send_keys("grafana-reader")
    Select(browser.driver.find_element(By.NAME, "scope")).select_by_value("read")
    browser.shot("integration-token-form")
    browser.driver.find_element(By.NAME, "_save").click()
    browser.loaded()
    page = browser.driver.find_element(By.TAG_NAME, "body").text
    browser.shot("integration-token-issued")
    token = IntegrationToken.objects.get(name="grafana-reader")
    assert "itsm_it_" in page  # the secret, shown this once
    assert (token.scope, token.revoked_at) == ("read", None)

    browser.open("/admin/itsm/integrationtoken/")
    browser.driver.find_element(By.CSS_SELECTOR, f"input[name=_selected_action][value='{token.pk}']").click()
    Select(browser.driver.find_element(By.NAME, "action")).select_by_value("revoke_tokens")
    browser.driver.find_element(By.NAME, "index").click()
    browser.loaded()
    browser.shot("integration-token-revoked")
    token.refresh_from_db()
    assert token.revoked_at is not None
