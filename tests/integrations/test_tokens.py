"""Integration tokens: a non-human caller gets a scope and an expiry, and an admin lists and revokes them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from itsm.models import IntegrationToken, Ticket
from itsm.roles import Role, role_of
from itsm.services.integrations import integration_token_issue, integration_token_revoke
from tests.factories import ServiceFactory, make_ticket

pytestmark = pytest.mark.django_db

PAGES = "/admin/itsm/integrationtoken/"
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def service() -> Any:
    return ServiceFactory.create()


def caller(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def issued(name: str, scope: str, **kwargs: Any) -> tuple[IntegrationToken, APIClient]:
    row, token = integration_token_issue(name=name, scope=scope, **kwargs)
    return row, caller(token)


def test_a_read_only_token_reads_everything_an_agent_reads_and_cannot_write(requester: Any) -> None:
    _, client = issued("dashboards", "read")
    ticket = make_ticket(requester, title="Printer")
    assert client.get(f"/api/v1/tickets/{ticket.pk}/").status_code == 200  # another person's ticket: agent reads
    assert client.get("/api/v1/incidents/").status_code == 200
    response = client.post("/api/v1/tickets/", {"title": "From a script"}, format="json")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == "This integration token's scope (read) does not allow POST on /api/v1/tickets/."
    assert client.patch(f"/api/v1/tickets/{ticket.pk}/", {"title": "x"}, format="json").status_code == 403
    assert Ticket.objects.get().title == "Printer"


def test_a_tickets_token_files_tickets_but_touches_no_incident(service: Any) -> None:
    row, client = issued("crm-sync", "tickets")
    response = client.post("/api/v1/tickets/", {"title": "Refund request"}, format="json")
    assert response.status_code == 201, response.json()
    assert Ticket.objects.get().requester == row.account  # recorded under the integration's own account
    assert client.get("/api/v1/services/").status_code == 200  # the catalogue, to file tickets against it
    assert client.get("/api/v1/incidents/").status_code == 403
    body = {"title": "Checkout down", "severity": "critical", "services": [service.pk]}
    assert client.post("/api/v1/incidents/", body, format="json").status_code == 403


def test_an_incidents_token_opens_incidents_and_reads_no_ticket(service: Any) -> None:
    _, client = issued("monitoring", "incidents")
    body = {"title": "Checkout down", "severity": "critical", "services": [service.pk], "summary": "All 5xx"}
    assert client.post("/api/v1/incidents/", body, format="json").status_code == 201
    assert client.get("/api/v1/tickets/").status_code == 403


def test_the_scope_sits_on_top_of_the_role_a_tickets_token_is_an_agent() -> None:
    row, client = issued("crm-sync", "tickets")
    assert role_of(row.account) == Role.AGENT
    ticket = client.post("/api/v1/tickets/", {"title": "Refund request"}, format="json").json()
    assert client.delete(f"/api/v1/tickets/{ticket['id']}/").status_code == 403  # only admins delete
    assert Ticket.objects.filter(pk=ticket["id"]).exists()


def test_an_admin_token_does_what_an_admin_does(requester: Any) -> None:
    row, client = issued("provisioning", "admin")
    assert role_of(row.account) == Role.ADMIN
    ticket = make_ticket(requester, title="Printer")
    assert client.delete(f"/api/v1/tickets/{ticket.pk}/").status_code == 204


@pytest.mark.parametrize("scope", ["read", "tickets", "incidents", "admin"])
def test_no_token_of_any_scope_logs_itself_out_or_ends_other_tokens(scope: str) -> None:
    row, client = issued(f"tool-{scope}", scope)
    for path in ("/api/v1/auth/logout/", "/api/v1/auth/logoutall/"):
        assert client.post(path).status_code == 403
    assert client.get("/api/v1/me/notification-preferences/").status_code == 403
    assert IntegrationToken.objects.get(pk=row.pk).revoked_at is None


def test_a_token_works_until_its_expiry_and_not_a_second_after() -> None:
    with time_machine.travel(NOW, tick=False) as clock:
        _, client = issued("nightly-report", "read", expires_at=NOW + timedelta(days=30))
        clock.move_to(NOW + timedelta(days=30) - timedelta(seconds=1))
        assert client.get("/api/v1/tickets/").status_code == 200
        clock.move_to(NOW + timedelta(days=30))
        response = client.get("/api/v1/tickets/")
    assert response.status_code == 401
    assert response.json()["detail"] == "This integration token expired: an admin issues a new one."


def test_a_revoked_token_is_refused_on_its_next_request(admin: Any) -> None:
    row, client = issued("crm-sync", "tickets")
    assert client.get("/api/v1/tickets/").status_code == 200
    assert integration_token_revoke(row, by=admin) is True
    response = client.get("/api/v1/tickets/")
    assert response.status_code == 401
    assert response.json()["detail"] == "This integration token was revoked."
    assert integration_token_revoke(row, by=admin) is False  # once


def test_a_token_with_one_character_changed_is_refused() -> None:
    _, token = integration_token_issue(name="crm-sync", scope="read")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert caller(forged).get("/api/v1/tickets/").status_code == 401


def test_the_account_cannot_sign_in_with_a_password() -> None:
    row, _ = integration_token_issue(name="crm-sync", scope="admin")
    assert not row.account.has_usable_password()
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": row.account.username, "password": ""}, format="json"
    )
    assert response.status_code == 400


def test_a_request_costs_one_query_for_the_token_and_the_last_use_is_written_once_a_minute(
    django_assert_num_queries: Any,
) -> None:
    with time_machine.travel(NOW, tick=False) as clock:
        row, client = issued("dashboards", "read")
        client.get("/api/v1/services/")
        assert IntegrationToken.objects.get(pk=row.pk).last_used_at == NOW
        clock.move_to(NOW + timedelta(seconds=30))
        with django_assert_num_queries(2):  # the token with its account; the page of services
            client.get("/api/v1/services/")
        assert IntegrationToken.objects.get(pk=row.pk).last_used_at == NOW


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"name": "", "scope": "read"}, "name", "Use 1 to 100 letters"),
        ({"name": "crm sync", "scope": "read"}, "name", "Use 1 to 100 letters"),
        ({"name": "crm", "scope": "root"}, "scope", "Unknown scope 'root'"),
        ({"name": "crm", "scope": "read", "expires_at": NOW - timedelta(days=1)}, "expires_at", "in the future"),
        ({"name": "crm", "scope": "read", "expires_at": NOW + timedelta(days=366)}, "expires_at", "at most 365"),
    ],
)
def test_bad_values_are_refused_per_field(values: dict[str, Any], field: str, message: str) -> None:
    from itsm.exceptions import InvalidInput

    with time_machine.travel(NOW, tick=False), pytest.raises(InvalidInput) as refused:
        integration_token_issue(**values)
    assert message in refused.value.errors[field][0]
    assert not IntegrationToken.objects.exists()


def test_a_name_is_taken_once_in_any_case() -> None:
    from itsm.exceptions import InvalidInput

    integration_token_issue(name="CRM-sync", scope="read")
    with pytest.raises(InvalidInput) as refused:
        integration_token_issue(name="crm-SYNC", scope="admin")
    assert refused.value.errors == {"name": ["An integration named 'crm-SYNC' already exists."]}


# The admin


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_admin_issues_a_token_and_sees_it_once(admin: Any) -> None:
    day = (timezone.now() + timedelta(days=30)).date().isoformat()
    client = logged_in(admin)
    body = {"name": "monitoring", "scope": "incidents", "expires_at_0": day, "expires_at_1": "0:00"}
    page = client.post(f"{PAGES}add/", body, follow=True).content.decode()
    row = IntegrationToken.objects.get()
    assert (row.name, row.scope, row.created_by) == ("monitoring", "incidents", admin)
    token = re.search(r"(itsm_it_[A-Za-z0-9_-]{20,})", page).group(1)  # type: ignore[union-attr]
    assert caller(token).get("/api/v1/incidents/").status_code == 200
    assert token not in client.get(PAGES).content.decode()
    assert token not in client.get(f"{PAGES}{row.pk}/change/").content.decode()


def test_the_issue_form_says_what_is_wrong_beside_the_field(admin: Any) -> None:
    integration_token_issue(name="monitoring", scope="read")
    response = logged_in(admin).post(
        f"{PAGES}add/", {"name": "Monitoring", "scope": "read", "expires_at_0": "2000-01-01", "expires_at_1": "0:00"}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "name": ["An integration named 'Monitoring' already exists."],
        "expires_at": ["The expiry must be in the future."],
    }
    assert IntegrationToken.objects.count() == 1


def test_the_list_shows_each_state_in_a_fixed_number_of_queries(admin: Any, django_assert_max_num_queries: Any) -> None:
    with time_machine.travel(NOW, tick=False) as clock:
        integration_token_issue(name="live-one", scope="read")
        integration_token_issue(name="short", scope="read", expires_at=NOW + timedelta(days=1))
        revoked, _ = integration_token_issue(name="gone", scope="admin", created_by=admin)
        integration_token_revoke(revoked, by=admin)
        clock.move_to(NOW + timedelta(days=2))
        client = logged_in(admin)
        with django_assert_max_num_queries(8):
            text = client.get(PAGES).content.decode()
    for state in ("live", "expired", "revoked"):
        assert f'<td class="field-state">{state}</td>' in text


def test_an_admin_revokes_tokens_from_the_list_and_cannot_edit_or_delete_one(admin: Any) -> None:
    row, client = issued("crm-sync", "tickets")
    response = logged_in(admin).post(PAGES, {"action": "revoke_tokens", "_selected_action": [row.pk]}, follow=True)
    assert "1 token(s) revoked." in response.content.decode()
    row.refresh_from_db()
    assert row.revoked_by == admin
    assert client.get("/api/v1/tickets/").status_code == 401
    assert logged_in(admin).post(f"{PAGES}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert IntegrationToken.objects.filter(pk=row.pk).exists()


def test_agents_do_not_see_the_tokens(agent: Any) -> None:
    assert logged_in(agent).get(PAGES).status_code == 403


# The command


def test_the_command_issues_lists_and_revokes() -> None:
    out, err = StringIO(), StringIO()
    call_command("integration_token", "issue", "backup-check", "--scope", "read", "--days", "7", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert "Issued backup-check (read)" in err.getvalue()
    assert caller(token).get("/api/v1/backups/").status_code == 200
    listing = StringIO()
    call_command("integration_token", "list", stdout=listing)
    assert listing.getvalue().startswith("backup-check\tread\tlive\texpires ")
    call_command("integration_token", "revoke", "backup-check", stdout=StringIO())
    assert caller(token).get("/api/v1/backups/").status_code == 401


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["issue", "x", "--scope", "read", "--days", "0"], "--days: a token lives at least one day."),
        (["issue", "x", "--scope", "read", "--days", "400"], "expires_at: A token may live at most 365 days"),
        (["revoke", "nobody"], "No integration token is named 'nobody'"),
    ],
)
def test_the_command_says_what_is_wrong(arguments: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        call_command("integration_token", *arguments, stdout=StringIO(), stderr=StringIO())
