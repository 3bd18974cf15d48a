"""The service desk's whole story in two real browsers on one live server: a requester in the portal, an agent in the
admin. The requester opens a ticket with a file; the agent finds it in "unassigned in my teams", assigns it to
themself, writes an internal note and a public reply and moves it to pending; the requester sees the reply and not
the note, and answers (which gives the ticket back to the agents); the agent resolves; the requester rates it; the
ticket report counts it. Screenshots of each page under tmp_path; any console message fails (tests/browser.py).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient
from selenium.webdriver.support.ui import Select

from itsm.models import Comment, Event, Service, Team, Ticket, TicketRating
from tests.browser import BROWSER_TESTS
from tests.factories import make_ticket

pytestmark = BROWSER_TESTS


def test_a_ticket_goes_from_the_portal_through_the_desk_to_a_rating_the_report_counts(
    open_browser: Any, requester: Any, agent: Any, other_requester: Any, tmp_path: Path
) -> None:
    team = Team.objects.create(name="Service desk", slug="service-desk")
    team.members.add(agent)
    Service.objects.create(name="VPN", slug="vpn", team=team)
    payroll = Service.objects.create(name="Payroll", slug="payroll", team=Team.objects.create(name="Finance IT"))
    make_ticket(other_requester, title="Payslip PDF is blank", service=payroll)  # not the agent's teams
    screenshot = tmp_path / "vpn-error.txt"
    screenshot.write_text("Error 809: the network connection between your computer and the VPN server was lost\n")
    rita, alice = open_browser("requester"), open_browser("agent")

    # The requester opens a ticket with a file.
    rita.sign_in_to_portal(requester.username)
    assert rita.h1() == "My tickets"
    rita.click("a.button[href='/portal/tickets/new/']")
    rita.type("#id_title", "VPN drops every 10 minutes")
    rita.type("#id_description", "Since Monday, at home and in the office.")
    Select(rita.find("#id_service")).select_by_visible_text("VPN")
    rita.find("#id_attachments").send_keys(str(screenshot))
    rita.click("form.form button[type=submit]")
    assert "is open. We will answer here and by e-mail." in rita.text()
    ticket = Ticket.objects.get(title="VPN drops every 10 minutes")
    assert (ticket.requester, ticket.service.slug if ticket.service else None) == (requester, "vpn")
    rita.shot("01-opened")

    # The agent finds it in "unassigned in my teams" (and not the other team's ticket), and takes it.
    alice.sign_in_to_admin(agent.username)
    assert alice.text("#queue-unassigned .number") == "1"
    alice.click("#queue-unassigned")
    assert "VPN drops every 10 minutes" in alice.text("#result_list")
    assert "Payslip PDF is blank" not in alice.text("#result_list")
    alice.shot("02-unassigned-in-my-teams")
    alice.click(f'#result_list a[href*="/ticket/{ticket.pk}/change/"]')
    assert "vpn-error.txt" in alice.text("#thread")
    alice.click("#assign-to-me-form button")
    assert f"Ticket #{ticket.pk} is assigned to you." in alice.messages()

    # An internal note, a public reply, pending.
    alice.find("#reply-form input[value=internal]").click()
    alice.type("#reply-form textarea", "INTERNAL: the gateway shows DPD timeouts from her home ISP.")
    alice.click("#reply-form button[type=submit]")
    assert "Internal note added." in alice.messages()
    alice.find("#reply-form input[value=public]").click()
    alice.type("#reply-form textarea", "Which version of the VPN client do you have? It is under Help, About.")
    alice.click("#reply-form button[type=submit]")
    assert "Reply sent to the requester." in alice.messages()
    alice.click("#move-form button[value=in_progress]")
    alice.type("#move-form textarea", "Asked for the client version.")
    alice.click("#move-form button[value=pending]")
    assert f"Ticket #{ticket.pk} is pending." in alice.messages()
    alice.shot("03-pending")

    # The requester sees the reply, never the note, and answers; the ticket is back with the agents.
    rita.open(f"/portal/tickets/{ticket.pk}/")
    page = rita.text()
    assert "Which version of the VPN client do you have?" in page
    assert "INTERNAL" not in page
    assert "INTERNAL" not in rita.driver.page_source
    assert rita.text(".facts .status") == "Waiting for you"
    rita.shot("04-waiting-for-you")
    rita.type("#id_body", "Version 5.2.1, on Windows 11.")
    rita.click("form[action$='/reply/'] button[type=submit]")
    assert "Your reply was added." in rita.text()
    assert rita.text(".facts .status") == "In progress"

    # The agent sees the answer in the thread, with the ticket in progress again, and resolves it.
    alice.open(f"/admin/itsm/ticket/{ticket.pk}/change/")
    assert "Version 5.2.1, on Windows 11." in alice.text("#thread")
    assert alice.text("#ticket-status") == "In Progress"
    alice.type("#reply-form textarea", "Version 5.3 fixes the keepalive; it is installed on your laptop now.")
    alice.click("#reply-form button[type=submit]")
    alice.click("#move-form button[value=resolved]")
    assert f"Ticket #{ticket.pk} is resolved." in alice.messages()
    alice.shot("05-resolved")

    # The requester rates it.
    rita.open(f"/portal/tickets/{ticket.pk}/")
    assert "Rate our help" in rita.text()
    rita.shot("06-rate-our-help")
    rita.find("label[for='id_score_4']").click()  # the fifth choice: 5, excellent
    rita.type("#id_comment", "Fixed within the day, thank you.")
    rita.click("#rating-form button[type=submit]")
    assert "Thank you for your rating." in rita.text()
    assert "You rated this ticket 5 of 5." in rita.text()
    rita.shot("07-rated")

    # What was recorded, and the report that counts it.
    notes = Comment.objects.filter(ticket=ticket).order_by("created_at", "id")
    said = [(c.author, c.internal) for c in notes]
    assert said == [(agent, True), (agent, False), (requester, False), (agent, False)]
    assert list(
        Event.objects.filter(ticket=ticket, kind=Event.Kind.TRANSITION)
        .order_by("created_at", "id")
        .values_list("old_value", "new_value")
    ) == [("new", "in_progress"), ("in_progress", "pending"), ("pending", "in_progress"), ("in_progress", "resolved")]
    assert (TicketRating.objects.get(ticket=ticket).score, TicketRating.objects.get().rated_by) == (5, requester)
    api = APIClient()
    api.force_authenticate(agent)
    day = timezone.now()
    response = api.get(
        "/api/v1/reports/tickets/",
        {"from": (day - timedelta(hours=1)).isoformat(), "to": (day + timedelta(hours=1)).isoformat()},
    )
    assert response.status_code == 200, response.content
    by_service = {row["service"]: row for row in response.json()["by_service"]}
    vpn = by_service["vpn"]
    assert (vpn["created"], vpn["resolved"], vpn["ratings"], vpn["average_score"]) == (1, 1, 1, 5.0)
    total = response.json()["total"]
    assert (total["created"], total["resolved"], total["ratings"]) == (2, 1, 1)
