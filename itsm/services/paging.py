"""Who is paged for an incident, and escalation while nobody acknowledges it.

Escalation is a timer on the incident (`next_escalation_at`, indexed) scanned by Beat, never a Celery ETA.
Each step is claimed with a compare-and-set update, so a duplicated scan pages nobody twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from itsm import metrics
from itsm.audit import audited_update
from itsm.exceptions import Conflict
from itsm.lifecycles import INCIDENT_CLOSED_STATUSES
from itsm.models import Event, Incident, Team
from itsm.roles import admins_q, is_admin
from itsm.services.clocks import incident_escalation_due
from itsm.services.events import event_record
from itsm.services.notifications import notify
from itsm.services.oncall import escalation_chain

logger = logging.getLogger(__name__)

PAGED_SEVERITIES = frozenset({Incident.Severity.CRITICAL, Incident.Severity.HIGH})


def _teams(incident: Incident) -> list[Team]:
    return list(Team.objects.filter(services__incidents=incident).distinct().prefetch_related("members__groups"))


def _admins_of(team: Team) -> list[Any]:
    return [user for user in team.members.all() if user.is_active and is_admin(user)]  # groups are prefetched


def incident_chains(incident: Incident, at: datetime) -> list[list[Any]]:
    """One escalation chain per affected team: on call now, the next people of the rotation, the team's admins.

    An incident with no team behind its services goes to the platform's admins.
    """
    chains = []
    for team in _teams(incident):
        chain: list[Any] = []
        for user in [*escalation_chain(team, at), *_admins_of(team)]:
            if user not in chain:
                chain.append(user)
        if chain:
            chains.append(chain)
    if not chains:
        fallback = list(get_user_model().objects.filter(admins_q(), is_active=True).order_by("pk"))
        if fallback:
            chains.append(fallback)
    return chains


def _page(
    incident: Incident, users: list[Any], kind: str, note: str, now: datetime, urgent: bool, actor: Any = None
) -> None:
    if not users:
        return
    verb = "Paged" if urgent else "Notified"
    subject = f"[{incident.severity.upper()}] INC-{incident.pk}: {incident.title}"
    body = (
        f"{incident.title}\n\nSeverity: {incident.severity}\nStatus: {incident.status}\n"
        f"Acknowledge by: {incident.response_due_at:%Y-%m-%d %H:%M} UTC\n\n{incident.summary}"
    ).strip()
    notify(users=users, subject=subject, body=body, incident=incident, urgent=urgent)
    names = ", ".join(user.get_username() for user in users)
    event_record(incident=incident, actor=actor, kind=kind, new=names, note=f"{verb} {names}. {note}".strip(), at=now)
    metrics.PAGES_SENT.labels(severity=incident.severity, kind=kind).inc(len(users))


def incident_page_on_create(*, incident: Incident, now: datetime) -> None:
    """Critical and high: page the on-call person of each team and start the escalation timer.
    Medium and low: notify them without paging."""
    first = _first_of_each(incident_chains(incident, now))
    if incident.severity in PAGED_SEVERITIES:
        _page(incident, first, Event.Kind.PAGE, "New incident.", now, urgent=True)
        incident.next_escalation_at = incident.response_due_at
        incident.save(update_fields=["next_escalation_at"])
    else:
        _page(incident, first, Event.Kind.NOTIFICATION, "New incident.", now, urgent=False)


def incident_page_again(*, incident_id: int, actor: Any) -> list[Any]:
    """Page the on-call person of each affected team again, now, whatever the severity (a page that went unseen, a
    commander calling for help); the timeline records who asked. Escalation is left as it stands. Refused for a
    resolved incident, and when there is nobody to page."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident_id)
        if incident.status in INCIDENT_CLOSED_STATUSES:
            raise Conflict(f"INC-{incident.pk} is {incident.status}: nobody is paged for a closed incident.")
        now = timezone.now()
        users = _first_of_each(incident_chains(incident, now))
        if not users:
            raise Conflict("Nobody to page: no team is on call for the incident's services and there is no admin.")
        asked = f"Paged again by {actor.get_username()}." if getattr(actor, "pk", None) else "Paged again."
        _page(incident, users, Event.Kind.PAGE, asked, now, urgent=True, actor=actor)
    return users


def _first_of_each(chains: list[list[Any]]) -> list[Any]:
    users: list[Any] = []
    for chain in chains:
        if chain[0] not in users:
            users.append(chain[0])
    return users


def incident_responded(*, incident: Incident, now: datetime) -> list[str]:
    """The first move out of `detected`: stop escalating; a late response misses the target for good."""
    changed = []
    if incident.next_escalation_at is not None:
        incident.next_escalation_at = None
        changed.append("next_escalation_at")
    if now > incident.response_due_at and not incident.response_target_missed:
        incident.response_target_missed = True
        changed.append("response_target_missed")
    return changed


def incident_severity_changed(*, incident: Incident, now: datetime) -> list[str]:
    """Raised to a paged severity while unacknowledged: page now if nobody was, and escalate by the new due time."""
    if incident.status != Incident.Status.DETECTED:
        return []
    if incident.severity not in PAGED_SEVERITIES:
        if incident.next_escalation_at is None:
            return []
        incident.next_escalation_at = None
        return ["next_escalation_at"]
    if incident.next_escalation_at is None:
        _page(incident, _first_of_each(incident_chains(incident, now)), Event.Kind.PAGE, "Severity raised.", now, True)
        incident.next_escalation_at = max(incident.response_due_at, now)
    else:
        incident.next_escalation_at = max(min(incident.next_escalation_at, incident.response_due_at), now)
    return ["next_escalation_at"]


def incident_escalation_scan(*, now: datetime | None = None, batch_size: int = 200) -> dict[str, int]:
    """Escalate every unacknowledged incident whose timer ran out, one step each. Safe to run twice."""
    now = now or timezone.now()
    escalated = exhausted = 0
    due = Incident.objects.filter(next_escalation_at__lte=now, status=Incident.Status.DETECTED).order_by(
        "next_escalation_at"
    )
    for incident in due[:batch_size]:
        step = incident.escalation_level + 1
        chains = incident_chains(incident, now)
        longest = max((len(chain) for chain in chains), default=0)
        rounds = settings.ITSM_ESCALATION_ROUNDS
        finished = longest == 0 or step >= longest * rounds
        with transaction.atomic():
            # Compare-and-set on the step and the timer: a second scan of the same slot updates nothing.
            claimed = audited_update(
                Incident.objects.filter(
                    pk=incident.pk,
                    escalation_level=incident.escalation_level,
                    next_escalation_at=incident.next_escalation_at,
                    status=Incident.Status.DETECTED,
                ),
                escalation_level=step,
                # The next step is a response target away, not counting maintenance of the incident's services.
                next_escalation_at=None if finished else incident_escalation_due(incident, now),
                response_target_missed=True,
                updated_at=now,
            )
            if not claimed:
                continue
            incident.escalation_level = step
            if finished:
                exhausted += 1
                event_record(
                    incident=incident,
                    actor=None,
                    kind=Event.Kind.ESCALATION,
                    note=f"Still unacknowledged after {rounds} rounds of the escalation chain: paging stops.",
                    at=now,
                )
                continue
            users = []
            for chain in chains:
                user = chain[step % len(chain)]
                if user not in users:
                    users.append(user)
            _page(incident, users, Event.Kind.ESCALATION, f"Unacknowledged: escalation step {step}.", now, urgent=True)
            escalated += 1
    # Medium and low incidents have no escalation timer, but their target is missed all the same.
    audited_update(
        Incident.objects.filter(
            status=Incident.Status.DETECTED, response_due_at__lte=now, response_target_missed=False
        ),
        response_target_missed=True,
    )
    _record_open_incidents()
    return {"escalated": escalated, "exhausted": exhausted}


def _record_open_incidents() -> None:
    counts = dict(
        Incident.objects.exclude(status__in=INCIDENT_CLOSED_STATUSES)
        .values_list("severity")
        .annotate(n=Count("id"))
        .values_list("severity", "n")
    )
    for severity in Incident.Severity.values:
        metrics.INCIDENTS_OPEN.labels(severity=severity).set(counts.get(severity, 0))
