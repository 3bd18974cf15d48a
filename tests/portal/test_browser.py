"""The portal in a real browser: Debian's headless Chromium driven by Selenium against a live server (pytest-django's
live_server, on the test database). A requester signs in, opens a ticket with a file, finds it in "my tickets";
an agent (through the services, as the admin desk would) writes an internal note and a public reply and moves the
ticket to pending; the requester sees the reply and never the note, answers; the agent resolves; the requester
confirms.

Every page is saved as a screenshot under the test's tmp_path (the paths are printed), one of them in a phone-sized
window; any message on the browser's console fails the test. With UPDATE_DOCS_IMAGES=1 the list and the ticket are
also copied to docs/images/ for the README.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from itsm.models import Service
from itsm.services.attachments import Upload
from itsm.services.tickets import comment_create, ticket_create, ticket_transition

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = "/usr/bin/chromedriver"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
DESKTOP = (1400, 1000)
PHONE = (390, 844)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or not Path(CHROMEDRIVER).exists(),
        reason="chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)",
    ),
]

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service as DriverService  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=DriverService(CHROMEDRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


class Pages:
    """The browser, with the steps every page needs: load, wait, check the console, take a screenshot."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver, self.base, self.shots = driver, base, shots
        self.saved: dict[str, Path] = {}

    def wait(self, condition: Callable[[Any], Any], timeout: float = 10) -> Any:
        return WebDriverWait(self.driver, timeout).until(condition)

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)
        self.loaded()

    def loaded(self) -> None:
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete")

    def click(self, selector: str) -> None:
        """Click and wait until the next page is in (the old <html> goes stale)."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.CSS_SELECTOR, selector).click()
        self.wait(lambda d: d.find_element(By.TAG_NAME, "html").id != old.id)
        self.loaded()

    def h1(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "h1").text)

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def console_is_clean(self) -> None:
        messages = list(self.driver.get_log("browser"))
        assert messages == [], messages

    def screenshot(self, name: str, size: tuple[int, int] = DESKTOP, whole: bool = True) -> Path:
        """The page at `size`, as tall as its content when `whole`."""
        width, height = size
        self.driver.set_window_size(width, height)
        if whole:
            content, frame = self.driver.execute_script(
                "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
            )
            self.driver.set_window_size(width, max(height, int(content) + int(frame)))
        path = self.shots / f"{name}.png"
        assert self.driver.save_screenshot(str(path))
        assert path.stat().st_size > 5_000  # a rendered page, not a blank one
        self.driver.set_window_size(*DESKTOP)
        self.saved[name] = path
        self.console_is_clean()
        return path


def test_a_requester_opens_follows_and_confirms_a_ticket_in_a_real_browser(
    live_server: Any, browser: Any, requester: Any, agent: Any, tmp_path: Path
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
    shots = tmp_path / "screenshots"
    shots.mkdir()
    pages = Pages(browser, live_server.url, shots)

    # Signing in: the portal sends an anonymous visitor to its sign-in page (the user name field has the focus).
    pages.open("/portal/")
    assert browser.current_url == f"{live_server.url}/portal/sign-in/?next=/portal/"
    assert browser.switch_to.active_element.get_attribute("id") == "id_username"
    pages.screenshot("sign-in")
    browser.find_element(By.ID, "id_username").send_keys("rita")
    browser.find_element(By.ID, "id_password").send_keys("correct-horse-battery")
    pages.click("form.form button[type=submit]")
    assert pages.h1() == "My tickets"
    # From the keyboard: the first Tab reaches the skip link, Enter moves the focus to the page's content.
    ActionChains(browser).send_keys(Keys.TAB).perform()
    skip = browser.switch_to.active_element
    assert (skip.get_attribute("textContent"), skip.get_attribute("href")) == (
        "Skip to main content",
        f"{live_server.url}/portal/#main",
    )
    assert skip.is_displayed()
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "main"

    # A new ticket with a file.
    pages.click("a.button[href='/portal/tickets/new/']")
    assert pages.h1() == "New ticket"
    assert "first answer within 4 hours" in pages.text()
    browser.find_element(By.ID, "id_title").send_keys("VPN drops every 10 minutes")
    browser.find_element(By.ID, "id_description").send_keys("Since Monday, at home and in the office.")
    Select(browser.find_element(By.ID, "id_service")).select_by_visible_text("VPN")
    browser.find_element(By.ID, "id_attachments").send_keys(str(log))
    pages.screenshot("ticket-new")
    pages.click("form.form button[type=submit]")
    assert pages.h1().endswith("VPN drops every 10 minutes")
    assert "is open. We will answer here and by e-mail." in pages.text()
    assert "vpn-client.log" in pages.text()
    ticket_id = int(browser.current_url.rstrip("/").rsplit("/", 1)[1])

    # ... and it is in "my tickets".
    pages.click("a[href='/portal/']")
    row = browser.find_element(By.CSS_SELECTOR, f"a[href='/portal/tickets/{ticket_id}/']")
    assert row.text == f"#{ticket_id} VPN drops every 10 minutes"
    assert "New laptop for the intern" in pages.text()
    assert "Mailbox is full" not in pages.text()  # closed, and the list shows open tickets first

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
    pages.open(f"/portal/tickets/{ticket_id}/")
    page = pages.text()
    assert "Which version of the VPN client do you have?" in page
    assert "Alice Martin" in page
    assert "INTERNAL" not in page
    assert "gateway-internal.txt" not in page
    assert "INTERNAL" not in browser.page_source
    assert "Waiting for you" in page
    pages.screenshot("ticket-pending")
    browser.find_element(By.ID, "id_body").send_keys("Version 5.2.1, on Windows 11.")
    pages.click("form[action$='/reply/'] button[type=submit]")
    assert "Your reply was added." in pages.text()
    assert "Version 5.2.1, on Windows 11." in pages.text()

    # The agent resolves; the requester confirms.
    comment_create(ticket_id=ticket_id, author=agent, body="Version 5.3 fixes the keepalive. It is installed now.")
    ticket_transition(ticket_id=ticket_id, actor=agent, to="resolved")
    pages.open(f"/portal/tickets/{ticket_id}/")
    assert "Is your problem solved?" in pages.text()
    pages.screenshot("ticket-resolved")
    pages.click("form[action$='/status/'] button.primary")
    assert "Thank you for confirming. The ticket is closed." in pages.text()
    assert "Is your problem solved?" not in pages.text()
    ticket = pages.screenshot("ticket-closed")

    pages.open("/portal/?state=all")
    assert "Mailbox is full" in pages.text()
    tickets = pages.screenshot("tickets")
    pages.screenshot("tickets-phone", size=PHONE, whole=False)
    pages.open(f"/portal/tickets/{ticket_id}/")
    pages.screenshot("ticket-phone", size=PHONE)
    pages.open("/portal/password-reset/")
    pages.screenshot("password-reset")

    # Signing out is a button (a POST); then the portal is behind the sign-in page again.
    pages.click(".nav .link-button")
    assert pages.h1() == "Sign in"
    pages.open("/portal/")
    assert pages.h1() == "Sign in"
    pages.console_is_clean()

    for name, path in sorted(pages.saved.items()):
        print(f"portal screenshot {name}: {path}")  # noqa: T201  # where to look at them
    if os.environ.get("UPDATE_DOCS_IMAGES") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tickets, DOCS_IMAGES / "portal-tickets.png")
        shutil.copyfile(ticket, DOCS_IMAGES / "portal-ticket.png")
