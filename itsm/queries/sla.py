"""The SLA policy a ticket of a service and priority runs on, read with its calendar in one statement written once.

Every ticket create asks this. Django compiled the same query (a join to the scopes, a CASE rank, the calendar) on
every request, which cost a third of a create's CPU in the profile (docs/benchmarks.md, issue 19); the text here
is built once per process from the models' tables and columns, and the backend's converters are applied to what it
reads, as the ORM would (SQLite stores times as text, JSON as text).
"""

from __future__ import annotations

from functools import cache

from django.db import connection

from itsm.models import BusinessCalendar, SlaPolicy, SlaPolicyScope
from itsm.queries.rows import Columns


@cache
def _statement() -> tuple[str, Columns, Columns]:
    quote = connection.ops.quote_name
    policy, calendar = Columns.of(SlaPolicy, "p"), Columns.of(BusinessCalendar, "c")
    policies, scopes = quote(SlaPolicy._meta.db_table), quote(SlaPolicyScope._meta.db_table)
    calendars = quote(BusinessCalendar._meta.db_table)
    # Ranks as in the ORM query this replaces: service and priority 0, service 1, priority 2, the default 3. With
    # no service, `s.service_id = NULL` is never true, so only the priority's scopes and the default match.
    sql = (
        f"SELECT {policy.sql}, {calendar.sql} FROM {policies} p"  # noqa: S608 (names from the models)
        f" LEFT OUTER JOIN {scopes} s ON s.policy_id = p.id JOIN {calendars} c ON c.id = p.calendar_id"
        " WHERE (s.service_id IS NULL AND s.priority = %s) OR (s.service_id = %s AND s.priority IN (%s, ''))"
        " OR p.is_default"
        " ORDER BY CASE WHEN s.service_id = %s AND s.priority = %s THEN 0"
        " WHEN s.service_id = %s AND s.priority = '' THEN 1"
        " WHEN s.service_id IS NULL AND s.priority = %s THEN 2 ELSE 3 END, p.id LIMIT 1"
    )
    return sql, policy, calendar


def sla_policy_matching(service_id: int | None, priority: str) -> SlaPolicy | None:
    """The most specific policy whose scope matches (service and priority, then service, then priority), else the
    default, with its calendar; None when there is no policy at all."""
    sql, policy_columns, calendar_columns = _statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [priority, service_id, priority, service_id, priority, service_id, priority])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(policy_columns.attnames)
    policy: SlaPolicy = policy_columns.build(row[:split])
    policy.calendar = calendar_columns.build(row[split:])
    return policy
