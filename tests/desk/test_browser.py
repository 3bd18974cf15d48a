"""The desk in a real browser: Debian's headless Chromium, driven by Selenium, against a live server on loopback
(pytest-django's live_server, on the test database). An agent works a ticket from "unassigned in my teams" to
resolved; an incident commander walks an incident through every state and writes its post-mortem; an agent starts
and completes a maintenance window. Every page is screenshot under the test's tmp_path (the paths are printed), and
any error in the browser's console fails the test.

With UPDATE_DOCS_IMAGES=1 the ticket page and the index are also copied to docs/images/ for the README.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from selenium import webdriver
from selenium.webdriver.chrome.options import Options as ChromeOptions
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.wait import WebDriverWait

from itsm.models import Comment, Event, Incident, MaintenanceWindow, Postmortem, Service, Team, Ticket
from itsm.services.incidents import incident_create
from itsm.services.maintenance import maintenance_create
from itsm.services.tickets import comment_create, ticket_transition
from tests.factories import make_ticket, make_user

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "correct-horse-battery"  # tests.factories.make_user's
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or not Path(CHROMEDRIVER).exists(),
        reason="chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)",
    ),
]


class Browser:
    """One Chromium session on the live server: pages opened, forms filled, screenshots taken, and the console read
    after every page (an error there fails the test)."""

    def __init__(self, base_url: str, artifacts: Path) -> None:
        options = ChromeOptions()
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
            options.add_argument(argument)
        options.binary_location = str(CHROMIUM)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=ChromeService(CHROMEDRIVER), options=options)
        self.base_url, self.artifacts = base_url, artifacts
        self.console: list[str] = []

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)
        self.check_console()

    def click(self, css: str) -> None:
        """Click and wait for the page the click loads (every desk button posts and is redirected back)."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.CSS_SELECTOR, css).click()
        WebDriverWait(self.driver, 15).until(staleness_of(old))
        self.check_console()

    def type(self, css: str, text: str) -> None:
        field = self.driver.find_element(By.CSS_SELECTOR, css)
        field.clear()
        field.send_keys(text)

    def text(self, css: str = "body") -> str:
        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def messages(self) -> list[str]:
        return [element.text for element in self.driver.find_elements(By.CSS_SELECTOR, "ul.messagelist li")]

    def check_console(self) -> None:
        """Everything the page wrote to the console at level warning or above is kept; errors fail the test."""
        for entry in self.driver.get_log("browser"):
            self.console.append(f"{entry['level']}: {entry['message']}")
            assert entry["level"] != "SEVERE", f"console error on {self.driver.current_url}: {entry['message']}"

    def shot(self, name: str, *, docs: str = "") -> Path:
        """A screenshot of the whole page (the window is stretched to the page's height for it)."""
        height, chrome = self.driver.execute_script(
            "return [Math.max(document.body.scrollHeight, document.documentElement.scrollHeight),"
            " window.outerHeight - window.innerHeight]"
        )
        self.driver.set_window_size(1400, max(1000, min(int(height) + int(chrome), 6000)))
        path = self.artifacts / f"{name}.png"
        assert self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1400, 1000)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        width = struct.unpack(">I", path.read_bytes()[16:20])[0]
        assert width >= 1400
        print(f"screenshot {name}: {path}")  # noqa: T201  (where to look at it)
        if docs and os.environ.get("UPDATE_DOCS_IMAGES") == "1":
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMAGES / docs)
        return path

    def sign_in(self, username: str) -> None:
        self.open("/admin/login/")
        self.type("#id_username", username)
        self.type("#id_password", PASSWORD)
        self.click("input[type=submit]")


@pytest.fixture
def browser(live_server: Any, tmp_path: Path) -> Iterator[Browser]:
    session = Browser(live_server.url, tmp_path)
    try:
        yield session
    finally:
        session.driver.quit()


@pytest.fixture
def desk_floor(agent: Any, requester: Any, other_requester: Any) -> dict[str, Any]:
    """A desk with some work on it: the agent's team owns VPN, another team owns Payroll."""
    team = Team.objects.create(name="Service desk", slug="service-desk")
    team.members.add(agent)
    vpn = Service.objects.create(name="VPN", slug="vpn", team=team)
    payroll = Service.objects.create(name="Payroll", slug="payroll", team=Team.objects.create(name="Finance IT"))
    colleague = make_user("bob", "agent")
    mine = make_ticket(other_requester, title="Laptop fan is loud", service=vpn, assignee=agent, priority="low")
    comment_create(ticket_id=mine.pk, author=agent, body="Ordering a replacement fan.")
    make_ticket(other_requester, title="Payslip PDF is blank", service=payroll, priority="high")
    waiting = make_ticket(other_requester, title="Share a calendar", service=vpn, assignee=colleague)
    for to in ("open", "pending"):
        ticket_transition(ticket_id=waiting.pk, actor=colleague, to=to, note="Which calendar?")
    new = make_ticket(
        requester,
        title="VPN drops every hour",
        description="Since Monday the VPN disconnects every hour on the hour.\nI am on the office Wi-Fi.",
        service=vpn,
        priority="high",
    )
    incident_create(actor=colleague, title="Mail delivery delayed", severity="medium")
    return {"new": new, "vpn": vpn}


def test_an_agent_takes_a_new_ticket_from_the_queue_and_works_it_to_resolved(
    browser: Browser, agent: Any, desk_floor: dict[str, Any], tmp_path: Path
) -> None:
    ticket: Ticket = desk_floor["new"]
    browser.sign_in(agent.username)
    assert "Your queues" in browser.text()
    assert browser.text("#queue-unassigned .number") == "1"
    assert browser.text("#queue-mine .number") == "1"
    browser.shot("01-index", docs="admin-index.png")

    browser.click("#queue-unassigned")
    assert "VPN drops every hour" in browser.text("#result_list")
    assert "Payslip PDF is blank" not in browser.text("#result_list")
    browser.shot("02-queue-unassigned")
    browser.click(f'#result_list a[href*="/ticket/{ticket.pk}/change/"]')

    browser.click("#assign-to-me-form button")
    assert f"Ticket #{ticket.pk} is assigned to you." in browser.messages()
    assert browser.text("#ticket-assignee") == "you"

    attachment = tmp_path / "router-log.txt"
    attachment.write_text("12:00:01 link down\n12:00:04 link up\n")
    browser.driver.find_element(By.CSS_SELECTOR, "#reply-form input[value=internal]").click()
    browser.type("#reply-form textarea", "Router logs show the link dropping hourly; looks like the DHCP lease.")
    browser.driver.find_element(By.CSS_SELECTOR, "#id_files").send_keys(str(attachment))
    browser.click("#reply-form button[type=submit]")
    assert "Internal note added with 1 file." in browser.messages()

    browser.driver.find_element(By.CSS_SELECTOR, "#reply-form input[value=public]").click()
    browser.type("#reply-form textarea", "Thanks for the report. Which router model do you have at home?")
    browser.click("#reply-form button[type=submit]")
    assert "Reply sent to the requester." in browser.messages()

    browser.click("#move-form button[value=in_progress]")
    assert f"Ticket #{ticket.pk} is in progress." in browser.messages()
    assert "left" in browser.text(".clocks")  # the resolution clock runs
    browser.shot("03-ticket-in-progress", docs="admin-ticket.png")
    browser.type("#move-form textarea", "Asked for the router model.")
    browser.click("#move-form button[value=pending]")
    assert f"Ticket #{ticket.pk} is pending." in browser.messages()
    assert browser.text("#ticket-status") == "Pending"
    assert "paused" in browser.text(".clocks")

    browser.click("#move-form button[value=resolved]")
    assert f"Ticket #{ticket.pk} is resolved." in browser.messages()
    thread = browser.text("#thread")
    for said in ("opened the ticket", "assigned it to alice", "INTERNAL NOTE", "router-log.txt", "PUBLIC REPLY"):
        assert said in thread
    assert "moved it from in_progress to pending" in thread
    assert "Asked for the router model." in thread
    browser.shot("04-ticket-resolved")

    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == ("resolved", agent)
    assert ticket.first_response_at is not None
    notes = Comment.objects.filter(ticket=ticket)
    assert [(c.internal, c.attachments.count()) for c in notes] == [(True, 1), (False, 0)]
    moves = list(Event.objects.filter(ticket=ticket, kind="transition").values_list("old_value", "new_value", "note"))
    assert moves == [
        ("new", "in_progress", ""),
        ("in_progress", "pending", "Asked for the router model."),
        ("pending", "resolved", ""),
    ]


def test_an_incident_commander_walks_an_incident_through_every_state_with_a_post_mortem(
    browser: Browser, agent: Any, admin: Any
) -> None:
    incident = incident_create(actor=None, title="API answers 502", summary="Error rate 40 %", severity="critical")
    browser.sign_in(agent.username)
    assert browser.text("#incidents-critical .number") == "1"
    browser.click("#incidents-critical")
    browser.click(f'#result_list a[href*="/incident/{incident.pk}/change/"]')
    browser.shot("01-incident-detected")

    walk = [
        ("acknowledged", "I have it."),
        ("diagnosing", "Looking at the load balancer."),
        ("mitigating", "Rolled back the release."),
        ("resolved", "Error rate back to normal."),
        ("diagnosing", "502s are back."),
        ("mitigating", "Pool size raised."),
        ("resolved", "Stable for 30 minutes."),
    ]
    for to, note in walk:
        browser.type("#move-form textarea", note)
        browser.click(f"#move-form button[value={to}]")
        assert f"INC-{incident.pk} is {to}." in browser.messages(), browser.messages()
        if to == "acknowledged":
            browser.click("#page-again-form button")
            assert any(message.startswith("Paged again: adam") for message in browser.messages())
            browser.type("#note-form textarea", "Customer support informed.")
            browser.click("#note-form button")
            browser.driver.find_element(By.CSS_SELECTOR, "#note-form input[value=public]").click()
            browser.type("#note-form textarea", "We are investigating errors on the API.")
            browser.click("#note-form button")
            assert "Public status update posted." in browser.messages()

    # Reviewed needs a final post-mortem: the button is offered, and the refusal is a message.
    browser.click("#move-form button[value=reviewed]")
    assert any("final post-mortem" in message for message in browser.messages())
    sections = {
        "summary": "The API answered 502 for 40 minutes.",
        "impact": "40 % of API requests failed.",
        "root_cause": "The connection pool was too small for the new release.",
        "trigger": "Release 2.14.",
        "detection": "Alertmanager: error rate above 5 %.",
        "resolution": "Rollback, then a larger pool.",
        "lessons": "Load-test pool sizes before a release.",
    }
    for name, text in sections.items():
        browser.type(f"#postmortem-form textarea[name={name}]", text)
    browser.driver.find_element(By.CSS_SELECTOR, "#postmortem-form select[name=status] option[value=final]").click()
    browser.click("#postmortem-form button")
    assert "Post-mortem saved (final)." in browser.messages()
    browser.type("#action-item-form input[name=title]", "Load-test the pool size in CI")
    browser.click("#action-item-form button")
    assert any(message.startswith("Action item #") for message in browser.messages())

    browser.click("#move-form button[value=reviewed]")
    assert f"INC-{incident.pk} is reviewed." in browser.messages()
    assert browser.text("#incident-status") == "Reviewed"
    assert "#move-form" not in browser.driver.page_source
    browser.shot("02-incident-reviewed")

    incident.refresh_from_db()
    assert incident.status == Incident.Status.REVIEWED
    assert Postmortem.objects.get(incident=incident).root_cause == sections["root_cause"]
    moves = list(Event.objects.filter(incident=incident, kind="transition").values_list("new_value", flat=True))
    assert moves == [to for to, _ in walk] + ["reviewed"]
    assert Event.objects.filter(incident=incident, kind="page", actor=agent).count() == 1


def test_an_agent_starts_a_maintenance_window_and_completes_it_with_its_checks(browser: Browser, agent: Any) -> None:
    starts = timezone.now() + timedelta(days=1)
    window = maintenance_create(
        actor=agent,
        title="PostgreSQL minor upgrade",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        backup_required=False,
        checks=[{"kind": "api_health"}],
        verify_for=timedelta(0),
    )
    browser.sign_in(agent.username)
    browser.open(f"/admin/itsm/maintenancewindow/{window.pk}/change/")
    assert "Start now" in browser.text("#move-form")
    browser.click("#move-form button[value=in_progress]")
    assert f"MW-{window.pk} is in progress." in browser.messages()
    browser.click("#move-form button[value=verifying]")
    assert f"MW-{window.pk} is completed." in browser.messages()
    checklist = browser.text("#checklist")
    assert "api_health: PASSED" in checklist.replace("passed", "PASSED")
    browser.shot("01-maintenance-completed")
    window.refresh_from_db()
    assert window.status == MaintenanceWindow.Status.COMPLETED
