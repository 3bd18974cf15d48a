"""SLA state of tickets: the policy a ticket runs on, due times recomputed from the event history, and the scan
that marks breaches."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from itsm import metrics, sla
from itsm.lifecycles import TICKET_DONE_STATUSES, TICKET_PAUSED_STATUSES
from itsm.models import BusinessCalendar, Event, Service, SlaPolicy, Ticket
from itsm.queries.sla import sla_policy_matching
from itsm.services.clocks import maintenance_pauses
from itsm.services.events import event_record, event_record_change
from itsm.services.ticket_notifications import ticket_notify_sla

logger = logging.getLogger(__name__)

DEFAULT_POLICY_NAME = "Default"


def sla_policy_default() -> SlaPolicy:
    """The policy of tickets that no policy's scope matches; created with the manual's targets on a 24×7 calendar if
    none exists."""
    policy = SlaPolicy.objects.select_related("calendar").filter(is_default=True).first()
    return policy if policy is not None else _default_made()


def _default_made() -> SlaPolicy:
    """The default policy on first use (none is marked default yet)."""
    calendar, _ = BusinessCalendar.objects.get_or_create(name="24×7", defaults={"kind": BusinessCalendar.Kind.ALWAYS})
    policy, _ = SlaPolicy.objects.get_or_create(
        name=DEFAULT_POLICY_NAME, defaults={"calendar": calendar, "is_default": True}
    )
    return policy


def sla_policy_for(*, service: Service | None, priority: str) -> SlaPolicy:
    """The policy a ticket of this service and priority runs on: the most specific scope that matches (service and
    priority, then service, then priority), else the default. One query, with the policy's calendar."""
    return _policy_for(service.pk if service is not None else None, priority)


def _policy_for(service_id: int | None, priority: str) -> SlaPolicy:
    # One statement written once (itsm.queries.sla): the unique constraints of SlaPolicyScope leave at most one
    # policy per rank. No row at all means no default yet either: make it (without asking for it a second time).
    policy = sla_policy_matching(service_id, priority)
    return policy if policy is not None else _default_made()


def _policy_of(ticket: Ticket) -> SlaPolicy:
    """The policy the ticket runs on, with its calendar; a ticket without one (made before policies were recorded)
    gets the one its service and priority select."""
    if ticket.sla_policy_id is not None:
        policy = SlaPolicy.objects.select_related("calendar").filter(pk=ticket.sla_policy_id).first()
        if policy is not None:
            return policy
    return _policy_for(ticket.service_id, ticket.priority)


def ticket_sla_reselect(*, ticket: Ticket, actor: Any, now: datetime) -> list[str]:
    """After a change of service or priority: put the ticket on the policy these select now and recompute its SLA
    on it, in memory; return the changed field names. A change of policy is a `changed` event (`sla_policy`)."""
    policy = _policy_for(ticket.service_id, ticket.priority)
    return _put_on(ticket, policy, actor, now) + _refresh(ticket, policy, calendar_from(policy.calendar), now)


def _put_on(ticket: Ticket, policy: SlaPolicy, actor: Any, now: datetime) -> list[str]:
    if not event_record_change(
        ticket=ticket, actor=actor, field="sla_policy", old=ticket.sla_policy_id, new=policy.pk, at=now
    ):
        return []
    ticket.sla_policy = policy
    return ["sla_policy"]


def calendar_from(model: BusinessCalendar) -> sla.Calendar:
    if model.kind == BusinessCalendar.Kind.ALWAYS:
        return sla.ALWAYS
    return sla.Calendar(
        tz=ZoneInfo(model.time_zone),
        weekdays=frozenset(model.weekdays),
        day_start=model.day_start,
        day_end=model.day_end,
        holidays=frozenset(model.holidays.values_list("date", flat=True)),
    )


@dataclass(frozen=True)
class SlaTimes:
    response_due_at: datetime | None
    resolution_due_at: datetime | None
    at_risk_at: datetime | None


def ticket_status_history(ticket: Ticket) -> list[tuple[datetime, str]]:
    """(time, status) of the creation and of every status change, oldest first."""
    changes: list[tuple[datetime, str]] = [(ticket.created_at, Ticket.Status.NEW)]
    changes += list(
        Event.objects.filter(ticket=ticket, kind=Event.Kind.TRANSITION, field="status")
        .order_by("created_at", "id")
        .values_list("created_at", "new_value")
    )
    return changes


def ticket_sla_times(
    *, ticket: Ticket, policy: SlaPolicy, calendar: sla.Calendar, changes: list[tuple[datetime, str]] | None = None
) -> SlaTimes:
    """Due times of the ticket's two targets and the moment it becomes at risk, from its status history."""
    if changes is None:
        changes = ticket_status_history(ticket)
    response_minutes, resolution_minutes = policy.targets_for(ticket.priority)
    risk_share = settings.ITSM_SLA_AT_RISK_PERCENT / 100

    done = ticket.status in TICKET_DONE_STATUSES
    # Resolving answers the requester too; while resolved, neither clock runs.
    response_running = sla.running_intervals(
        changes, TICKET_PAUSED_STATUSES | TICKET_DONE_STATUSES, until=_response_stopped_at(ticket)
    )
    resolution_running = sla.running_intervals(
        changes, TICKET_PAUSED_STATUSES | TICKET_DONE_STATUSES, until=ticket.resolved_at if done else None
    )
    if ticket.service_id is not None:
        # The clocks stop while the ticket's service is in a maintenance window (DESIGN.md).
        pauses = maintenance_pauses(service_id=ticket.service_id)
        response_running = sla.without(response_running, pauses)
        resolution_running = sla.without(resolution_running, pauses)
    response_due = sla.due_at(calendar, response_running, response_minutes)
    resolution_due = sla.due_at(calendar, resolution_running, resolution_minutes)

    warnings = []
    if not done and ticket.status not in TICKET_PAUSED_STATUSES:
        if ticket.first_response_at is None:
            warnings.append(sla.due_at(calendar, response_running, response_minutes * risk_share))
        warnings.append(sla.due_at(calendar, resolution_running, resolution_minutes * risk_share))
    at_risk_at = min((w for w in warnings if w is not None), default=None)
    return SlaTimes(response_due, resolution_due, at_risk_at)


def _response_stopped_at(ticket: Ticket) -> datetime | None:
    """When the response clock stopped: the first public agent reply, or the resolution if that came first."""
    return min((t for t in (ticket.first_response_at, ticket.resolved_at) if t is not None), default=None)


def sla_status_at(ticket: Ticket, now: datetime) -> str:
    """The SLA state the stored due times give at `now`. A breach is never forgotten."""
    status = Ticket.SlaStatus
    if ticket.sla_status == status.BREACHED:
        return status.BREACHED
    response_missed = ticket.response_due_at is not None and (
        (_response_stopped_at(ticket) or now) > ticket.response_due_at
    )
    resolution_end = ticket.resolved_at if ticket.status in TICKET_DONE_STATUSES else now
    resolution_missed = ticket.resolution_due_at is not None and (resolution_end or now) > ticket.resolution_due_at
    if response_missed or resolution_missed:
        return status.BREACHED
    if ticket.status in TICKET_DONE_STATUSES:
        return status.MET
    if ticket.status in TICKET_PAUSED_STATUSES:
        return status.PAUSED
    if ticket.sla_at_risk_at is not None and now >= ticket.sla_at_risk_at:
        return status.AT_RISK
    return status.OK


def ticket_sla_refresh(*, ticket: Ticket, policy: SlaPolicy | None = None, now: datetime | None = None) -> list[str]:
    """Recompute the ticket's due times and SLA state in memory, on `policy` or else the one it runs on; return the
    changed field names.

    The caller holds the row lock and saves; an SLA state change is written as an event here.
    """
    policy = policy or _policy_of(ticket)
    return _refresh(ticket, policy, calendar_from(policy.calendar), now or timezone.now())


def _refresh(ticket: Ticket, policy: SlaPolicy, calendar: sla.Calendar, now: datetime) -> list[str]:
    times = ticket_sla_times(ticket=ticket, policy=policy, calendar=calendar)
    changed = []
    for name, value in (
        ("response_due_at", times.response_due_at),
        ("resolution_due_at", times.resolution_due_at),
        ("sla_at_risk_at", times.at_risk_at),
    ):
        if getattr(ticket, name) != value:
            setattr(ticket, name, value)
            changed.append(name)
    changed += _apply_sla_status(ticket, sla_status_at(ticket, now), now)
    return changed


def _apply_sla_status(ticket: Ticket, new_status: str, now: datetime) -> list[str]:
    old_status = ticket.sla_status
    if new_status == old_status:
        return []
    ticket.sla_status = new_status
    event_record(
        ticket=ticket, actor=None, kind=Event.Kind.SLA, field="sla_status", old=old_status, new=new_status, at=now
    )
    if new_status in (Ticket.SlaStatus.AT_RISK, Ticket.SlaStatus.BREACHED):
        metrics.SLA_STATE_CHANGES.labels(state=new_status, priority=ticket.priority).inc()
        if ticket.status not in TICKET_DONE_STATUSES:  # a breach found at the resolution is news to nobody
            ticket_notify_sla(ticket=ticket, state=new_status)
    return ["sla_status"]


def sla_scan(*, now: datetime | None = None, batch_size: int = 500) -> dict[str, int]:
    """Mark running tickets that crossed their at-risk moment or a due time. Safe to run twice for one minute."""
    now = now or timezone.now()
    counts = {Ticket.SlaStatus.AT_RISK.value: 0, Ticket.SlaStatus.BREACHED.value: 0}
    # Only tickets whose state changes now: a ticket already at risk waits here until a due time passes, or the
    # hundreds that stay at risk for hours would fill every batch and keep the next breach from being marked.
    overdue = Q(first_response_at__isnull=True, response_due_at__lt=now) | Q(resolution_due_at__lt=now)
    candidate_ids = list(
        Ticket.objects.filter(
            Q(sla_status=Ticket.SlaStatus.OK) | (Q(sla_status=Ticket.SlaStatus.AT_RISK) & overdue),
            sla_status__in=[Ticket.SlaStatus.OK, Ticket.SlaStatus.AT_RISK],
            sla_at_risk_at__lte=now,
        )
        .order_by("sla_at_risk_at", "id")
        .values_list("id", flat=True)[:batch_size]
    )
    for ticket_id in candidate_ids:
        with transaction.atomic():
            ticket = Ticket.objects.select_for_update().filter(pk=ticket_id).first()
            if ticket is None:
                continue
            changed = _apply_sla_status(ticket, sla_status_at(ticket, now), now)
            if changed:
                ticket.save(update_fields=changed)
                counts[ticket.sla_status] = counts.get(ticket.sla_status, 0) + 1
    if any(counts.values()):
        logger.info("SLA scan at %s: %s", now.isoformat(), counts)
    return counts


def sla_recompute_open_tickets(*, batch_size: int = 500, service_ids: Collection[int] | None = None) -> int:
    """Recompute due times of every ticket not yet done (of these services), after a policy or calendar change
    or a maintenance window's start and end. Each ticket first goes onto the policy its service and priority select
    now, since a policy's scopes may have changed (a `changed` event when it moves)."""
    # Read once per (service, priority) and per policy: the policy is one query and a calendar's holidays another,
    # and there may be thousands of open tickets.
    policies: dict[tuple[int | None, str], SlaPolicy] = {}
    calendars: dict[int, sla.Calendar] = {}
    count = 0
    open_tickets = Ticket.objects.exclude(status__in=TICKET_DONE_STATUSES)
    if service_ids is not None:
        open_tickets = open_tickets.filter(service_id__in=list(service_ids))
    ids = list(open_tickets.values_list("id", flat=True))
    for start in range(0, len(ids), batch_size):
        with transaction.atomic():
            for ticket in Ticket.objects.select_for_update().filter(pk__in=ids[start : start + batch_size]):
                now = timezone.now()
                key = (ticket.service_id, ticket.priority)
                if key not in policies:
                    policies[key] = _policy_for(*key)
                policy = policies[key]
                if policy.pk not in calendars:
                    calendars[policy.pk] = calendar_from(policy.calendar)
                changed = _put_on(ticket, policy, None, now) + _refresh(ticket, policy, calendars[policy.pk], now)
                if changed:
                    ticket.save(update_fields=changed)
                count += 1
    return count
