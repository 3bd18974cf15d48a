"""The desk in a real browser: Debian's headless Chromium, driven by Selenium, against a live server on loopback
(pytest-django's live_server, on the test database). An agent works a ticket from "unassigned in my teams" to
resolved; an incident commander walks an incident through every state and writes its post-mortem; an agent starts
and completes a maintenance window. Every page is screenshot under the test's tmp_path (the paths are printed), and
any message on the browser's console fails the test (tests/browser.py).

With UPDATE_DOCS_IMAGES=1 the ticket page and the index are also copied to docs/images/ for the README.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By

from itsm.models import Comment, Event, Incident, MaintenanceWindow, Postmortem, Service, Team, Ticket
from itsm.services.incidents import incident_create
from itsm.services.maintenance import maintenance_create
from itsm.services.tickets import comment_create, ticket_transition
from tests.browser import BROWSER_TESTS, Browser
from tests.factories import make_ticket, make_user

pytestmark = BROWSER_TESTS


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
    browser.sign_in_to_admin(agent.username)
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
    browser.sign_in_to_admin(agent.username)
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


def test_an_agent_starts_a_maintenance_window_and_completes_it_with_its_checks(
    browser: Browser, agent: Any, api_health_served: str
) -> None:
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
    browser.sign_in_to_admin(agent.username)
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
