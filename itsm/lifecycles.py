"""The allowed status transitions of each aggregate, as data. The services are the only code that applies them."""

from __future__ import annotations

from collections.abc import Mapping

TICKET_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "new": frozenset({"open", "in_progress", "resolved", "closed"}),
    "open": frozenset({"in_progress", "pending", "resolved", "closed"}),
    "in_progress": frozenset({"open", "pending", "resolved"}),
    "pending": frozenset({"in_progress", "resolved"}),
    "resolved": frozenset({"open", "closed"}),
    "closed": frozenset(),
}

# What a requester may do to their own ticket: withdraw or accept it (close), or reopen a resolved one.
TICKET_REQUESTER_TARGETS = frozenset({"closed", "open"})


def ticket_requester_moves(current: str) -> frozenset[str]:
    """Where a requester may move their own ticket from `current`: closed where the table allows it, and open only
    from resolved (a reopen). ticket_transition enforces the same; the portal shows a button for each."""
    allowed = TICKET_TRANSITIONS.get(current, frozenset()) & TICKET_REQUESTER_TARGETS
    return frozenset(target for target in allowed if target != "open" or current == "resolved")


# Statuses in which the ticket's clocks stop: waiting on the requester, or done. The rest are open: worked on.
TICKET_PAUSED_STATUSES = frozenset({"pending"})
TICKET_DONE_STATUSES = frozenset({"resolved", "closed"})
TICKET_OPEN_STATUSES = frozenset(TICKET_TRANSITIONS) - TICKET_DONE_STATUSES


class TransitionNotAllowed(Exception):
    """Raised when a status change is not in the table; the API answers 409."""

    def __init__(self, current: str, target: str, allowed: frozenset[str]) -> None:
        # As plain strings: a TextChoices member's repr would name its enum ("Incident.Status.RESOLVED").
        current, target = str(current), str(target)
        self.current, self.target, self.allowed = current, target, allowed
        names = ", ".join(sorted(allowed)) or "none (final state)"
        super().__init__(f"Cannot move from {current!r} to {target!r}. Allowed next states: {names}.")


def check_transition(table: Mapping[str, frozenset[str]], current: str, target: str) -> None:
    allowed = table[current]
    if target not in allowed:
        raise TransitionNotAllowed(current, target, allowed)


# Forward moves may skip states (a false alarm goes detected → resolved); resolved → diagnosing reopens.
INCIDENT_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "detected": frozenset({"acknowledged", "diagnosing", "mitigating", "resolved"}),
    "acknowledged": frozenset({"diagnosing", "mitigating", "resolved"}),
    "diagnosing": frozenset({"mitigating", "resolved"}),
    "mitigating": frozenset({"resolved"}),
    "resolved": frozenset({"diagnosing", "reviewed"}),
    "reviewed": frozenset(),
}

# An incident is closed once resolved (reviewed or not): it no longer pages, escalates or takes alerts.
INCIDENT_CLOSED_STATUSES = frozenset({"resolved", "reviewed"})
INCIDENT_OPEN_STATUSES = frozenset(INCIDENT_TRANSITIONS) - INCIDENT_CLOSED_STATUSES

# Severities whose incidents may be closed as reviewed only with a final post-mortem.
POSTMORTEM_REQUIRED_SEVERITIES = frozenset({"critical", "high"})

# Maintenance windows: the scheduler moves them forward; people start one now, complete one early, cancel one
# (before it starts, or abort it while it runs: no verification), retry a blocked one (back to scheduled) or re-run
# failed checks.
MAINTENANCE_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "scheduled": frozenset({"in_progress", "cancelled", "blocked"}),
    "blocked": frozenset({"scheduled", "cancelled"}),
    "in_progress": frozenset({"verifying", "cancelled"}),
    "verifying": frozenset({"completed", "verification_failed"}),
    "verification_failed": frozenset({"verifying", "completed"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}

# A window that has not started can still be edited; one under way has its services in maintenance (alerts are
# quiet, clocks stop); an open one is not finished either way.
MAINTENANCE_EDITABLE_STATUSES = frozenset({"scheduled", "blocked"})
MAINTENANCE_UNDER_WAY_STATUSES = frozenset({"in_progress", "verifying"})
MAINTENANCE_OPEN_STATUSES = MAINTENANCE_EDITABLE_STATUSES | MAINTENANCE_UNDER_WAY_STATUSES
