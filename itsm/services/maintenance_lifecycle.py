"""A maintenance window's lifecycle: the manual moves people ask for, and the every-minute scheduler that runs the
manual's checklist (announce, back up first, start, verify afterwards). `_move` is the only code that changes a
window's status: it checks the transition table, stamps the time and appends the window's Event with its actor.

The scheduler is safe to run twice: every step is claimed with a compare-and-set update on the window, so a
duplicated Beat message announces nothing twice, takes no second backup, runs the checks once per minute and
opens no second incident.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from itsm.audit import audited_update
from itsm.exceptions import Conflict
from itsm.lifecycles import MAINTENANCE_EDITABLE_STATUSES, MAINTENANCE_TRANSITIONS, check_transition
from itsm.models import Backup, Event, Incident, MaintenanceWindow
from itsm.roles import sees_public_view_only
from itsm.services.backups import backup_create, backup_run
from itsm.services.events import event_record
from itsm.services.health import check_api_over_http
from itsm.services.incidents import incident_clocks_refresh, incident_create
from itsm.services.maintenance import (
    audience_of,
    maintenance_expand,
    maintenance_silence,
    maintenance_unsilence,
    services_text,
    when_text,
)
from itsm.services.monitoring import MonitoringUnavailable, alertmanager_request, prometheus_query
from itsm.services.notifications import notify
from itsm.services.sla import sla_recompute_open_tickets
from itsm.services.versioned import versioned_write

logger = logging.getLogger(__name__)

Status = MaintenanceWindow.Status

# A pre-start gate claimed this long ago whose process never finished it (a killed worker) may be claimed again.
GATE_TIMEOUT = timedelta(minutes=30)
# The time each status is entered, stamped by `_move`.
STAMPS = {
    Status.IN_PROGRESS: "started_at",
    Status.VERIFYING: "verifying_at",
    Status.COMPLETED: "completed_at",
    Status.CANCELLED: "cancelled_at",
    Status.BLOCKED: "blocked_at",
    Status.VERIFICATION_FAILED: "verification_failed_at",
}


# --- moves people ask for ------------------------------------------------------------------------------------------
def maintenance_transition(
    *, window_id: int, actor: Any, to: str, now: datetime | None = None, expected_version: int | None = None
) -> MaintenanceWindow:
    """A manual move: start now (through the backup gate), complete early (the verification period starts now),
    cancel, retry a blocked window, re-run failed checks (a new verification period), accept the outcome
    (completed, without waiting for the period's end). Asking for the current state does nothing. A move from a
    stale version (`expected_version`, None: no check) is refused with StaleVersion before anything is written."""
    now = now or timezone.now()
    window = MaintenanceWindow.objects.get(pk=window_id)
    if window.status == to:
        return window
    check_transition(MAINTENANCE_TRANSITIONS, window.status, to)
    if expected_version is not None:
        # The check and a bump under the row lock claim the version: of two moves from one read, one is refused.
        # The move itself may wait on the backup gate, too long to hold the lock.
        versioned_write(
            model=MaintenanceWindow,
            pk=window_id,
            expected_version=expected_version,
            write=lambda locked: locked.save(update_fields=["version"]),
        )
    if to == Status.IN_PROGRESS:
        if maintenance_start(window_id=window_id, now=now, force=True, actor=actor) is None:
            raise Conflict("The window's pre-start gate is already running; it starts when its backup is verified.")
    elif to == Status.VERIFYING:
        maintenance_end(window_id=window_id, now=now, actor=actor)
    elif to == Status.SCHEDULED:
        _move(window_id, window.status, to, now, actor=actor, gate_started_at=None, blocked_reason="")
    elif to == Status.COMPLETED:
        if _move(window_id, window.status, to, now, actor=actor):
            _finish(MaintenanceWindow.objects.get(pk=window_id))
    elif _move(window_id, window.status, to, now, actor=actor) and window.recurrence and window.series_id is None:
        # Cancelling the first occurrence of a series cancels the series: its later occurrences too.
        later = window.occurrences.filter(status__in=MAINTENANCE_EDITABLE_STATUSES).values_list("pk", "status")
        for occurrence_id, status in later:
            _move(occurrence_id, status, to, now, actor=actor, note=f"The series MW-{window.pk} was cancelled.")
    if to in (Status.CANCELLED, Status.COMPLETED):
        maintenance_unsilence(window_id=window_id)
    if to == Status.CANCELLED and window.status == Status.IN_PROGRESS:
        _recompute_clocks(window_id)  # aborted: the maintenance ended now, the paused clocks run again
    return MaintenanceWindow.objects.get(pk=window_id)


def _move(
    window_id: int, current: str, to: str, now: datetime, *, actor: Any = None, note: str = "", **fields: Any
) -> bool:
    """The one change of a window's status: compare-and-set it, stamp the time of the new state and append the
    window's Event with its actor (None: the scheduler). False when another process moved the window first."""
    check_transition(MAINTENANCE_TRANSITIONS, current, to)
    stamp = STAMPS.get(Status(to))
    # Checks run again after a failure: the maintenance still ended when it first moved to verifying.
    if stamp and not (to == Status.VERIFYING and current == Status.VERIFICATION_FAILED):
        fields[stamp] = now
    with transaction.atomic():
        moved = audited_update(
            MaintenanceWindow.objects.filter(pk=window_id, status=current),
            status=to,
            updated_at=now,
            version=F("version") + 1,
            **fields,
        )
        if moved:
            event_record(
                window_id=window_id,
                actor=actor,
                kind=Event.Kind.TRANSITION,
                field="status",
                old=current,
                new=to,
                note=note or fields.get("blocked_reason", ""),
                at=now,
            )
    if moved:
        logger.info("maintenance window %s: %s -> %s", window_id, current, to)
    return bool(moved)


# --- the scheduler -------------------------------------------------------------------------------------------------
def maintenance_tick(*, now: datetime | None = None) -> dict[str, Any]:
    """One run of the every-minute job: expand series, announce, run the gate and start, end and verify."""
    now = now or timezone.now()
    summary: dict[str, Any] = {
        "expanded": 0,
        "announced": [],
        "started": [],
        "blocked": [],
        "verified": [],
        "errors": [],
    }

    def guarded(window: MaintenanceWindow, step: Callable[[], None]) -> None:
        # One window's failure (a broken check, a notification error) must not hold up the others.
        try:
            step()
        except Exception as exc:
            logger.exception("maintenance window %s: the scheduler step failed", window.pk)
            summary["errors"].append(f"MW-{window.pk}: {type(exc).__name__}: {exc}"[:500])

    def expand(window: MaintenanceWindow) -> None:
        summary["expanded"] += maintenance_expand(window=window, now=now)

    def announce(window: MaintenanceWindow) -> None:
        if window.starts_at - window.notify_before <= now < window.ends_at and maintenance_announce(
            window_id=window.pk, now=now
        ):
            summary["announced"].append(window.pk)

    def start(window: MaintenanceWindow) -> None:
        outcome = maintenance_start(window_id=window.pk, now=now)
        if outcome == Status.IN_PROGRESS:
            summary["started"].append(window.pk)
        elif outcome == Status.BLOCKED:
            summary["blocked"].append(window.pk)

    def end(window: MaintenanceWindow) -> None:
        outcome = maintenance_end(window_id=window.pk, now=now)
        if outcome is not None:
            summary["verified"].append(outcome)

    def verify(window: MaintenanceWindow) -> None:
        outcome = maintenance_verify(window_id=window.pk, now=now)
        if outcome is not None:
            summary["verified"].append(outcome)

    windows = MaintenanceWindow.objects
    for window in windows.filter(series__isnull=True).exclude(recurrence="").exclude(status=Status.CANCELLED):
        guarded(window, partial(expand, window))
    for window in windows.filter(status=Status.SCHEDULED, announced_at__isnull=True):
        guarded(window, partial(announce, window))
    for window in windows.filter(status=Status.SCHEDULED, starts_at__lte=now):
        guarded(window, partial(start, window))
    for window in windows.filter(status=Status.IN_PROGRESS, ends_at__lte=now):
        guarded(window, partial(end, window))
    # Every tick runs the checks of every verifying window once (a window just ended ran them above).
    for window in windows.filter(status=Status.VERIFYING):
        guarded(window, partial(verify, window))
    return summary


def maintenance_announce(*, window_id: int, now: datetime) -> bool:
    """Tell the window's audience once; a second call (or a second scheduler) sends nothing."""
    with transaction.atomic():
        claimed = audited_update(
            MaintenanceWindow.objects.filter(pk=window_id, status=Status.SCHEDULED, announced_at__isnull=True),
            announced_at=now,
        )
        if not claimed:
            return False
        window = MaintenanceWindow.objects.get(pk=window_id)
        audience = audience_of(window)
        staff = [user for user in audience if not sees_public_view_only(user)]
        public = [user for user in audience if sees_public_view_only(user)]
        when = f"Maintenance scheduled for {when_text(window)}"
        affected = f"Services affected: {services_text(window)}"
        if staff:
            notify(
                users=staff,
                subject=f"{when}: {window.title}",
                body=f"{when}.\n\n{affected}\n\n{window.description}".strip(),
            )
        if public:
            # Requesters named on the window read it as the status page would: its public title once published,
            # never the internal title or description.
            subject = f"{when}: {window.public_title}" if window.public else when
            notify(users=public, subject=subject, body=f"{when}.\n\n{affected}")
    return True


def maintenance_start(*, window_id: int, now: datetime, force: bool = False, actor: Any = None) -> str | None:
    """The pre-start gate, then the start: a verified database backup first when the window requires one.

    A failed backup leaves the window blocked, opens a high incident linked to it and pages the owner. Returns
    the status reached, or None when another process holds the gate or the window is no longer scheduled."""
    window = MaintenanceWindow.objects.get(pk=window_id)
    if window.status != Status.SCHEDULED or (not force and window.starts_at > now):
        return None
    if not force and window.ends_at <= now:
        if _move(window_id, Status.SCHEDULED, Status.BLOCKED, now, blocked_reason="Its end passed before it started."):
            return Status.BLOCKED
        return None
    claimed = (
        MaintenanceWindow.objects.filter(pk=window_id, status=Status.SCHEDULED)
        .filter(Q(gate_started_at__isnull=True) | Q(gate_started_at__lt=now - GATE_TIMEOUT))
        .update(gate_started_at=now)
    )
    if not claimed:
        return None
    if window.backup_required:
        backup, problem = _pre_maintenance_backup(window)
        audited_update(MaintenanceWindow.objects.filter(pk=window_id), backup=backup)
        if problem:
            with transaction.atomic():
                if _move(
                    window_id, Status.SCHEDULED, Status.BLOCKED, timezone.now(), actor=actor, blocked_reason=problem
                ):
                    _open_incident(MaintenanceWindow.objects.get(pk=window_id), "could not start", problem)
            return Status.BLOCKED
    if _move(window_id, Status.SCHEDULED, Status.IN_PROGRESS, timezone.now(), actor=actor):
        maintenance_silence(window_id=window_id)
        _recompute_clocks(window_id)
        return Status.IN_PROGRESS
    return None


def _pre_maintenance_backup(window: MaintenanceWindow) -> tuple[Backup | None, str]:
    """Take and verify a database backup now, in this process. Returns it and, when it is unusable, why."""
    try:
        backup = backup_create(
            kind=Backup.Kind.DATABASE, trigger=Backup.Trigger.PRE_MAINTENANCE, requested_by=window.owner, enqueue=False
        )
        finished = backup_run(backup_id=backup.pk)
    except Exception as exc:
        logger.exception("pre-maintenance backup for window %s failed", window.pk)
        return None, f"The pre-maintenance backup failed: {type(exc).__name__}: {exc}"
    if finished is None or not finished.is_verified:
        detail = (finished.error if finished else "") or "it was not verified"
        return backup, f"The pre-maintenance backup #{backup.pk} failed: {detail}"
    return finished, ""


def _open_incident(window: MaintenanceWindow, what: str, detail: str) -> Incident:
    """A high incident about the window's services, linked to it; its owner is paged besides the on-call."""
    incident = incident_create(
        actor=None,
        title=f"Maintenance window MW-{window.pk} {what}: {window.title}"[:200],
        summary=detail,
        severity=Incident.Severity.HIGH,
        services=list(window.services.all()),
    )
    window.incidents.add(incident)
    if window.owner is not None:
        notify(
            users=[window.owner],
            subject=f"[HIGH] INC-{incident.pk}: {incident.title}",
            body=f"{incident.title}\n\n{detail}\n\nYou own maintenance window MW-{window.pk}.",
            incident=incident,
            urgent=True,
            include_endpoints=False,
        )
    return incident


# --- verification --------------------------------------------------------------------------------------------------
def _check_api_health() -> dict[str, Any]:
    """The API answers its /health/ over HTTP at ITSM_API_HEALTH_URL (through Nginx in compose)."""
    try:
        check_api_over_http()
    except ConnectionError as exc:
        return {"kind": "api_health", "ok": False, "error": str(exc)[:300]}
    return {"kind": "api_health", "ok": True}


def _check_promql(window: MaintenanceWindow, check: dict[str, Any]) -> dict[str, Any]:
    """The expression holds when Prometheus returns at least one sample and none of them is 0."""
    expr = check["expr"]
    outcome: dict[str, Any] = {"kind": "promql", "expr": expr, "ok": False}
    try:
        values = prometheus_query(expr)
    except MonitoringUnavailable as exc:
        return outcome | {"error": str(exc)[:300]}
    if not values:
        return outcome | {"error": "the expression returned nothing"}
    if any(value == 0 for value in values):
        return outcome | {"error": "a sample is 0"}
    return outcome | {"ok": True}


def _check_no_firing_alerts(window: MaintenanceWindow, check: dict[str, Any]) -> dict[str, Any]:
    """No alert of the affected services still fires in Alertmanager (silenced ones count: they still fire)."""
    outcome: dict[str, Any] = {"kind": "no_firing_alerts", "ok": False}
    if not settings.ALERTMANAGER_URL:
        return outcome | {"error": "ALERTMANAGER_URL is not set"}
    firing: list[str] = []
    try:
        for slug in window.services.order_by("slug").values_list("slug", flat=True):
            query = urlencode({"filter": f'service="{slug}"', "active": "true", "silenced": "true"})
            for alert in alertmanager_request("GET", f"/api/v2/alerts?{query}") or []:
                firing.append(f"{alert['labels'].get('alertname', '?')} ({slug})")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return outcome | {"error": f"{type(exc).__name__}: {exc}"[:300]}
    if firing:
        return outcome | {"error": f"still firing: {', '.join(sorted(firing))}"[:300]}
    return outcome | {"ok": True}


CHECKS = {
    "api_health": lambda window, check: _check_api_health(),
    "promql": _check_promql,
    "no_firing_alerts": _check_no_firing_alerts,
}


def maintenance_end(*, window_id: int, now: datetime, actor: Any = None) -> dict[str, Any] | None:
    """The maintenance is over (its planned end, or ended early), or failed checks are run again: the window is
    verifying from now until now + its `verify_for`, and the checks run for the first time."""
    window = MaintenanceWindow.objects.get(pk=window_id)
    if window.status not in (Status.IN_PROGRESS, Status.VERIFICATION_FAILED):
        return None
    period = {"started_at": now.isoformat(), "until": (now + window.verify_for).isoformat(), "runs": 0}
    if not _move(
        window_id,
        window.status,
        Status.VERIFYING,
        now,
        actor=actor,
        verify_until=now + window.verify_for,
        last_checked_at=None,
        verification=period,
    ):
        return None
    if window.status == Status.IN_PROGRESS:
        _recompute_clocks(window_id)  # the maintenance itself is over: clocks run again from the move to verifying
    return maintenance_verify(window_id=window_id, now=now)


def maintenance_verify(*, window_id: int, now: datetime) -> dict[str, Any] | None:
    """One run of a verifying window's checks, at most one per minute however many schedulers ask.

    Any check failing → verification_failed and one high incident linked to the window. Every run passing until
    the verification period is over → completed and the completion notice. Returns None when nothing ran."""
    slot = now.replace(second=0, microsecond=0)
    claimed = (
        MaintenanceWindow.objects.filter(pk=window_id, status=Status.VERIFYING)
        .filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=slot))
        .update(last_checked_at=now)
    )
    if not claimed:
        return None
    window = MaintenanceWindow.objects.get(pk=window_id)
    results = [CHECKS[check["kind"]](window, check) for check in window.checks]
    passed = all(result["ok"] for result in results)
    until = window.verify_until or now
    verification = {
        **window.verification,
        "runs": int(window.verification.get("runs", 0)) + 1,
        "checked_at": now.isoformat(),
        "passed": passed,
        "results": results,
    }
    outcome = Status.VERIFYING
    with transaction.atomic():
        if not passed:
            failed = "; ".join(f"{r['kind']}: {r.get('error', 'failed')}" for r in results if not r["ok"])
            detail = f"Checks that failed after the maintenance: {failed}"
            to = Status.VERIFICATION_FAILED
            if _move(window_id, Status.VERIFYING, to, now, note=detail, verification=verification):
                outcome = Status.VERIFICATION_FAILED
                _open_incident(window, "failed its checks", detail)
        elif now >= until:
            if _move(window_id, Status.VERIFYING, Status.COMPLETED, now, verification=verification):
                outcome = Status.COMPLETED
                _finish(MaintenanceWindow.objects.get(pk=window_id))
        else:
            audited_update(
                MaintenanceWindow.objects.filter(pk=window_id, status=Status.VERIFYING, last_checked_at=now),
                verification=verification,
                updated_at=now,
                version=F("version") + 1,
            )
    if outcome != Status.VERIFYING:
        maintenance_unsilence(window_id=window_id)
    return {"window": window_id, "passed": passed, "status": outcome}


def _finish(window: MaintenanceWindow) -> None:
    notify(
        users=audience_of(window),
        subject=f"Maintenance completed successfully: {window.title}",
        body=f"Maintenance completed successfully.\n\nServices affected: {services_text(window)}",
    )


def _recompute_clocks(window_id: int) -> None:
    """The window started or ended: the due times of its services' open tickets and unacknowledged incidents move."""
    service_ids = list(MaintenanceWindow.objects.get(pk=window_id).services.values_list("pk", flat=True))
    if service_ids:
        sla_recompute_open_tickets(service_ids=service_ids)
        incident_clocks_refresh(service_ids=service_ids)
