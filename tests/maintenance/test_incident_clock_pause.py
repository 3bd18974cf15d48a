"""An incident's response clock stops while its service is in a maintenance window, like a ticket's SLA clock:
its acknowledge-by time and escalation timer move by the overlap, and time inside the window is never missed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine

from itsm.models import Event, Incident, MaintenanceWindow, Service
from itsm.services.incidents import incident_create, incident_transition, incident_update
from itsm.services.maintenance_lifecycle import maintenance_tick, maintenance_transition
from itsm.services.paging import incident_escalation_scan
from tests.maintenance.conftest import START

MINUTE = timedelta(minutes=1)


def at(minutes: float) -> datetime:
    return START + minutes * MINUTE


def tick(minutes: float) -> None:
    with time_machine.travel(at(minutes), tick=False):
        maintenance_tick()


def declare(minutes: float, service: Service, severity: str = "critical", agent: Any = None) -> Incident:
    with time_machine.travel(at(minutes), tick=False):
        return incident_create(actor=agent, title=f"{service.name} is down", severity=severity, services=[service])


def scan(minutes: float) -> dict[str, int]:
    return incident_escalation_scan(now=at(minutes))


def fresh(incident: Incident) -> Incident:
    return Incident.objects.get(pk=incident.pk)


@pytest.fixture(autouse=True)
def _someone_to_page(admin: Any) -> None:
    """The Platform team has nobody on call: its pages go to the platform's admins."""


@pytest.fixture
def window(make_window: Any) -> MaintenanceWindow:
    """The database is in maintenance from START to START + 30 min (no backup gate, checks for 5 minutes)."""
    return make_window(backup_required=False)


def test_an_unacknowledged_incident_gets_the_window_added_to_its_due_time_and_escalation(
    window, database_service, agent
):
    incident = declare(-5, database_service, agent=agent)
    assert incident.response_due_at == at(10)
    tick(0)
    paused = fresh(incident)
    # 5 minutes ran before the window, the other 10 run after its planned end.
    assert paused.response_due_at == at(40)
    assert paused.next_escalation_at == at(40)
    assert scan(20) == {"escalated": 0, "exhausted": 0}
    assert fresh(incident).response_target_missed is False
    tick(30)  # the planned end: verifying, the pause is what was planned
    assert fresh(incident).response_due_at == at(40)
    assert scan(39)["escalated"] == 0
    assert scan(40)["escalated"] == 1
    escalated = fresh(incident)
    assert escalated.response_target_missed is True
    assert escalated.escalation_level == 1


def test_a_window_ended_early_pauses_the_clock_only_as_long_as_it_ran(window, database_service, agent):
    incident = declare(-5, database_service)
    tick(0)
    with time_machine.travel(at(10), tick=False):
        maintenance_transition(window_id=window.pk, actor=agent, to=MaintenanceWindow.Status.VERIFYING)
    ended = fresh(incident)
    assert ended.response_due_at == at(20)
    assert ended.next_escalation_at == at(20)


def test_an_incident_declared_during_the_window_starts_its_clock_at_the_end(window, database_service, agent):
    tick(0)
    incident = declare(10, database_service, agent=agent)
    assert incident.response_due_at == at(45)
    assert incident.next_escalation_at == at(45)
    with time_machine.travel(at(40), tick=False):
        acknowledged = incident_transition(incident_id=incident.pk, actor=agent, to="acknowledged")
    assert acknowledged.response_target_missed is False


def test_an_acknowledgement_late_by_the_clock_but_not_by_the_paused_clock_is_not_missed(
    window, database_service, agent
):
    incident = declare(-5, database_service, severity="medium")
    tick(0)
    scan(25)  # a medium incident has no escalation timer; its target is checked by the scan all the same
    with time_machine.travel(at(4 * 60 + 20), tick=False):
        acknowledged = incident_transition(incident_id=incident.pk, actor=agent, to="acknowledged")
    assert acknowledged.response_due_at == at(4 * 60 + 25)
    assert acknowledged.response_target_missed is False


def test_other_services_and_acknowledged_incidents_keep_their_due_times(window, database_service, agent):
    mail = Service.objects.create(name="Mail", slug="mail")
    elsewhere = declare(-5, mail)
    answered = declare(-5, database_service)
    with time_machine.travel(at(-1), tick=False):
        incident_transition(incident_id=answered.pk, actor=agent, to="acknowledged")
    tick(0)
    assert fresh(elsewhere).response_due_at == at(10)
    assert fresh(answered).response_due_at == at(10)


def test_an_incident_escalated_before_the_window_escalates_again_after_it(window, database_service):
    incident = declare(-20, database_service)
    assert scan(-5)["escalated"] == 1  # due at -5: missed, escalated; the next step is due at +10
    assert fresh(incident).next_escalation_at == at(10)
    tick(0)
    paused = fresh(incident)
    assert paused.next_escalation_at == at(40)  # 5 minutes of the step ran before the window
    assert paused.response_target_missed is True  # missed before the window: that stays
    assert scan(10)["escalated"] == 0
    assert scan(40)["escalated"] == 1
    steps = Event.objects.filter(incident=incident, kind=Event.Kind.ESCALATION).count()
    assert steps == 2


def test_an_escalation_step_taken_while_a_window_runs_waits_for_its_end(window, database_service):
    incident = declare(-5, database_service)
    tick(0)
    # Its escalation timer is after the window; a step forced now (e.g. a timer left from before) counts from the end.
    Incident.objects.filter(pk=incident.pk).update(next_escalation_at=at(5))
    assert scan(5)["escalated"] == 1
    assert fresh(incident).next_escalation_at == at(45)


def test_raising_the_severity_during_the_window_keeps_the_pause(window, database_service, agent):
    incident = declare(-10, database_service, severity="medium")
    tick(0)
    with time_machine.travel(at(5), tick=False):
        raised = incident_update(incident_id=incident.pk, actor=agent, changes={"severity": "critical"})
    # 10 of the 15 critical minutes ran before the window; the last 5 run after it.
    assert raised.response_due_at == at(35)
    assert raised.next_escalation_at == at(35)


def test_moving_an_incident_onto_a_service_under_maintenance_pauses_its_clock(window, database_service, agent):
    mail = Service.objects.create(name="Mail", slug="mail")
    incident = declare(-5, mail)
    tick(0)
    assert fresh(incident).response_due_at == at(10)
    with time_machine.travel(at(1), tick=False):
        moved = incident_update(incident_id=incident.pk, actor=agent, changes={"services": [database_service]})
    assert moved.response_due_at == at(40)
    assert fresh(moved).next_escalation_at == at(40)
