from itsm.models.catalog import Service, Team
from itsm.models.events import Event
from itsm.models.jobs import JobRun
from itsm.models.sla import BusinessCalendar, Holiday, SlaPolicy
from itsm.models.tickets import Comment, Ticket

__all__ = [
    "BusinessCalendar",
    "Comment",
    "Event",
    "Holiday",
    "JobRun",
    "Service",
    "SlaPolicy",
    "Team",
    "Ticket",
]
