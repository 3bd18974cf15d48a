"""Every write to a maintenance window: scheduling one, moving it through its lifecycle, and the scheduler that
runs the manual's checklist (announce, back up first, start, verify afterwards).

The scheduler is safe to run twice: every step is claimed with a compare-and-set update on the window, so a
duplicated Beat message announces nothing twice, takes no second backup, runs the checks once per minute and
opens no second incident.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from dateutil.rrule import rrulestr
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from itsm.exceptions import Conflict, InvalidInput
from itsm.lifecycles import MAINTENANCE_TRANSITIONS, check_transition
from itsm.models import Backup, Incident, MaintenanceWindow, Service
from itsm.models.maintenance import default_verify_for

logger = logging.getLogger(__name__)

Status = MaintenanceWindow.Status

# How far ahead the occurrences of a recurring window exist as rows, and at most how many at once.
RECURRENCE_HORIZON = timedelta(days=35)
RECURRENCE_LIMIT = 100
# A pre-start gate claimed this long ago whose process never finished it (a killed worker) may be claimed again.
GATE_TIMEOUT = timedelta(minutes=30)
# A silence outlives the planned end and the verification period by this much; it is expired explicitly.
SILENCE_MARGIN = timedelta(hours=1)
MAX_VERIFY_FOR = timedelta(hours=24)
ALERTMANAGER_TIMEOUT_SECONDS = 5
CHECK_KINDS = frozenset({"api_health", "promql", "no_firing_alerts"})
EDITABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        "starts_at",
        "ends_at",
        "recurrence",
        "notify_before",
        "backup_required",
        "silence_alerts",
        "checks",
        "verify_for",
        "owner",
    }
)
OPEN_STATUSES = (Status.SCHEDULED, Status.BLOCKED, Status.IN_PROGRESS, Status.VERIFYING)


# --- validation ----------------------------------------------------------------------------------------------------
def recurrence_occurrences(
    rule: str, starts_at: datetime, until: datetime, limit: int = RECURRENCE_LIMIT
) -> list[datetime]:
    """The start times of a recurring window from its first start up to `until` (RRULE expanded in UTC)."""
    parsed = rrulestr(rule, dtstart=starts_at)
    found: list[datetime] = []
    for moment in parsed.xafter(starts_at - timedelta(microseconds=1), count=limit, inc=True):
        if moment > until:
            break
        found.append(moment)
    return found


def maintenance_validate(
    *,
    starts_at: datetime,
    ends_at: datetime,
    recurrence: str,
    checks: Any,
    creating: bool,
    now: datetime,
    verify_for: timedelta | None = None,
) -> None:
    errors: dict[str, list[str]] = {}
    if verify_for is not None and not timedelta(0) <= verify_for <= MAX_VERIFY_FOR:
        errors["verify_for"] = ["The verification period is from 0 (check once) to 24 hours."]
    if creating and starts_at < now - timedelta(minutes=1):
        errors["starts_at"] = ["A maintenance window cannot start in the past."]
    if ends_at <= starts_at:
        errors["ends_at"] = ["The end must be after the start."]
    if recurrence:
        try:
            upcoming = recurrence_occurrences(recurrence, starts_at, starts_at + timedelta(days=3660), limit=2)
        except (ValueError, TypeError, KeyError) as exc:
            errors["recurrence"] = [f"Not a valid RRULE: {exc}"]
        else:
            if len(upcoming) > 1 and upcoming[1] - upcoming[0] < ends_at - starts_at:
                errors["recurrence"] = ["Occurrences would overlap: the rule repeats faster than a window lasts."]
            elif not upcoming:
                errors["recurrence"] = ["The rule has no occurrence at or after the start."]
    if not isinstance(checks, list) or any(
        not isinstance(check, dict) or not isinstance(check.get("kind"), str) or check["kind"] not in CHECK_KINDS
        for check in checks
    ):
        errors["checks"] = [f"A list of objects with a kind among: {', '.join(sorted(CHECK_KINDS))}."]
    elif any(c["kind"] == "promql" and not (isinstance(c.get("expr"), str) and c["expr"].strip()) for c in checks):
        errors["checks"] = ['A promql check needs its expression, e.g. {"kind": "promql", "expr": "up == 1"}.']
    elif any("\x00" in str(c.get("expr", "")) for c in checks):
        errors["checks"] = ["An expression cannot contain a null character."]
    if errors:
        raise InvalidInput(errors)


def checks_cleaned(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The validated checks as stored: their kind, and a promql check's expression; other keys are dropped."""
    return [{"kind": c["kind"], "expr": c["expr"]} if c["kind"] == "promql" else {"kind": c["kind"]} for c in checks]


# --- writes from people --------------------------------------------------------------------------------------------
def maintenance_create(
    *,
    actor: Any,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    description: str = "",
    services: Iterable[Service] = (),
    recurrence: str = "",
    notify_users: Iterable[Any] = (),
    notify_before: timedelta = timedelta(hours=1),
    backup_required: bool = True,
    silence_alerts: bool = True,
    checks: list[dict[str, Any]] | None = None,
    verify_for: timedelta | None = None,
    owner: Any = None,
) -> MaintenanceWindow:
    """Schedule a window (and, for a recurring one, its occurrences of the next weeks). Without `verify_for` the
    checks run for ITSM_MAINTENANCE_VERIFY_MINUTES after the maintenance."""
    now = timezone.now()
    checks = [] if checks is None else checks
    verify_for = default_verify_for() if verify_for is None else verify_for
    maintenance_validate(
        starts_at=starts_at,
        ends_at=ends_at,
        recurrence=recurrence,
        checks=checks,
        creating=True,
        now=now,
        verify_for=verify_for,
    )
    checks = checks_cleaned(checks)
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(
            title=title,
            description=description,
            starts_at=starts_at,
            ends_at=ends_at,
            recurrence=recurrence,
            notify_before=notify_before,
            backup_required=backup_required,
            silence_alerts=silence_alerts,
            checks=checks,
            verify_for=verify_for,
            owner=owner or (actor if getattr(actor, "pk", None) else None),
            created_by=actor if getattr(actor, "pk", None) else None,
            created_at=now,
            updated_at=now,
        )
        window.services.set(list(services))
        window.notify_users.set(list(notify_users))
        if recurrence:
            maintenance_expand(window=window, now=now)
    return window


def maintenance_update(*, window_id: int, actor: Any, changes: dict[str, Any]) -> MaintenanceWindow:
    """Edit a window that has not started yet."""
    refused = sorted(set(changes) - EDITABLE_FIELDS - {"services", "notify_users"})
    if refused:
        raise InvalidInput({name: ["This field cannot be changed here."] for name in refused})
    with transaction.atomic():
        window = MaintenanceWindow.objects.select_for_update().get(pk=window_id)
        if window.status not in (Status.SCHEDULED, Status.BLOCKED):
            raise InvalidInput({"status": [f"A window that is {window.status} can no longer be edited."]})
        now = timezone.now()
        merged = {name: changes.get(name, getattr(window, name)) for name in ("starts_at", "ends_at", "recurrence")}
        maintenance_validate(
            **merged,
            checks=changes.get("checks", window.checks),
            creating="starts_at" in changes and changes["starts_at"] != window.starts_at,
            now=now,
            verify_for=changes.get("verify_for"),
        )
        if window.series_id is not None and changes.get("recurrence"):
            raise InvalidInput({"recurrence": ["An occurrence of a series cannot recur itself; edit the series."]})
        if "checks" in changes:
            changes = {**changes, "checks": checks_cleaned(changes["checks"])}
        timing = {"starts_at", "ends_at", "recurrence"} & {k for k in changes if changes[k] != getattr(window, k)}
        for name in EDITABLE_FIELDS & set(changes):
            setattr(window, name, changes[name])
        if {"starts_at", "notify_before"} & set(changes):
            window.announced_at = None  # the announcement said another time: tell people again
        window.updated_at = now
        window.save()
        if "services" in changes:
            window.services.set(list(changes["services"]))
        if "notify_users" in changes:
            window.notify_users.set(list(changes["notify_users"]))
        if timing and window.series_id is None:
            # The series changed shape: its occurrences that have not started are written again.
            window.occurrences.filter(status__in=[Status.SCHEDULED, Status.BLOCKED]).delete()
            maintenance_expand(window=window, now=now)
    return window


def maintenance_transition(*, window_id: int, actor: Any, to: str, now: datetime | None = None) -> MaintenanceWindow:
    """A manual move: start now (through the backup gate), complete early (the verification period starts now),
    cancel, retry a blocked window, re-run failed checks (a new verification period), accept the outcome
    (completed, without waiting for the period's end). Asking for the current state does nothing."""
    now = now or timezone.now()
    window = MaintenanceWindow.objects.get(pk=window_id)
    if window.status == to:
        return window
    check_transition(MAINTENANCE_TRANSITIONS, window.status, to)
    if to == Status.IN_PROGRESS:
        if maintenance_start(window_id=window_id, now=now, force=True) is None:
            raise Conflict("The window's pre-start gate is already running; it starts when its backup is verified.")
    elif to == Status.VERIFYING:
        maintenance_end(window_id=window_id, now=now)
    elif to == Status.SCHEDULED:
        _move(window_id, window.status, to, now, gate_started_at=None, blocked_reason="")
    elif to == Status.COMPLETED:
        if _move(window_id, window.status, to, now):
            _finish(MaintenanceWindow.objects.get(pk=window_id))
    elif _move(window_id, window.status, to, now) and window.recurrence and window.series_id is None:
        # Cancelling the first occurrence of a series cancels the series: its later occurrences too.
        MaintenanceWindow.objects.filter(series=window, status__in=[Status.SCHEDULED, Status.BLOCKED]).update(
            status=Status.CANCELLED, cancelled_at=now, updated_at=now
        )
    if to in (Status.CANCELLED, Status.COMPLETED):
        maintenance_unsilence(window_id=window_id)
    if to == Status.CANCELLED and window.status == Status.IN_PROGRESS:
        _recompute_clocks(window_id)  # aborted: the maintenance ended now, the paused clocks run again
    return MaintenanceWindow.objects.get(pk=window_id)


def _move(window_id: int, current: str, to: str, now: datetime, **fields: Any) -> bool:
    """Compare-and-set the status (and stamp its time); False when another process moved the window first."""
    check_transition(MAINTENANCE_TRANSITIONS, current, to)
    stamp = {
        Status.IN_PROGRESS: "started_at",
        Status.VERIFYING: "verifying_at",
        Status.COMPLETED: "completed_at",
        Status.CANCELLED: "cancelled_at",
        Status.BLOCKED: "blocked_at",
        Status.VERIFICATION_FAILED: "verification_failed_at",
    }.get(Status(to))
    # Checks run again after a failure: the maintenance still ended when it first moved to verifying.
    if stamp and not (to == Status.VERIFYING and current == Status.VERIFICATION_FAILED):
        fields[stamp] = now
    moved = MaintenanceWindow.objects.filter(pk=window_id, status=current).update(status=to, updated_at=now, **fields)
    if moved:
        logger.info("maintenance window %s: %s -> %s", window_id, current, to)
    return bool(moved)


# --- recurrence ----------------------------------------------------------------------------------------------------
def maintenance_expand(*, window: MaintenanceWindow, now: datetime) -> int:
    """Write the occurrences of a recurring window that start before the horizon; returns how many are new."""
    if not window.recurrence or window.series_id is not None or window.status == Status.CANCELLED:
        return 0
    duration = window.ends_at - window.starts_at
    created = 0
    services = list(window.services.all())
    audience = list(window.notify_users.all())
    existing = set(window.occurrences.values_list("starts_at", flat=True))
    for moment in recurrence_occurrences(window.recurrence, window.starts_at, now + RECURRENCE_HORIZON):
        if moment == window.starts_at or moment in existing:
            continue
        occurrence, new = MaintenanceWindow.objects.get_or_create(
            series=window,
            starts_at=moment,
            defaults={
                "title": window.title,
                "description": window.description,
                "ends_at": moment + duration,
                "notify_before": window.notify_before,
                "backup_required": window.backup_required,
                "silence_alerts": window.silence_alerts,
                "checks": window.checks,
                "verify_for": window.verify_for,
                "owner": window.owner,
                "created_by": window.created_by,
                "created_at": now,
                "updated_at": now,
            },
        )
        if new:
            occurrence.services.set(services)
            occurrence.notify_users.set(audience)
            created += 1
    return created


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


def audience_of(window: MaintenanceWindow) -> list[Any]:
    """Who hears about a window: the people named on it and the members of the affected services' teams."""
    users = get_user_model().objects.filter(
        Q(pk__in=window.notify_users.values("pk")) | Q(teams__services__maintenance_windows=window), is_active=True
    )
    return list(users.distinct().order_by("pk"))


def _when(window: MaintenanceWindow) -> str:
    start, end = window.starts_at.astimezone(UTC), window.ends_at.astimezone(UTC)
    if start.date() == end.date():
        return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC"
    return f"{start:%Y-%m-%d %H:%M} UTC to {end:%Y-%m-%d %H:%M} UTC"


def _services_text(window: MaintenanceWindow) -> str:
    return ", ".join(window.services.values_list("name", flat=True)) or "none named"


def maintenance_announce(*, window_id: int, now: datetime) -> bool:
    """Tell the window's audience once; a second call (or a second scheduler) sends nothing."""
    with transaction.atomic():
        claimed = MaintenanceWindow.objects.filter(
            pk=window_id, status=Status.SCHEDULED, announced_at__isnull=True
        ).update(announced_at=now)
        if not claimed:
            return False
        window = MaintenanceWindow.objects.get(pk=window_id)
        from itsm.services.notifications import notify

        notify(
            users=audience_of(window),
            subject=f"Maintenance scheduled for {_when(window)}: {window.title}",
            body=(
                f"Maintenance scheduled for {_when(window)}.\n\nServices affected: {_services_text(window)}\n\n"
                f"{window.description}"
            ).strip(),
        )
    return True


def maintenance_start(*, window_id: int, now: datetime, force: bool = False) -> str | None:
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
        MaintenanceWindow.objects.filter(pk=window_id).update(backup=backup)
        if problem:
            with transaction.atomic():
                if _move(window_id, Status.SCHEDULED, Status.BLOCKED, timezone.now(), blocked_reason=problem):
                    _open_incident(MaintenanceWindow.objects.get(pk=window_id), "could not start", problem)
            return Status.BLOCKED
    if _move(window_id, Status.SCHEDULED, Status.IN_PROGRESS, timezone.now()):
        maintenance_silence(window_id=window_id)
        _recompute_clocks(window_id)
        return Status.IN_PROGRESS
    return None


def _pre_maintenance_backup(window: MaintenanceWindow) -> tuple[Backup | None, str]:
    """Take and verify a database backup now, in this process. Returns it and, when it is unusable, why."""
    from itsm.services.backups import backup_create, backup_run

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
    from itsm.services.incidents import incident_create
    from itsm.services.notifications import notify

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
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        cache.set("itsm:maintenance:health", "ok", 10)
        if cache.get("itsm:maintenance:health") != "ok":
            raise ConnectionError("the cache did not return the value written")
    except Exception as exc:
        return {"kind": "api_health", "ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"kind": "api_health", "ok": True}


def _check_promql(window: MaintenanceWindow, check: dict[str, Any]) -> dict[str, Any]:
    """The expression holds when Prometheus returns at least one sample and none of them is 0."""
    expr = check["expr"]
    outcome: dict[str, Any] = {"kind": "promql", "expr": expr, "ok": False}
    if not settings.PROMETHEUS_URL:
        return outcome | {"error": "PROMETHEUS_URL is not set"}
    try:
        answer = _http_json(settings.PROMETHEUS_URL, "GET", f"/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
        samples = answer["data"]["result"]
        values = [float(sample["value"][1]) for sample in samples] if isinstance(samples, list) else []
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return outcome | {"error": f"{type(exc).__name__}: {exc}"[:300]}
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
            query = urllib.parse.urlencode({"filter": f'service="{slug}"', "active": "true", "silenced": "true"})
            for alert in _http_json(settings.ALERTMANAGER_URL, "GET", f"/api/v2/alerts?{query}") or []:
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


def maintenance_end(*, window_id: int, now: datetime) -> dict[str, Any] | None:
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
            if _move(window_id, Status.VERIFYING, Status.VERIFICATION_FAILED, now, verification=verification):
                outcome = Status.VERIFICATION_FAILED
                failed = "; ".join(f"{r['kind']}: {r.get('error', 'failed')}" for r in results if not r["ok"])
                _open_incident(window, "failed its checks", f"Checks that failed after the maintenance: {failed}")
        elif now >= until:
            if _move(window_id, Status.VERIFYING, Status.COMPLETED, now, verification=verification):
                outcome = Status.COMPLETED
                _finish(MaintenanceWindow.objects.get(pk=window_id))
        else:
            MaintenanceWindow.objects.filter(pk=window_id, status=Status.VERIFYING, last_checked_at=now).update(
                verification=verification, updated_at=now
            )
    if outcome != Status.VERIFYING:
        maintenance_unsilence(window_id=window_id)
    return {"window": window_id, "passed": passed, "status": outcome}


def _finish(window: MaintenanceWindow) -> None:
    from itsm.services.notifications import notify

    notify(
        users=audience_of(window),
        subject=f"Maintenance completed successfully: {window.title}",
        body=f"Maintenance completed successfully.\n\nServices affected: {_services_text(window)}",
    )


# --- Alertmanager silences -----------------------------------------------------------------------------------------
def _alertmanager(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return _http_json(settings.ALERTMANAGER_URL, method, path, body)


def _http_json(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    # The base URL is the operator's setting (ALERTMANAGER_URL, PROMETHEUS_URL), not user input.
    request = urllib.request.Request(  # noqa: S310
        f"{base}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=ALERTMANAGER_TIMEOUT_SECONDS) as response:  # noqa: S310
        raw = response.read()
    return json.loads(raw) if raw else None


def maintenance_silence(*, window_id: int) -> list[str]:
    """One Alertmanager silence per affected service (matcher service=<slug>), their ids stored on the window.

    An unreachable Alertmanager does not stop the maintenance: the intake still pages nobody for these services."""
    window = MaintenanceWindow.objects.get(pk=window_id)
    if not settings.ALERTMANAGER_URL or not window.silence_alerts or window.silence_ids:
        return []
    ids: list[str] = []
    for slug in window.services.order_by("slug").values_list("slug", flat=True):
        body = {
            "matchers": [{"name": "service", "value": slug, "isRegex": False, "isEqual": True}],
            "startsAt": timezone.now().isoformat(),
            "endsAt": (max(window.ends_at, timezone.now()) + window.verify_for + SILENCE_MARGIN).isoformat(),
            "createdBy": "itsm",
            "comment": f"Maintenance window MW-{window.pk}: {window.title} (/api/v1/maintenance-windows/{window.pk}/)",
        }
        try:
            ids.append(str(_alertmanager("POST", "/api/v2/silences", body)["silenceID"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("window %s: could not silence service %s in Alertmanager: %s", window.pk, slug, exc)
    MaintenanceWindow.objects.filter(pk=window_id).update(silence_ids=ids)
    return ids


def maintenance_unsilence(*, window_id: int) -> list[str]:
    """Expire the window's silences; the ids that could not be expired stay stored (and are tried again)."""
    window = MaintenanceWindow.objects.get(pk=window_id)
    if not window.silence_ids or not settings.ALERTMANAGER_URL:
        return []
    kept: list[str] = []
    for silence_id in window.silence_ids:
        try:
            _alertmanager("DELETE", f"/api/v2/silence/{silence_id}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # a silence that is gone already is expired
                kept.append(silence_id)
        except OSError as exc:
            logger.warning("window %s: could not expire silence %s: %s", window.pk, silence_id, exc)
            kept.append(silence_id)
    MaintenanceWindow.objects.filter(pk=window_id).update(silence_ids=kept)
    return kept


def services_under_maintenance() -> set[int]:
    """The ids of the services whose maintenance window is under way (started, checks not yet passed)."""
    return set(
        Service.objects.filter(maintenance_windows__status__in=[Status.IN_PROGRESS, Status.VERIFYING]).values_list(
            "pk", flat=True
        )
    )


# --- SLA clocks ----------------------------------------------------------------------------------------------------
def maintenance_pauses(*, service_id: int) -> list[tuple[datetime, datetime]]:
    """When the service was (or is planned to stay) in maintenance: from each window's start to its end (the move
    to verifying, or the planned end while it runs). Ticket SLA clocks of the service stop in these."""
    return maintenance_pauses_for(service_ids=[service_id])


def maintenance_pauses_for(*, service_ids: Iterable[int]) -> list[tuple[datetime, datetime]]:
    """The maintenance of any of these services (an incident's), as in `maintenance_pauses`; they may overlap."""
    windows = MaintenanceWindow.objects.filter(services__in=list(service_ids), started_at__isnull=False).distinct()
    pauses = []
    for started, verifying, aborted, planned in windows.values_list(
        "started_at", "verifying_at", "cancelled_at", "ends_at"
    ):
        end = verifying or aborted or planned  # an aborted window (cancelled while it ran) ended when cancelled
        if started is not None and end > started:
            pauses.append((started, end))
    return pauses


def _recompute_clocks(window_id: int) -> None:
    """The window started or ended: the due times of its services' open tickets and unacknowledged incidents move."""
    from itsm.services.incidents import incident_clocks_refresh
    from itsm.services.sla import sla_recompute_open_tickets

    service_ids = list(MaintenanceWindow.objects.get(pk=window_id).services.values_list("pk", flat=True))
    if service_ids:
        sla_recompute_open_tickets(service_ids=service_ids)
        incident_clocks_refresh(service_ids=service_ids)
