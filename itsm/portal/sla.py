"""What the new-ticket form says about the service level: the targets a new ticket gets at each priority, from the
policy that priority selects (itsm.services.sla.sla_policy_for, the one rule the ticket service applies)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from itsm.models import BusinessCalendar, Service, SlaPolicyScope, Ticket
from itsm.services.sla import sla_policy_for

PRIORITY_LABELS = {
    Ticket.Priority.CRITICAL: _("Critical"),
    Ticket.Priority.HIGH: _("High"),
    Ticket.Priority.MEDIUM: _("Medium"),
    Ticket.Priority.LOW: _("Low"),
}
WEEKDAYS = (_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun"))
# What ticket_create gives a ticket that names none: the portal's requests start here.
NEW_TICKET_PRIORITY = Ticket.Priority.MEDIUM


@dataclass(frozen=True)
class Target:
    priority: str
    label: str
    response: str
    resolution: str


@dataclass(frozen=True)
class SlaSummary:
    policy: str  # the policy of a new request
    hours: str  # when its clock runs, in words
    start: Target  # the targets of a new request
    targets: list[Target]
    per_service: bool  # some services have targets of their own: the ticket's page shows the ones it runs on


def sla_summary(service: Service | None = None) -> SlaSummary:
    targets = []
    start_policy = None
    for priority, label in PRIORITY_LABELS.items():
        policy = sla_policy_for(service=service, priority=priority)
        response, resolution = policy.targets_for(priority)
        targets.append(Target(priority, str(label), duration(response), duration(resolution)))
        if priority == NEW_TICKET_PRIORITY:
            start_policy = policy
    assert start_policy is not None
    start = next(target for target in targets if target.priority == NEW_TICKET_PRIORITY)
    return SlaSummary(
        policy=start_policy.name,
        hours=clock_hours(start_policy.calendar),
        start=start,
        targets=targets,
        per_service=service is None and SlaPolicyScope.objects.filter(service__isnull=False).exists(),
    )


def duration(minutes: int) -> str:
    """15 minutes, 4 hours, 3 days: the largest unit that divides it exactly."""
    if minutes and minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}
    if minutes and minutes % 60 == 0:
        hours = minutes // 60
        return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


def clock_hours(calendar: BusinessCalendar) -> str:
    if calendar.kind == BusinessCalendar.Kind.ALWAYS:
        return str(_("around the clock"))
    days = ", ".join(str(WEEKDAYS[day]) for day in sorted(calendar.weekdays))
    return str(_("in business hours: %(days)s, %(start)s to %(end)s (%(zone)s)")) % {
        "days": days,
        "start": f"{calendar.day_start:%H:%M}",
        "end": f"{calendar.day_end:%H:%M}",
        "zone": calendar.time_zone,
    }
