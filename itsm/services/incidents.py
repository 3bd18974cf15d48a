"""Every write to an incident: declaring, editing, moving through the lifecycle, notes and post-mortems."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from itsm import metrics
from itsm.audit import remember
from itsm.exceptions import Conflict, InvalidInput, NotPermitted
from itsm.lifecycles import (
    INCIDENT_CLOSED_STATUSES,
    INCIDENT_TRANSITIONS,
    POSTMORTEM_REQUIRED_SEVERITIES,
    TICKET_DONE_STATUSES,
    check_transition,
)
from itsm.models import Event, Incident, Postmortem, Service, Ticket
from itsm.models.incidents import EDITABLE_FIELDS, POSTMORTEM_FIELDS, RELATIONS
from itsm.roles import is_admin
from itsm.services.clocks import (
    RESPONSE_TARGETS,
    clock_due,
    incident_pauses,
    incident_response_due,
    maintenance_pauses_for,
)
from itsm.services.events import event_record, event_record_change
from itsm.services.paging import incident_page_on_create, incident_responded, incident_severity_changed
from itsm.services.publication import EMAIL_ADDRESS, publication_checked
from itsm.services.tickets import comment_create, ticket_create
from itsm.services.versioned import version_bump, version_bumped, version_check

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def incident_create(
    *,
    actor: Any,
    title: str,
    summary: str = "",
    severity: str = Incident.Severity.HIGH,
    services: Iterable[Service] = (),
    commander: Any = None,
    source: str = Incident.Source.MANUAL,
    linked_tickets: Iterable[Ticket] = (),
    group_key: str | None = None,
    detected_at: datetime | None = None,
    public: bool = False,
    public_title: str = "",
) -> Incident:
    """Declare an incident; its response clock starts at detection. Critical and high ones page at once. It is
    private (not on the status page, not shown to requesters) unless `public`, with its `public_title`.

    The caller holds the transaction when it needs the incident and other rows written together (the intake).
    """
    now = timezone.now()
    detected = detected_at or now
    services = list(services)
    public_title = publication_checked(public=public, public_title=public_title, noun="incident")
    # Detected while a service is in maintenance: the clock starts when the maintenance ends.
    pauses = maintenance_pauses_for(service_ids=[service.pk for service in services]) if services else []
    with transaction.atomic():
        incident = Incident.objects.create(
            title=title,
            summary=summary,
            severity=severity,
            source=source,
            commander=commander,
            created_by=actor if getattr(actor, "pk", None) else None,
            group_key=group_key,
            detected_at=detected,
            response_due_at=clock_due(detected, RESPONSE_TARGETS[Incident.Severity(severity)], pauses),
            updated_at=now,
            public=public,
            public_title=public_title,
        )
        incident.services.set(services)
        incident.linked_tickets.set(list(linked_tickets))
        event_record(
            incident=incident, actor=actor, kind=Event.Kind.CREATED, field="severity", new=severity, note=title, at=now
        )
        incident_page_on_create(incident=incident, now=now)
    metrics.INCIDENTS_DECLARED.labels(severity=severity, source=source).inc()
    return incident


def _locked(incident_id: int) -> Incident:
    return remember(Incident.objects.select_for_update().get(pk=incident_id))


def incident_update(
    *, incident_id: int, actor: Any, changes: dict[str, Any], expected_version: int | None = None
) -> Incident:
    """Edit title, summary, severity, commander or what is published; a new severity moves the response due time.
    Refused (StaleVersion) when the caller read another version than the current one (None: no check)."""
    refused = sorted(set(changes) - {*EDITABLE_FIELDS, *RELATIONS})
    if refused:
        raise InvalidInput({name: ["This field cannot be changed here."] for name in refused})
    with transaction.atomic():
        incident = _locked(incident_id)
        version_check(incident, expected_version)
        if {"public", "public_title"} & set(changes):
            changes = {
                **changes,
                "public_title": publication_checked(
                    public=changes.get("public", incident.public),
                    public_title=changes.get("public_title", incident.public_title),
                    noun="incident",
                ),
            }
        now = timezone.now()
        changed: list[str] = []
        for name in set(EDITABLE_FIELDS) & set(changes):
            old, new = getattr(incident, name), changes[name]
            if event_record_change(incident=incident, actor=actor, field=name, old=old, new=new, at=now):
                setattr(incident, name, new)
                changed.append(name)
        for relation in set(RELATIONS) & set(changes):
            manager, values = getattr(incident, relation), list(changes[relation])
            before = set(manager.values_list("pk", flat=True))
            if event_record_change(incident=incident, actor=actor, field=relation, old=before, new=set(values), at=now):
                manager.set(values)
                changed.append("updated_at")  # what readers see changed: a new ETag
        if "severity" in changed:
            incident.response_due_at = incident_response_due(incident)
            changed.append("response_due_at")
            changed += incident_severity_changed(incident=incident, now=now)
        elif "services" in changes and incident.status == Incident.Status.DETECTED:
            changed += _refresh_clock(incident)  # other services, other maintenance windows
        if changed:
            incident.updated_at = now
            incident.save(update_fields=sorted({*changed, "updated_at", version_bump(incident)}))
            version_bumped(incident)
    return incident


def _refresh_clock(incident: Incident) -> list[str]:
    """Move an unacknowledged incident's due time, and its escalation timer with it, to fit the maintenance of its
    services as it now stands. Returns the fields changed (not saved)."""
    pauses = incident_pauses(incident)
    changed = []
    due = incident_response_due(incident, pauses)
    if due != incident.response_due_at:
        incident.response_due_at = due
        changed.append("response_due_at")
    if incident.next_escalation_at is not None:
        if incident.escalation_level == 0:
            timer = due
        else:
            last_step = (
                Event.objects.filter(incident=incident, kind=Event.Kind.ESCALATION)
                .order_by("-created_at", "-id")
                .values_list("created_at", flat=True)
                .first()
            )
            target = RESPONSE_TARGETS[Incident.Severity(incident.severity)]
            timer = clock_due(last_step or incident.next_escalation_at - target, target, pauses)
        if timer != incident.next_escalation_at:
            incident.next_escalation_at = timer
            changed.append("next_escalation_at")
    return changed


def incident_clocks_refresh(*, service_ids: Iterable[int]) -> int:
    """A maintenance window of these services started or ended: the unacknowledged incidents' due times and
    escalation timers move by the window (acknowledged ones were answered: their due time is history)."""
    ids = list(
        Incident.objects.filter(status=Incident.Status.DETECTED, services__in=list(service_ids))
        .values_list("pk", flat=True)
        .distinct()
    )
    moved = 0
    for incident_id in ids:
        with transaction.atomic():
            incident = _locked(incident_id)
            if incident.status != Incident.Status.DETECTED:
                continue
            changed = _refresh_clock(incident)
            if changed:
                incident.save(update_fields=changed)
                moved += 1
    return moved


def incident_transition(
    *, incident_id: int, actor: Any, to: str, note: str = "", expected_version: int | None = None
) -> Incident:
    """Move an incident by the lifecycle table. The first move out of `detected` is the response; a reopen (out of
    `resolved`, back to work) clears the resolution time, which the move on to `reviewed` keeps. A move is refused
    (StaleVersion) when the caller read another version (None: no check); asking for the current state is not."""
    if to not in Incident.Status.values:
        choices = ", ".join(Incident.Status.values)
        raise InvalidInput({"to": [f'"{to}" is not an incident status. Choose one of: {choices}.']})
    with transaction.atomic():
        incident = _locked(incident_id)
        if incident.status == to:
            return incident
        version_check(incident, expected_version)
        check_transition(INCIDENT_TRANSITIONS, incident.status, to)
        if to == Incident.Status.REVIEWED:
            _check_reviewable(incident)
        now = timezone.now()
        old = incident.status
        incident.status = to
        changed = ["status", "updated_at", f"{to}_at"]
        setattr(incident, f"{to}_at", now)
        skipped = _skipped_states(old, to)
        if old == Incident.Status.DETECTED:
            changed += incident_responded(incident=incident, now=now)
            metrics.INCIDENT_TIME_TO_ACKNOWLEDGE.labels(severity=incident.severity).observe(
                (now - incident.detected_at).total_seconds()
            )
            if to == Incident.Status.ACKNOWLEDGED and incident.commander_id is None and getattr(actor, "pk", None):
                incident.commander = actor
                changed.append("commander")
        if to == Incident.Status.RESOLVED:
            metrics.INCIDENT_TIME_TO_RESOLVE.labels(severity=incident.severity).observe(
                (now - incident.detected_at).total_seconds()
            )
        if old == Incident.Status.RESOLVED and to != Incident.Status.REVIEWED:
            incident.resolved_at = None
            changed.append("resolved_at")
        incident.updated_at = now
        incident.save(update_fields=sorted({*changed, version_bump(incident)}))
        version_bumped(incident)
        suffix = f" (skipped {', '.join(skipped)})" if skipped else ""
        event_record(
            incident=incident,
            actor=actor,
            kind=Event.Kind.TRANSITION,
            field="status",
            old=old,
            new=to,
            note=f"{note}{suffix}".strip(),
            at=now,
        )
        if to == Incident.Status.RESOLVED:
            _tell_linked_tickets(incident, actor, note)
    return incident


def _skipped_states(old: str, to: str) -> list[str]:
    order = [s for s in Incident.Status.values if s != Incident.Status.REVIEWED]
    if old in order and to in order and order.index(to) > order.index(old) + 1:
        return order[order.index(old) + 1 : order.index(to)]
    return []


def _check_reviewable(incident: Incident) -> None:
    if incident.severity not in POSTMORTEM_REQUIRED_SEVERITIES:
        return
    final = Postmortem.objects.filter(incident=incident, status=Postmortem.Status.FINAL).exists()
    if not final:
        raise Conflict(
            f"A {incident.severity} incident can be marked reviewed only with a final post-mortem: "
            "write it at /postmortem/ and set its status to final."
        )


def _tell_linked_tickets(incident: Incident, actor: Any, note: str) -> None:
    """The people who reported the outage hear that it is over, on their own tickets: by the incident's public title
    if it has been published, else by its number alone (its internal title is for agents)."""
    author = actor if getattr(actor, "pk", None) else incident.commander
    if author is None:
        return
    name = f"INC-{incident.pk} ({incident.public_title})" if incident.public else f"INC-{incident.pk}"
    body = f"The incident {name} affecting this ticket has been resolved."
    if note:
        body += f"\n\n{note}"
    for ticket_id in incident.linked_tickets.exclude(status__in=TICKET_DONE_STATUSES).values_list("id", flat=True):
        comment_create(ticket_id=ticket_id, author=author, body=body)


def incident_note(*, incident_id: int, actor: Any, body: str) -> Event:
    """Add a note to the timeline (what was tried, what was seen)."""
    with transaction.atomic():
        incident = _locked(incident_id)
        incident.updated_at = timezone.now()
        incident.save(update_fields=["updated_at", version_bump(incident)])
        return event_record(incident=incident, actor=actor, kind=Event.Kind.NOTE, note=body, at=incident.updated_at)


def incident_status_update(*, incident_id: int, actor: Any, body: str) -> Event:
    """Post a public status update: the status page shows an active incident's latest one, with its time.

    Everything else on the timeline stays internal. An update naming an e-mail address is refused, so nobody's
    address reaches the public page by a slip."""
    body = body.strip()
    if not body:
        raise InvalidInput({"body": ["A public update needs some text."]})
    if EMAIL_ADDRESS.search(body):
        raise InvalidInput({"body": ["Public updates are shown to anyone: remove the e-mail address."]})
    with transaction.atomic():
        incident = _locked(incident_id)
        incident.updated_at = timezone.now()
        incident.save(update_fields=["updated_at", version_bump(incident)])
        return event_record(
            incident=incident, actor=actor, kind=Event.Kind.STATUS_UPDATE, note=body, at=incident.updated_at
        )


def postmortem_save(
    *, incident_id: int, actor: Any, data: dict[str, Any], expected_version: int | None = None
) -> Postmortem:
    """Create or update the post-mortem. A final one needs every section written and a resolved incident. An
    update is refused (StaleVersion) when the caller read another version; 0 is "none written yet" (None: no
    check)."""
    with transaction.atomic():
        incident = _locked(incident_id)
        now = timezone.now()
        postmortem = Postmortem.objects.filter(incident=incident).first() or Postmortem(
            incident=incident, updated_at=now
        )
        if postmortem.pk is not None:
            version_check(remember(postmortem), expected_version)
            version_bump(postmortem)
        was_final = postmortem.status == Postmortem.Status.FINAL
        for name in (*POSTMORTEM_FIELDS, "status"):
            if name in data:
                setattr(postmortem, name, data[name])
        if postmortem.status == Postmortem.Status.FINAL:
            _check_finalizable(incident, postmortem)
            if not was_final:
                postmortem.finalized_at = now
        else:
            postmortem.finalized_at = None
        postmortem.author = postmortem.author or (actor if getattr(actor, "pk", None) else None)
        postmortem.updated_at = now
        postmortem.save()
        version_bumped(postmortem)
        event_record(
            incident=incident, actor=actor, kind=Event.Kind.CHANGED, field="postmortem", new=postmortem.status, at=now
        )
    return postmortem


def _check_finalizable(incident: Incident, postmortem: Postmortem) -> None:
    if incident.status not in INCIDENT_CLOSED_STATUSES:
        raise Conflict("A post-mortem can be final only once the incident is resolved.")
    missing = [
        name for name in ("summary", "impact", "root_cause", "resolution") if not getattr(postmortem, name).strip()
    ]
    if missing:
        raise InvalidInput({name: ["A final post-mortem needs this section."] for name in missing})


def postmortem_add_action_item(
    *,
    incident_id: int,
    actor: Any,
    title: str,
    description: str = "",
    priority: str = Ticket.Priority.MEDIUM,
    assignee: Any = None,
) -> Ticket:
    """An action item is a ticket, linked to the post-mortem, so it is worked and tracked to closure."""
    with transaction.atomic():
        incident = _locked(incident_id)
        now = timezone.now()
        postmortem = Postmortem.objects.filter(incident=incident).first()
        if postmortem is None:
            postmortem = Postmortem.objects.create(incident=incident, author=actor, updated_at=now)
        else:  # its action items are part of it: a new ETag
            postmortem.updated_at = now
            postmortem.save(update_fields=["updated_at", version_bump(postmortem)])
        ticket = ticket_create(
            requester=actor,
            actor=actor,
            title=title,
            description=description or f"Action item of INC-{incident.pk}.",
            priority=priority,
            category="postmortem",
            assignee=assignee,
        )
        postmortem.action_items.add(ticket)
        event_record(
            incident=incident,
            actor=actor,
            kind=Event.Kind.CHANGED,
            field="action_item",
            new=ticket.pk,
            note=title,
            at=now,
        )
    return ticket


def incident_open_for_rule(*, key: str, title: str, summary: str, severity: str = Incident.Severity.HIGH) -> Incident:
    """A built-in check found a problem: open one incident for it, or add a note to the one still open.

    `key` is the incident's group key, so concurrent checks collapse into one incident as alert groups do.
    """
    group_key = f"rule:{key}"
    existing = Incident.objects.filter(group_key=group_key).exclude(status__in=INCIDENT_CLOSED_STATUSES).first()
    if existing is None:
        try:
            with transaction.atomic():
                return incident_create(
                    actor=None,
                    title=title,
                    summary=summary,
                    severity=severity,
                    source=Incident.Source.RULE,
                    group_key=group_key,
                )
        except IntegrityError:
            existing = Incident.objects.filter(group_key=group_key).exclude(status__in=INCIDENT_CLOSED_STATUSES).get()
    incident_note(incident_id=existing.pk, actor=None, body=f"Still failing: {summary}")
    return existing


def incident_delete(*, incident_id: int, actor: Any) -> None:
    """Delete an incident with its timeline. Admins only: everyone else resolves it."""
    if not is_admin(actor):
        raise NotPermitted("Only admins can delete incidents.")
    Incident.objects.filter(pk=incident_id).delete()
