"""Paging and escalation with frozen time: who is paged, when it escalates, and that nobody is paged twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import time_machine

from itsm.exceptions import Conflict
from itsm.models import Event, Incident, Notification
from itsm.services.incidents import incident_create, incident_transition, incident_update
from itsm.services.paging import incident_escalation_scan, incident_page_again
from itsm.tasks.paging import escalate_incidents
from tests.factories import ServiceFactory, make_user
from tests.oncall.conftest import make_rotation, make_team

pytestmark = pytest.mark.django_db
# A Wednesday at 10:00 UTC: alice holds the daily shift that started at 09:00 UTC.
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture
def platform(admin: Any) -> dict[str, Any]:
    team = make_team("Platform")
    alice, bob, carol = (make_user(name, "agent") for name in ("alice", "bob", "carol"))
    team.members.add(alice, bob, carol, admin)
    make_rotation(
        team,
        [alice, bob, carol],
        shift_length_hours=24,
        handoff_time=time(9, 0),
        time_zone="UTC",
        start_date=date(2026, 11, 25),
    )
    service = ServiceFactory.create(slug="api", name="API", team=team)
    return {"team": team, "service": service, "alice": alice, "bob": bob, "carol": carol, "adam": admin}


def paged(incident: Incident) -> list[str]:
    """Who got a notification for the incident, oldest first."""
    rows = Notification.objects.filter(incident=incident).order_by("id").select_related("recipient")
    return [row.recipient.username for row in rows if row.recipient is not None]


def declare(platform: dict[str, Any], severity: str = "critical") -> Incident:
    return incident_create(actor=None, title="API down", severity=severity, services=[platform["service"]])


def scan_at(moment: datetime) -> dict[str, int]:
    with time_machine.travel(moment, tick=False):
        return incident_escalation_scan()


def test_a_critical_incident_pages_the_on_call_person_at_once(platform):
    with time_machine.travel(T0, tick=False):
        incident = declare(platform)
    assert paged(incident) == ["alice"]
    assert Event.objects.filter(incident=incident, kind="page", new_value="alice").exists()
    assert incident.next_escalation_at == T0 + timedelta(minutes=15)
    assert Notification.objects.get(incident=incident).urgent


def test_it_escalates_to_the_next_person_at_fifteen_minutes_when_unacknowledged(platform):
    with time_machine.travel(T0, tick=False):
        incident = declare(platform)
    assert scan_at(T0 + timedelta(minutes=14, seconds=59)) == {"escalated": 0, "exhausted": 0}
    assert paged(incident) == ["alice"]
    assert scan_at(T0 + timedelta(minutes=15)) == {"escalated": 1, "exhausted": 0}
    incident.refresh_from_db()
    assert paged(incident) == ["alice", "bob"]
    assert (incident.escalation_level, incident.response_target_missed) == (1, True)
    assert Event.objects.filter(incident=incident, kind="escalation", new_value="bob").exists()


def test_it_does_not_escalate_once_acknowledged(platform):
    with time_machine.travel(T0, tick=False):
        incident = declare(platform)
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        incident_transition(incident_id=incident.pk, actor=platform["alice"], to="acknowledged")
    assert scan_at(T0 + timedelta(minutes=15)) == {"escalated": 0, "exhausted": 0}
    incident.refresh_from_db()
    assert paged(incident) == ["alice"]
    assert (incident.next_escalation_at, incident.response_target_missed) == (None, False)


def test_a_duplicated_scan_pages_nobody_twice(platform):
    with time_machine.travel(T0, tick=False):
        incident = declare(platform)
    with time_machine.travel(T0 + timedelta(minutes=15), tick=False):
        assert escalate_incidents() == {"escalated": 1, "exhausted": 0}
        assert escalate_incidents() is None  # the same 30-second slot: the job does not run again
        assert incident_escalation_scan() == {"escalated": 0, "exhausted": 0}
    assert paged(incident) == ["alice", "bob"]


def test_the_chain_runs_through_the_rotation_then_the_team_admins_and_stops_after_its_rounds(platform, settings):
    settings.ITSM_ESCALATION_ROUNDS = 2
    with time_machine.travel(T0, tick=False):
        incident = declare(platform)
    moment = T0
    for _ in range(10):
        moment += timedelta(minutes=15)
        scan_at(moment)
    assert paged(incident) == ["alice", "bob", "carol", "adam", "alice", "bob", "carol", "adam"]
    incident.refresh_from_db()
    assert incident.next_escalation_at is None
    assert Event.objects.filter(incident=incident, kind="escalation", note__contains="paging stops").count() == 1


def test_medium_and_low_incidents_notify_without_paging_or_escalating(platform):
    with time_machine.travel(T0, tick=False):
        incident = declare(platform, severity="medium")
    assert paged(incident) == ["alice"]
    assert not Notification.objects.get(incident=incident).urgent
    assert incident.next_escalation_at is None
    assert scan_at(T0 + timedelta(hours=3, minutes=59)) == {"escalated": 0, "exhausted": 0}
    incident.refresh_from_db()
    assert not incident.response_target_missed
    assert scan_at(T0 + timedelta(hours=4)) == {"escalated": 0, "exhausted": 0}
    incident.refresh_from_db()
    assert incident.response_target_missed  # the scan marks a missed target of any severity
    assert paged(incident) == ["alice"]


def test_raising_an_unacknowledged_incident_to_critical_pages_at_once(platform):
    with time_machine.travel(T0, tick=False):
        incident = declare(platform, severity="low")
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        incident_update(incident_id=incident.pk, actor=None, changes={"severity": "critical"})
    incident.refresh_from_db()
    assert paged(incident) == ["alice", "alice"]
    assert incident.next_escalation_at == T0 + timedelta(minutes=15)
    assert Notification.objects.filter(incident=incident, urgent=True).count() == 1


def test_an_incident_without_an_owning_team_pages_the_admins(admin):
    make_user("other-agent", "agent")
    with time_machine.travel(T0, tick=False):
        incident = incident_create(actor=None, title="Something broke", severity="high")
    assert paged(incident) == [admin.username]


def test_the_escalation_follows_the_rotation_at_the_time_of_the_step(platform):
    """bob's shift starts the next day at 09:00: an escalation then goes to carol, the one after him."""
    start = datetime(2026, 11, 26, 8, 50, tzinfo=UTC)  # alice's shift still, 10 minutes before bob's
    with time_machine.travel(start, tick=False):
        incident = declare(platform)
    scan_at(start + timedelta(minutes=15))
    assert paged(incident) == ["alice", "carol"]


def test_page_again_pages_the_on_call_now_and_records_who_asked(platform):
    with time_machine.travel(T0, tick=False):
        incident = declare(platform, severity="low")  # notified, not paged
    with time_machine.travel(T0 + timedelta(minutes=3), tick=False):
        paged_now = incident_page_again(incident_id=incident.pk, actor=platform["bob"])
    assert [user.username for user in paged_now] == ["alice"]
    assert paged(incident) == ["alice", "alice"]
    assert Notification.objects.filter(incident=incident).order_by("id").last().urgent  # type: ignore[union-attr]
    event = Event.objects.get(incident=incident, kind="page")
    assert (event.actor, event.new_value, event.note) == (platform["bob"], "alice", "Paged alice. Paged again by bob.")
    incident.refresh_from_db()
    assert (incident.escalation_level, incident.next_escalation_at) == (0, None)  # escalation is left as it was


def test_page_again_is_refused_for_a_closed_incident(platform):
    with time_machine.travel(T0, tick=False):
        incident = declare(platform)
        incident_transition(incident_id=incident.pk, actor=platform["alice"], to="resolved")
        with pytest.raises(Conflict):
            incident_page_again(incident_id=incident.pk, actor=platform["alice"])
    assert paged(incident) == ["alice"]
