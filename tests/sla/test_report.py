"""GET /api/v1/reports/tickets/: the figures of a small known set of tickets (every one worked out by hand below),
the period, who may read it, and its fixed number of queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from itsm.models import Service, SlaPolicy, SlaPolicyScope, Ticket
from itsm.queries.reports import ticket_report
from itsm.services.satisfaction import ticket_rate
from itsm.services.sla import sla_policy_default
from itsm.services.tickets import comment_create, ticket_transition
from tests.factories import ServiceFactory, make_ticket
from tests.sla.conftest import MONDAY, minutes

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/tickets/"
PERIOD = {"from": (MONDAY - timedelta(hours=1)).isoformat(), "to": (MONDAY + timedelta(hours=1)).isoformat()}
# When the report is read: after every event below, before any open ticket's resolution target.
READ_AT = MONDAY + timedelta(hours=5)


def at(offset: float, work: Any, *args: Any, **kwargs: Any) -> Any:
    with time_machine.travel(MONDAY + minutes(offset), tick=False):
        return work(*args, **kwargs)


@pytest.fixture
def desk(requester: Any, agent: Any) -> dict[str, Any]:
    """Five tickets created on Monday 10:00 UTC, 24×7 clocks, and two outside the period:

    | ticket | service, priority, policy (response / resolution) | reply | resolved | rating |
    |---|---|---|---|---|
    | t1 | email, high, Mail (20 min / 2 h) | +10 min, met | +60 min, met | 5 |
    | t2 | email, high, Mail | +30 min, breached | +180 min, breached | 2 |
    | t3 | vpn, medium, Default (4 h / 3 days) | none: breached at +4 h | open, target not due | - |
    | t4 | none, high, Default (1 h / 1 day) | none, but resolved in time: met | +30 min, met | - |
    | t5 | vpn, medium, Default | +60 min, met | open, target not due | - |
    """
    email: Service = ServiceFactory.create(slug="email")
    vpn: Service = ServiceFactory.create(slug="vpn")
    mail = SlaPolicy.objects.create(
        name="Mail", calendar=sla_policy_default().calendar, high_response_minutes=20, high_resolution_minutes=120
    )
    SlaPolicyScope.objects.create(policy=mail, service=email)
    t1, t2, t3, t4, t5 = (
        at(0, make_ticket, requester, service=service, priority=priority)
        for service, priority in ((email, "high"), (email, "high"), (vpn, "medium"), (None, "high"), (vpn, "medium"))
    )
    at(10, comment_create, ticket_id=t1.pk, author=agent, body="On it.")
    at(30, comment_create, ticket_id=t2.pk, author=agent, body="On it.")
    at(60, comment_create, ticket_id=t5.pk, author=agent, body="On it.")
    at(30, ticket_transition, ticket_id=t4.pk, actor=agent, to="resolved")
    at(60, ticket_transition, ticket_id=t1.pk, actor=agent, to="resolved")
    at(180, ticket_transition, ticket_id=t2.pk, actor=agent, to="resolved")
    at(200, ticket_rate, ticket_id=t1.pk, actor=requester, score=5)
    at(200, ticket_rate, ticket_id=t2.pk, actor=requester, score=2, comment="Slow.")
    # Outside the period: opened two days earlier and resolved on Monday; opened after it ended.
    earlier = at(-2 * 24 * 60, make_ticket, requester, service=email, priority="high")
    at(30, ticket_transition, ticket_id=earlier.pk, actor=agent, to="resolved")
    at(120, make_ticket, requester, service=email, priority="high")
    return {"email": email, "vpn": vpn, "mail": mail, "tickets": [t1, t2, t3, t4, t5]}


def row(
    created: int,
    resolved: int,
    response: tuple[int, int],
    resolution: tuple[int, int],
    medians: tuple[int | None, int | None],
    ratings: int = 0,
    average: float | None = None,
    **labels: Any,
) -> dict[str, Any]:
    def compliance(met: int, breached: int) -> float | None:
        return round(met / (met + breached), 4) if met + breached else None

    return {
        **labels,
        "created": created,
        "resolved": resolved,
        "first_response_met": response[0],
        "first_response_breached": response[1],
        "first_response_compliance": compliance(*response),
        "resolution_met": resolution[0],
        "resolution_breached": resolution[1],
        "resolution_compliance": compliance(*resolution),
        "median_first_response_seconds": medians[0],
        "median_resolution_seconds": medians[1],
        "ratings": ratings,
        "average_score": average,
    }


def read(client: APIClient, **query: str) -> Any:
    with time_machine.travel(READ_AT, tick=False):
        return client.get(URL, query or PERIOD)


def test_the_report_gives_each_figure_in_total_and_per_service_priority_and_policy(
    desk: dict[str, Any], as_agent: APIClient
) -> None:
    response = read(as_agent)
    assert response.status_code == 200, response.content
    report = response.json()

    assert report["from"] == "2024-06-03T09:00:00Z"
    assert report["to"] == "2024-06-03T11:00:00Z"
    # Medians: replies after 10, 30 and 60 min; resolutions after 60, 180 and 30 min.
    assert report["total"] == row(5, 3, (3, 2), (2, 1), (30 * 60, 60 * 60), ratings=2, average=3.5)
    assert report["by_service"] == [
        row(2, 2, (1, 1), (1, 1), (20 * 60, 120 * 60), 2, 3.5, service_id=desk["email"].pk, service="email"),
        row(2, 0, (1, 1), (0, 0), (60 * 60, None), service_id=desk["vpn"].pk, service="vpn"),
        row(1, 1, (1, 0), (1, 0), (None, 30 * 60), service_id=None, service=None),
    ]
    assert report["by_priority"] == {
        "critical": None,
        "high": row(3, 3, (2, 1), (2, 1), (20 * 60, 60 * 60), ratings=2, average=3.5),
        "medium": row(2, 0, (1, 1), (0, 0), (60 * 60, None)),
        "low": None,
    }
    default = sla_policy_default()
    assert report["by_sla_policy"] == [
        row(3, 1, (2, 1), (1, 0), (60 * 60, 30 * 60), sla_policy_id=default.pk, sla_policy="Default"),
        row(2, 2, (1, 1), (1, 1), (20 * 60, 120 * 60), 2, 3.5, sla_policy_id=desk["mail"].pk, sla_policy="Mail"),
    ]


def test_an_open_ticket_past_its_due_time_counts_as_breached_once_it_is(
    desk: dict[str, Any], as_agent: APIClient
) -> None:
    with time_machine.travel(MONDAY + timedelta(days=4), tick=False):
        total = as_agent.get(URL, PERIOD).json()["total"]
    # t3 and t5 (medium, 3 days) are now past their resolution target too.
    assert (total["resolution_met"], total["resolution_breached"]) == (2, 3)


def test_a_period_without_tickets_has_zeros_and_no_rates(as_admin: APIClient) -> None:
    response = read(as_admin)
    assert response.status_code == 200
    report = response.json()
    assert report["total"] == row(0, 0, (0, 0), (0, 0), (None, None))
    assert report["by_service"] == report["by_sla_policy"] == []
    assert set(report["by_priority"].values()) == {None}


def test_the_report_defaults_to_the_last_30_days(desk: dict[str, Any], as_agent: APIClient) -> None:
    with time_machine.travel(MONDAY + timedelta(days=10), tick=False):
        report = as_agent.get(URL).json()
    assert report["total"]["created"] == 7  # the five, and the two opened around the period above


def test_requesters_may_not_read_the_ticket_report(as_requester: APIClient, anonymous: APIClient) -> None:
    assert as_requester.get(URL).status_code == 403
    assert anonymous.get(URL).status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "last tuesday"}, "from"),
        ({"to": "2024-13-40T00:00:00Z"}, "to"),
        ({"from": "2024-06-03T12:00:00Z", "to": "2024-06-03T11:00:00Z"}, "from"),
        ({"from": "2000-01-01T00:00:00Z", "to": "2024-06-03T11:00:00Z"}, "from"),
    ],
)
def test_a_malformed_period_is_a_400_naming_the_parameter(
    as_agent: APIClient, query: dict[str, str], field: str
) -> None:
    response = as_agent.get(URL, query)
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_the_report_runs_four_queries_whatever_the_data(desk: dict[str, Any], requester: Any, agent: Any) -> None:
    start, end = MONDAY - timedelta(hours=1), MONDAY + timedelta(hours=1)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            ticket_report(start=start, end=end, now=READ_AT)
        return len(captured)

    assert queries() == 4
    for number in range(6):
        service = ServiceFactory.create()
        policy = SlaPolicy.objects.create(name=f"Policy {number}", calendar=sla_policy_default().calendar)
        SlaPolicyScope.objects.create(policy=policy, service=service)
        ticket = at(number, make_ticket, requester, service=service, priority="low")
        at(number + 1, ticket_transition, ticket_id=ticket.pk, actor=agent, to="resolved")
        at(number + 2, ticket_rate, ticket_id=ticket.pk, actor=requester, score=4)
    assert Ticket.objects.filter(created_at__gte=start, created_at__lt=end).count() == 11
    assert queries() == 4
