"""Incidents as the API reads them: who sees which part of an incident, and the read model of a page of incidents
(counts and relation ids read in few, precompiled statements; docs/benchmarks.md)."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connection
from django.db.models import CharField, IntegerField, ManyToManyField, QuerySet
from django.db.models.expressions import RawSQL

from itsm.lifecycles import TICKET_DONE_STATUSES
from itsm.models import Event, Incident, Postmortem, Ticket
from itsm.roles import is_staff_role


def incident_timeline_visible_to(user: Any, incident: Incident) -> QuerySet[Event]:
    """The timeline, oldest first. Internal notes, pages and escalations are for agents and admins: a requester
    reads the public status updates only (of a public incident: the API shows them no other), as the status page
    shows them."""
    events = Event.objects.filter(incident=incident).select_related("actor").order_by("created_at", "id")
    if is_staff_role(user):
        return events
    return events.filter(kind=Event.Kind.STATUS_UPDATE)


def postmortem_timeline(postmortem: Postmortem) -> QuerySet[Event]:
    """The whole timeline of the post-mortem's incident (post-mortems are for agents and admins)."""
    return Event.objects.filter(incident_id=postmortem.incident_id).select_related("actor").order_by("created_at", "id")


@cache
def _open_action_items() -> RawSQL:
    """Open action-item tickets of the incident's post-mortem. Written as SQL: Django compiles the same subquery
    on every read (about 2 ms of an incident's 4 ms in docs/benchmarks.md); this text is built once."""
    done = sorted(TICKET_DONE_STATUSES)
    placeholders = ", ".join(["%s"] * len(done))
    items, tickets, postmortems = (
        Postmortem.action_items.through._meta.db_table,
        Ticket._meta.db_table,
        Postmortem._meta.db_table,
    )
    return RawSQL(  # noqa: S611 (table names from the models, the statuses bound parameters)
        f"SELECT COUNT(t.id) FROM {items} i JOIN {tickets} t ON t.id = i.ticket_id"  # noqa: S608
        f" JOIN {postmortems} p ON p.id = i.postmortem_id"
        f" WHERE p.incident_id = {Incident._meta.db_table}.id AND t.status NOT IN ({placeholders})",
        done,
        output_field=IntegerField(),
    )


@cache
def _postmortem_status() -> RawSQL:
    return RawSQL(  # noqa: S611 (table names from the models)
        f"SELECT status FROM {Postmortem._meta.db_table} WHERE incident_id = {Incident._meta.db_table}.id",  # noqa: S608
        (),
        output_field=CharField(),
    )


def incidents_with_counts() -> QuerySet[Incident]:
    """Incidents with their post-mortem's open action items and status (`relation_ids` reads the ids of their
    services and linked tickets for a page)."""
    return Incident.objects.annotate(open_action_items=_open_action_items(), postmortem_status=_postmortem_status())


@cache
def _relation_sql() -> dict[str, str]:
    """Per relation, the SELECT of (incident id, related id) in the order the API shows them (services by name,
    linked tickets newest first), from the through tables; `{ids}` takes the placeholders of a page's ids."""
    quote = connection.ops.quote_name
    sql = {}
    for name, order in (("services", "r.name, r.id"), ("linked_tickets", "r.created_at DESC, r.id DESC")):
        field = Incident._meta.get_field(name)
        assert isinstance(field, ManyToManyField)
        through, related = quote(field.m2m_db_table()), quote(field.related_model._meta.db_table)
        incident, other = quote(field.m2m_column_name()), quote(field.m2m_reverse_name())
        sql[name] = (
            f"SELECT x.{incident}, x.{other} FROM {through} x JOIN {related} r ON r.id = x.{other}"  # noqa: S608
            f" WHERE x.{incident} IN ({{ids}}) ORDER BY {order}"
        )
    return sql


def relation_ids(incidents: list[Incident]) -> dict[int, dict[str, list[int]]]:
    """The ids of each incident's services and linked tickets, two statements for a whole page: the serializer
    shows only ids, and Django's prefetch (or compiling two joins) cost more than the rows (docs/benchmarks.md)."""
    ids: dict[int, dict[str, list[int]]] = {
        incident.pk: {"services": [], "linked_tickets": []} for incident in incidents
    }
    if not ids:
        return ids
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        for name, sql in _relation_sql().items():
            cursor.execute(sql.format(ids=placeholders), list(ids))
            for incident_id, other_id in cursor.fetchall():
                ids[incident_id][name].append(other_id)
    return ids
