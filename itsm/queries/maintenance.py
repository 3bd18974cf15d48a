"""A maintenance window's history, and its checklist as the window's admin page shows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from itsm.lifecycles import MAINTENANCE_EDITABLE_STATUSES, MAINTENANCE_UNDER_WAY_STATUSES
from itsm.models import Backup, Event, MaintenanceWindow
from itsm.queries.rows import Columns

_SPAN_FIELDS = ("started_at", "verifying_at", "cancelled_at", "ends_at")


def started_windows_of(service_ids: list[int]) -> list[list[Any]]:
    """(started_at, verifying_at, cancelled_at, ends_at) of every window of these services that has started, each
    window once, in the windows' order: the ticket clocks' pauses (itsm.services.clocks). One statement, written
    here rather than compiled by the ORM on every ticket create (docs/benchmarks.md)."""
    if not service_ids:
        return []
    sql, columns = _started_windows(len(service_ids))
    with connection.cursor() as cursor:
        cursor.execute(sql, service_ids)
        return [columns.values(row) for row in cursor.fetchall()]


@cache
def _started_windows(count: int) -> tuple[str, Columns]:
    quote = connection.ops.quote_name
    columns = Columns.of(MaintenanceWindow, "w", _SPAN_FIELDS)
    services = MaintenanceWindow._meta.get_field("services")
    window_id, service_id = quote(services.m2m_column_name()), quote(services.m2m_reverse_name())
    # Names from the models; the service ids are bound parameters.
    sql = (
        f"SELECT {columns.sql} FROM {quote(MaintenanceWindow._meta.db_table)} w"  # noqa: S608
        f" WHERE w.started_at IS NOT NULL AND EXISTS (SELECT 1 FROM {quote(services.m2m_db_table())} l"
        f" WHERE l.{window_id} = w.id AND l.{service_id} IN ({', '.join(['%s'] * count)}))"
        f" ORDER BY w.{quote('starts_at')}, w.id"
    )
    return sql, columns


def window_events(window: MaintenanceWindow) -> QuerySet[Event]:
    """Every change of the window, oldest first: its creation, edits and each status change with its actor (for
    agents and admins: requesters see windows as the status page shows them)."""
    return Event.objects.filter(window=window).select_related("actor").order_by("created_at", "id")


@dataclass(frozen=True)
class ChecklistItem:
    """One step of a window's checklist as its page shows it: `state` is done, waiting, failed or skipped."""

    name: str
    state: str
    detail: str
    results: list[dict[str, Any]] = field(default_factory=list)


def window_checklist(window: MaintenanceWindow) -> list[ChecklistItem]:
    """The manual's checklist of a window (announce, back up first, silence, verify afterwards) and how far it got,
    from the window and its backup (read with it, or one statement)."""
    return [_announcement(window), _backup(window), _silences(window), _verification(window)]


def _when(moment: datetime | str | None) -> str:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _announcement(window: MaintenanceWindow) -> ChecklistItem:
    name = "Announcement"
    if window.announced_at:
        return ChecklistItem(name, "done", f"sent {_when(window.announced_at)}")
    if window.status in MAINTENANCE_EDITABLE_STATUSES:
        return ChecklistItem(name, "waiting", f"goes out at {_when(window.starts_at - window.notify_before)}")
    return ChecklistItem(name, "skipped", "not sent")


def _backup(window: MaintenanceWindow) -> ChecklistItem:
    name = "Database backup before the start"
    backup = window.backup
    if not window.backup_required:
        return ChecklistItem(name, "skipped", "not required for this window")
    if backup is not None and backup.is_verified:
        return ChecklistItem(
            name, "done", f"backup #{backup.pk} taken {_when(backup.finished_at)}, verified {_when(backup.verified_at)}"
        )
    if backup is not None and (backup.status == Backup.Status.FAILED or backup.verified_ok is False):
        return ChecklistItem(name, "failed", f"backup #{backup.pk} failed: {backup.error or 'not verified'}")
    if window.status == MaintenanceWindow.Status.BLOCKED:
        return ChecklistItem(name, "failed", window.blocked_reason or "blocked before the start")
    if backup is not None:
        return ChecklistItem(name, "waiting", f"backup #{backup.pk} is {backup.status}, not verified yet")
    if window.status in MAINTENANCE_EDITABLE_STATUSES:
        return ChecklistItem(name, "waiting", "taken and verified at the start, before anything else")
    return ChecklistItem(name, "skipped", "not taken")


def _silences(window: MaintenanceWindow) -> ChecklistItem:
    name = "Alert silences"
    ids = [str(silence) for silence in window.silence_ids]
    if not window.silence_alerts:
        return ChecklistItem(name, "skipped", "the window's alerts are not silenced")
    if not settings.ALERTMANAGER_URL and not ids:
        return ChecklistItem(name, "skipped", "no Alertmanager configured (ALERTMANAGER_URL)")
    if window.started_at is None:
        return ChecklistItem(name, "waiting", "created in Alertmanager at the start, one per service")
    if window.status in MAINTENANCE_UNDER_WAY_STATUSES:
        if ids:
            return ChecklistItem(name, "done", f"{len(ids)} active: {', '.join(ids)}")
        return ChecklistItem(name, "failed", "none active: Alertmanager refused or could not be reached")
    if ids:
        return ChecklistItem(name, "failed", f"{len(ids)} not expired yet (tried again): {', '.join(ids)}")
    return ChecklistItem(name, "done", "expired (none left)")


def _verification(window: MaintenanceWindow) -> ChecklistItem:
    name = "Verification afterwards"
    kinds = ", ".join(check.get("expr") or check["kind"] for check in window.checks) or "no checks"
    run = window.verification or {}
    if not run:
        if window.status == MaintenanceWindow.Status.CANCELLED:
            return ChecklistItem(name, "skipped", "cancelled: nothing to verify")
        return ChecklistItem(name, "waiting", f"{kinds}, every minute for {window.verify_for} after the maintenance")
    detail = (
        f"{kinds}: {run.get('runs', 0)} run(s) from {_when(run.get('started_at'))} until {_when(run.get('until'))}, "
        f"last {_when(run.get('checked_at'))}"
    )
    state = {
        MaintenanceWindow.Status.COMPLETED: "done",
        MaintenanceWindow.Status.VERIFICATION_FAILED: "failed",
    }.get(MaintenanceWindow.Status(window.status), "waiting")
    return ChecklistItem(name, state, detail, list(run.get("results", [])))
