"""What the new-ticket form says about the service level: the targets of the policy a new ticket will get."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from itsm.models import BusinessCalendar, Service, SlaPolicy, Ticket
from itsm.services.sla import sla_policy_default

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
    policy: str
    hours: str  # when the clock runs, in words
    start: Target  # the targets of a new request
    targets: list[Target]


def sla_policy_for(service: Service | None) -> SlaPolicy:
    """The policy a new ticket on `service` gets. One policy applies to every ticket today (the default); when
    policies are chosen per service, this is the one function to change."""
    return sla_policy_default()


def sla_summary(service: Service | None = None) -> SlaSummary:
    policy = sla_policy_for(service)
    targets = []
    for priority, label in PRIORITY_LABELS.items():
        response, resolution = policy.targets_for(priority)
        targets.append(Target(priority, str(label), duration(response), duration(resolution)))
    start = next(target for target in targets if target.priority == NEW_TICKET_PRIORITY)
    return SlaSummary(policy=policy.name, hours=clock_hours(policy.calendar), start=start, targets=targets)


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
