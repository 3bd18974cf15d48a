"""Which SLA policy a ticket runs on: the most specific case that matches its service and priority (service and
priority, then service, then priority), else the default; the ticket records it, and a change of service or
priority, or of the policies, puts it on the policy that applies now."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, transaction

from itsm.models import Event, Service, SlaPolicy, SlaPolicyScope, Ticket
from itsm.services.sla import sla_policy_default, sla_policy_for, sla_recompute_open_tickets
from itsm.services.tickets import ticket_transition, ticket_update
from tests.factories import ServiceFactory, make_ticket
from tests.sla.conftest import MONDAY, fresh, minutes

pytestmark = pytest.mark.django_db


@pytest.fixture
def email() -> Service:
    return ServiceFactory.create(name="E-mail", slug="email")


@pytest.fixture
def vpn() -> Service:
    return ServiceFactory.create(name="VPN", slug="vpn")


def policy(name: str, high_response: int, *cases: tuple[Service | None, str]) -> SlaPolicy:
    """A policy on the default's calendar whose high-priority response target tells it apart, applying to `cases`."""
    made = SlaPolicy.objects.create(
        name=name, calendar=sla_policy_default().calendar, high_response_minutes=high_response
    )
    for service, priority in cases:
        SlaPolicyScope.objects.create(policy=made, service=service, priority=priority)
    return made


def policy_events(ticket: Ticket) -> list[tuple[str, str, Any]]:
    return list(
        Event.objects.filter(ticket=ticket, field="sla_policy")
        .order_by("id")
        .values_list("old_value", "new_value", "actor")
    )


# Precedence


def test_with_no_case_named_every_ticket_runs_on_the_default(email: Service) -> None:
    assert sla_policy_for(service=email, priority="high") == sla_policy_default()
    assert sla_policy_for(service=None, priority="low") == sla_policy_default()


def test_a_priority_case_beats_the_default(email: Service) -> None:
    urgent = policy("Urgent", 30, (None, "high"))

    assert sla_policy_for(service=email, priority="high") == urgent
    assert sla_policy_for(service=None, priority="high") == urgent
    assert sla_policy_for(service=email, priority="medium") == sla_policy_default()


def test_a_service_case_beats_a_priority_case(email: Service, vpn: Service) -> None:
    policy("Urgent", 30, (None, "high"))
    mail = policy("Mail", 20, (email, ""))

    assert sla_policy_for(service=email, priority="high") == mail
    assert sla_policy_for(service=email, priority="low") == mail
    assert sla_policy_for(service=vpn, priority="high").name == "Urgent"
    assert sla_policy_for(service=None, priority="high").name == "Urgent"


def test_a_service_and_priority_case_beats_a_service_case(email: Service) -> None:
    policy("Urgent", 30, (None, "high"))
    policy("Mail", 20, (email, ""))
    mail_urgent = policy("Mail urgent", 10, (email, "high"))

    assert sla_policy_for(service=email, priority="high") == mail_urgent
    assert sla_policy_for(service=email, priority="medium").name == "Mail"


def test_the_default_policy_may_name_cases_too_and_they_count_as_specific(email: Service) -> None:
    policy("Urgent", 30, (None, "high"))
    SlaPolicyScope.objects.create(policy=sla_policy_default(), service=email, priority="")

    assert sla_policy_for(service=email, priority="high") == sla_policy_default()


@pytest.mark.parametrize(
    ("cases", "expected"),
    [
        ([], "Default"),
        (["priority"], "By priority"),
        (["priority", "service"], "By service"),
        (["priority", "service", "both"], "By both"),
        (["service", "both"], "By both"),
        (["priority", "both"], "By both"),
    ],
)
def test_a_new_ticket_records_the_most_specific_policy_and_takes_its_targets(
    requester: Any, email: Service, cases: list[str], expected: str
) -> None:
    targets = {"priority": ("By priority", 30, (None, "high")), "service": ("By service", 20, (email, ""))}
    targets["both"] = ("By both", 10, (email, "high"))
    made = {key: policy(*targets[key]) for key in cases}

    with time_machine.travel(MONDAY, tick=False):
        ticket = fresh(make_ticket(requester, service=email, priority="high"))

    assert ticket.sla_policy is not None
    assert ticket.sla_policy.name == expected
    minutes_by_name = {"Default": 60, **{made[key].name: made[key].high_response_minutes for key in made}}
    assert ticket.response_due_at == MONDAY + minutes(minutes_by_name[expected])


# What the database holds


def test_two_policies_cannot_claim_the_same_case(email: Service) -> None:
    policy("Mail", 20, (email, "high"), (email, ""))
    for case in ((email, "high"), (email, "")):
        with pytest.raises(IntegrityError), transaction.atomic():
            policy("Other", 25, case)
    policy("Urgent", 30, (None, "high"))
    with pytest.raises(IntegrityError), transaction.atomic():
        policy("Other urgent", 25, (None, "high"))


def test_a_case_must_name_a_service_or_a_priority_or_both() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        policy("Nothing", 25, (None, ""))


def test_a_case_with_an_unknown_priority_is_refused_by_the_database() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        policy("Odd", 25, (None, "urgent"))


def test_a_policy_that_tickets_ran_on_cannot_be_deleted(requester: Any, email: Service) -> None:
    mail = policy("Mail", 20, (email, ""))
    make_ticket(requester, service=email)
    with pytest.raises(Exception, match="protected"), transaction.atomic():
        mail.delete()


# A change of service or priority


def test_changing_the_service_puts_the_ticket_on_the_services_policy_and_moves_its_due_times(
    requester: Any, agent: Any, email: Service
) -> None:
    mail = policy("Mail", 20, (email, ""))
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, priority="high")
        default = fresh(ticket).sla_policy
        clock.move_to(MONDAY + minutes(5))
        ticket_update(ticket_id=ticket.pk, actor=agent, expected_version=None, changes={"service": email})

    moved = fresh(ticket)
    assert moved.sla_policy == mail
    assert moved.response_due_at == MONDAY + minutes(20)
    assert moved.sla_at_risk_at == MONDAY + minutes(16)
    assert default is not None
    assert policy_events(ticket) == [(str(default.pk), str(mail.pk), agent.pk)]


def test_changing_the_priority_puts_the_ticket_on_the_prioritys_policy(
    requester: Any, agent: Any, email: Service
) -> None:
    urgent = policy("Urgent", 30, (None, "high"))
    with time_machine.travel(MONDAY, tick=False):
        ticket = make_ticket(requester, service=email, priority="medium")
        assert fresh(ticket).sla_policy == sla_policy_default()
        ticket_update(ticket_id=ticket.pk, actor=agent, expected_version=None, changes={"priority": "high"})

    moved = fresh(ticket)
    assert moved.sla_policy == urgent
    assert moved.response_due_at == MONDAY + minutes(30)
    assert [new for _, new, _ in policy_events(ticket)] == [str(urgent.pk)]


def test_a_change_that_keeps_the_policy_records_no_policy_change_but_moves_the_due_times(
    requester: Any, agent: Any
) -> None:
    with time_machine.travel(MONDAY, tick=False):
        ticket = make_ticket(requester, priority="medium")
        ticket_update(ticket_id=ticket.pk, actor=agent, expected_version=None, changes={"priority": "high"})

    moved = fresh(ticket)
    assert moved.sla_policy == sla_policy_default()
    assert moved.response_due_at == MONDAY + minutes(60)
    assert policy_events(ticket) == []


def test_a_transition_keeps_the_policy_the_ticket_runs_on(requester: Any, agent: Any, email: Service) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        ticket = make_ticket(requester, service=email, priority="high")
        # A case named later, without the recompute the admin queues: the next transition does not move the ticket.
        policy("Mail", 20, (email, ""))
        clock.move_to(MONDAY + minutes(1))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="open")

    assert fresh(ticket).sla_policy == sla_policy_default()
    assert fresh(ticket).response_due_at == MONDAY + minutes(60)


# A change of the policies


def test_the_recompute_puts_open_tickets_on_the_policy_that_applies_now_and_leaves_done_ones(
    requester: Any, agent: Any, email: Service
) -> None:
    with time_machine.travel(MONDAY, tick=False) as clock:
        open_ticket = make_ticket(requester, service=email, priority="high")
        done_ticket = make_ticket(requester, service=email, priority="high")
        ticket_transition(ticket_id=done_ticket.pk, actor=agent, to="resolved")
        mail = policy("Mail", 20, (email, ""))
        clock.move_to(MONDAY + minutes(2))
        assert sla_recompute_open_tickets() == 1

    moved = fresh(open_ticket)
    assert moved.sla_policy == mail
    assert moved.response_due_at == MONDAY + minutes(20)
    assert [(new, actor) for _, new, actor in policy_events(open_ticket)] == [(str(mail.pk), None)]
    assert fresh(done_ticket).sla_policy == sla_policy_default()
    assert policy_events(done_ticket) == []


def test_a_ticket_made_before_policies_were_recorded_runs_on_the_one_that_applies(
    requester: Any, agent: Any, email: Service
) -> None:
    with time_machine.travel(MONDAY, tick=False):
        ticket = make_ticket(requester, service=email, priority="high")
        Ticket.objects.filter(pk=ticket.pk).update(sla_policy=None)
        mail = policy("Mail", 20, (email, ""))
        ticket_transition(ticket_id=ticket.pk, actor=agent, to="open")

    assert fresh(ticket).response_due_at == MONDAY + minutes(20)
    assert fresh(ticket).sla_policy is None  # recorded by the next recompute or change of service or priority
    sla_recompute_open_tickets()
    assert fresh(ticket).sla_policy == mail
