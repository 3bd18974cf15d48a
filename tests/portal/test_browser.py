"""The portal in a real browser: Debian's headless Chromium driven by Selenium against a live server (pytest-django's
live_server, on the test database). A requester signs in, opens a ticket with a file, finds it in "my tickets";
an agent (through the services, as the admin desk would) writes an internal note and a public reply and moves the
ticket to pending; the requester sees the reply and never the note, answers; the agent resolves; the requester
confirms.

Every page is saved as a screenshot under the test's tmp_path (the paths are printed), one of them in a phone-sized
window; any message on the browser's console fails the test (tests/browser.py). With UPDATE_DOCS_IMAGES=1 the list
and the ticket are also copied to docs/images/ for the README. The same story with the agent in the admin is
tests/desk/test_story.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from itsm.models import Service
from itsm.services.attachments import Upload
from itsm.services.tickets import comment_create, ticket_create, ticket_transition
from tests.browser import BROWSER_TESTS, PHONE, Browser

pytestmark = BROWSER_TESTS


def test_a_requester_opens_follows_and_confirms_a_ticket_in_a_real_browser(
    browser: Browser, requester: Any, agent: Any, tmp_path: Path
):
    get_user_model().objects.filter(pk=agent.pk).update(first_name="Alice", last_name="Martin")
    agent.refresh_from_db()
    Service.objects.create(name="VPN", slug="vpn")
    Service.objects.create(name="E-mail", slug="email")
    older = ticket_create(requester=requester, title="New laptop for the intern", service=None)
    ticket_transition(ticket_id=older.pk, actor=agent, to="in_progress")
    done = ticket_create(requester=requester, title="Mailbox is full")
    ticket_transition(ticket_id=done.pk, actor=agent, to="closed")
    printer = ticket_create(requester=requester, title="Printer on floor 3 prints blank pages", service=None)
    ticket_transition(ticket_id=printer.pk, actor=agent, to="resolved")
    badge = ticket_create(requester=requester, title="Door badge does not open the garage")
    ticket_transition(ticket_id=badge.pk, actor=agent, to="open")
    ticket_transition(ticket_id=badge.pk, actor=agent, to="pending", note="Which garage entrance?")
    log = tmp_path / "vpn-client.log"
    log.write_text("10:02:11 tunnel up\n10:12:13 keepalive timeout, tunnel down\n")

    # Signing in: the portal sends an anonymous visitor to its sign-in page (the user name field has the focus).
    browser.open("/portal/")
    assert browser.driver.current_url == f"{browser.base_url}/portal/sign-in/?next=/portal/"
    assert browser.driver.switch_to.active_element.get_attribute("id") == "id_username"
    browser.shot("sign-in")
    browser.driver.find_element(By.ID, "id_username").send_keys("rita")
    browser.driver.find_element(By.ID, "id_password").send_keys("correct-horse-battery")
    browser.click("form.form button[type=submit]")
    assert browser.h1() == "My tickets"
    # From the keyboard: the first Tab reaches the skip link, Enter moves the focus to the page's content.
    ActionChains(browser.driver).send_keys(Keys.TAB).perform()
    skip = browser.driver.switch_to.active_element
    assert (skip.get_attribute("textContent"), skip.get_attribute("href")) == (
        "Skip to main content",
        f"{browser.base_url}/portal/#main",
    )
    assert skip.is_displayed()
    ActionChains(browser.driver).send_keys(Keys.ENTER).perform()
    assert browser.driver.switch_to.active_element.get_attribute("id") == "main"

    # A new ticket with a file.
    browser.click("a.button[href='/portal/tickets/new/']")
    assert browser.h1() == "New ticket"
    assert "first answer within 4 hours" in browser.text()
    browser.driver.find_element(By.ID, "id_title").send_keys("VPN drops every 10 minutes")
    browser.driver.find_element(By.ID, "id_description").send_keys("Since Monday, at home and in the office.")
    Select(browser.driver.find_element(By.ID, "id_service")).select_by_visible_text("VPN")
    browser.driver.find_element(By.ID, "id_attachments").send_keys(str(log))
    browser.shot("ticket-new")
    browser.click("form.form button[type=submit]")
    assert browser.h1().endswith("VPN drops every 10 minutes")
    assert "is open. We will answer here and by e-mail." in browser.text()
    assert "vpn-client.log" in browser.text()
    ticket_id = int(browser.driver.current_url.rstrip("/").rsplit("/", 1)[1])

    # ... and it is in "my tickets".
    browser.click("a[href='/portal/']")
    row = browser.driver.find_element(By.CSS_SELECTOR, f"a[href='/portal/tickets/{ticket_id}/']")
    assert row.text == f"#{ticket_id} VPN drops every 10 minutes"
    assert "New laptop for the intern" in browser.text()
    assert "Mailbox is full" not in browser.text()  # closed, and the list shows open tickets first

    # The agent: an internal note with a file, a public reply, pending.
    comment_create(
        ticket_id=ticket_id,
        author=agent,
        body="INTERNAL: gateway logs show DPD timeouts from this user's IP range",
        internal=True,
        uploads=[Upload("gateway-internal.txt", "text/plain", b"dpd timeout x3")],
    )
    comment_create(
        ticket_id=ticket_id,
        author=agent,
        body="Thanks for the log. Which version of the VPN client do you have? It is under Help, About.",
    )
    ticket_transition(ticket_id=ticket_id, actor=agent, to="open")
    ticket_transition(ticket_id=ticket_id, actor=agent, to="pending", note="Waiting for the client version.")

    # The requester sees the reply and never the note; it waits on them.
    browser.open(f"/portal/tickets/{ticket_id}/")
    page = browser.text()
    assert "Which version of the VPN client do you have?" in page
    assert "Alice Martin" in page
    assert "INTERNAL" not in page
    assert "gateway-internal.txt" not in page
    assert "INTERNAL" not in browser.driver.page_source
    assert "Waiting for you" in page
    browser.shot("ticket-pending")
    browser.driver.find_element(By.ID, "id_body").send_keys("Version 5.2.1, on Windows 11.")
    browser.click("form[action$='/reply/'] button[type=submit]")
    assert "Your reply was added." in browser.text()
    assert "Version 5.2.1, on Windows 11." in browser.text()

    # The agent resolves; the requester confirms.
    comment_create(ticket_id=ticket_id, author=agent, body="Version 5.3 fixes the keepalive. It is installed now.")
    ticket_transition(ticket_id=ticket_id, actor=agent, to="resolved")
    browser.open(f"/portal/tickets/{ticket_id}/")
    assert "Is your problem solved?" in browser.text()
    browser.shot("ticket-resolved")
    browser.click("form[action$='/status/'] button.primary")
    assert "Thank you for confirming. The ticket is closed." in browser.text()
    assert "Is your problem solved?" not in browser.text()
    browser.shot("ticket-closed", docs="portal-ticket.png")

    browser.open("/portal/?state=all")
    assert "Mailbox is full" in browser.text()
    browser.shot("tickets", docs="portal-tickets.png")
    browser.shot("tickets-phone", size=PHONE, whole=False)
    browser.open(f"/portal/tickets/{ticket_id}/")
    browser.shot("ticket-phone", size=PHONE)
    browser.open("/portal/password-reset/")
    browser.shot("password-reset")

    # Signing out is a button (a POST); then the portal is behind the sign-in page again.
    browser.click(".nav .link-button")
    assert browser.h1() == "Sign in"
    browser.open("/portal/")
    assert browser.h1() == "Sign in"
    browser.console_is_clean()
