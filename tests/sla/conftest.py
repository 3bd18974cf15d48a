"""Helpers of the SLA tests: a Monday morning to start from, minutes, a fresh read of a ticket, its SLA events and the
state-change metric, and a Berlin office calendar with the default policy on it."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from itsm.models import BusinessCalendar, Event, SlaPolicy, Ticket

MONDAY = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)


def minutes(count: float) -> timedelta:
    return timedelta(minutes=count)


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.get(pk=ticket.pk)


def sla_events(ticket: Ticket) -> list[tuple[str, str]]:
    return list(
        Event.objects.filter(ticket=ticket, kind=Event.Kind.SLA)
        .order_by("created_at", "id")
        .values_list("old_value", "new_value")
    )


def state_changes(state: str, priority: str) -> float:
    value = REGISTRY.get_sample_value("itsm_sla_state_changes_total", {"state": state, "priority": priority})
    return value or 0.0


@pytest.fixture
def office_calendar(db: Any) -> BusinessCalendar:
    return BusinessCalendar.objects.create(
        name="Berlin office",
        kind=BusinessCalendar.Kind.BUSINESS_HOURS,
        time_zone="Europe/Berlin",
        weekdays=[0, 1, 2, 3, 4],
        day_start=time(9, 0),
        day_end=time(17, 0),
    )


@pytest.fixture
def office_hours(office_calendar: BusinessCalendar) -> SlaPolicy:
    """The default policy, with the manual's targets, on Monday-Friday 09:00-17:00 Berlin time."""
    return SlaPolicy.objects.create(name="Office hours", is_default=True, calendar=office_calendar)
