"""The query budget of every benchmarked endpoint (docs/benchmarks.md): at most 10 SQL queries per request with
realistic data, whatever the page holds, and no list that counts its rows (no unbounded COUNT(*))."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from itsm.models import Incident
from itsm.services.incidents import incident_create, incident_transition
from itsm.services.tickets import comment_create, ticket_transition
from tests.etags import if_match
from tests.factories import ServiceFactory, make_ticket, make_user

BUDGET = 10
# A write also writes its audit row (docs/security.md#audit-trail): one INSERT, the values before taken from the
# row the service locked (itsm.audit.remember), not read again.
WRITE_BUDGET = BUDGET + 1
TOKEN = "budget-intake-token"
pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(agent: Any, requester: Any, other_requester: Any) -> dict[str, Any]:
    """Tickets of several requesters, services and agents, each with comments and a status history; incidents."""
    second_agent = make_user("bert", "agent")
    services = [ServiceFactory.create(slug=f"svc-{n}") for n in range(3)]
    tickets = []
    for n in range(30):
        ticket = make_ticket(
            [requester, other_requester][n % 2],
            title=f"Printer {n} jams on floor {n % 4}",
            description="The printer reports a paper jam after every page; VPN users cannot print either.",
            priority=["low", "medium", "high", "critical"][n % 4],
            service=services[n % 3],
            assignee=[agent, second_agent][n % 2],
        )
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="open")
        comment_create(ticket_id=ticket.pk, author=agent, body="Looking into it.")
        comment_create(ticket_id=ticket.pk, author=agent, body="Internal: needs a new drum.", internal=True)
        tickets.append(ticket)
    incidents = []
    for n in range(3):
        # The first is linked to tickets: resolving it comments on each of them, which is not bounded by 10.
        incident = incident_create(
            actor=agent,
            title=f"Printing down {n}",
            severity="medium",
            services=services[:2],
            linked_tickets=tickets[:3] if n == 0 else [],
        )
        incident_transition(incident_id=incident.pk, actor=agent, to="resolved")
        incidents.append(incident)
    return {"tickets": tickets, "incidents": incidents, "services": services}


def alertmanager_delivery(group: int, alerts: int = 10) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="BenchAlert{group}"}}',
        "status": "firing",
        "receiver": "itsm",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": f"BenchAlert{group}", "service": "svc-0", "severity": "warning", "n": str(n)},
                "annotations": {"summary": "Error rate above 5%"},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": f"budget-{group}-{n}",
            }
            for n in range(alerts)
        ],
    }


def requests(desk: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    ticket, incident, service = desk["tickets"][5], desk["incidents"][0], desk["services"][0]
    return {
        "list": ("get", "/api/v1/tickets/", None),
        "filtered": ("get", "/api/v1/tickets/?status=open&priority=high&ordering=-created_at", None),
        "search": ("get", "/api/v1/tickets/?search=printer+jams", None),
        "detail": ("get", f"/api/v1/tickets/{ticket.pk}/", None),
        "create": (
            "post",
            "/api/v1/tickets/",
            {"title": "VPN drops", "description": "Every five minutes.", "priority": "high", "service": service.pk},
        ),
        "transition": ("post", f"/api/v1/incidents/{incident.pk}/transition/", {"to": "diagnosing"}),
    }


@pytest.mark.parametrize("scenario", ["list", "filtered", "search", "detail", "create", "transition"])
def test_every_benchmarked_endpoint_stays_within_the_query_budget(
    scenario: str,
    desk: dict[str, Any],
    client_for: Callable[[Any], APIClient],
    agent: Any,
    django_assert_max_num_queries: Any,
) -> None:
    method, url, body = requests(desk)[scenario]
    client = client_for(agent)
    # A move sends the incident's ETag; a well-formed If-Match costs no query (the service compares under its lock).
    headers = if_match(desk["incidents"][0]) if scenario == "transition" else {}
    with django_assert_max_num_queries(BUDGET if method == "get" else WRITE_BUDGET):
        response = getattr(client, method)(url, body, format="json", **headers)
    assert response.status_code in (200, 201), response.content
    if scenario in ("list", "filtered", "search"):
        assert response.json()["results"], "the page must hold rows, or the budget proves nothing"


def test_the_requesters_list_stays_within_the_budget(
    desk: dict[str, Any], as_requester: APIClient, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(BUDGET):
        response = as_requester.get("/api/v1/tickets/?page_size=50")
    assert len(response.json()["results"]) == 15


def test_an_incident_moves_back_and_forth_within_the_budget(
    desk: dict[str, Any], as_agent: APIClient, django_assert_max_num_queries: Any
) -> None:
    """The benchmark's transition scenario: resolved -> diagnosing -> resolved, over and over."""
    url = f"/api/v1/incidents/{desk['incidents'][1].pk}/transition/"
    headers = if_match(desk["incidents"][1])
    for target in ("diagnosing", "resolved", "diagnosing"):
        with django_assert_max_num_queries(WRITE_BUDGET):
            response = as_agent.post(url, {"to": target}, format="json", **headers)
        assert response.status_code == 200, response.content
        headers = {"HTTP_IF_MATCH": response["ETag"]}  # each move answers with the next ETag to send
        assert response.json()["status"] == target


@pytest.fixture
def alertmanager(anonymous: APIClient, settings: Any) -> APIClient:
    settings.ITSM_ALERTMANAGER_TOKEN = TOKEN
    anonymous.credentials(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    return anonymous


def deliver(client: APIClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/alerts/alertmanager/", body, format="json")
    assert response.status_code == 200, response.content
    result: dict[str, Any] = response.json()
    return result


def test_a_repeated_alertmanager_delivery_of_ten_alerts_stays_within_the_budget(
    desk: dict[str, Any], alertmanager: APIClient, django_assert_max_num_queries: Any
) -> None:
    """The benchmark's intake: Alertmanager repeats a group's firing alerts; every fingerprint is known."""
    deliver(alertmanager, alertmanager_delivery(1))
    with django_assert_max_num_queries(BUDGET):
        result = deliver(alertmanager, alertmanager_delivery(1))
    assert result["alerts_updated"] == 10
    assert Incident.objects.filter(group_key__contains="BenchAlert1").count() == 1


def test_the_queries_of_a_delivery_do_not_grow_with_its_alerts(desk: dict[str, Any], alertmanager: APIClient) -> None:
    """A delivery that opens an incident pages on-call (about two dozen queries, once per alert group); the
    alerts themselves are stored with a fixed number of queries, one alert or ten."""
    counts = {}
    for group, alerts in ((1, 1), (2, 10)):
        with CaptureQueriesContext(connection) as queries:
            result = deliver(alertmanager, alertmanager_delivery(group, alerts))
        assert result["alerts_created"] == alerts
        assert result["incidents_opened"] == 1
        counts[alerts] = len(queries)
    assert counts[1] == counts[10], counts


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/tickets/",
        "/api/v1/tickets/?status=open&priority=high&ordering=-created_at",
        "/api/v1/tickets/?search=printer",
        "/api/v1/tickets/?page=2&page_size=10",
        "/api/v1/incidents/",
        "/api/v1/alerts/",
    ],
)
def test_no_list_counts_its_rows(url: str, desk: dict[str, Any], as_agent: APIClient) -> None:
    with CaptureQueriesContext(connection) as queries:
        response = as_agent.get(url)
    assert response.status_code == 200, response.content
    sqls = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in sqls if "COUNT(*)" in sql.upper()], sqls
    if url.startswith("/api/v1/tickets/"):
        listing = [sql for sql in sqls if sql.startswith('SELECT "itsm_ticket"')]
        assert listing, sqls
        assert all(" LIMIT " in sql for sql in listing), listing
