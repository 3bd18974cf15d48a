"""A maintenance window as a record: scheduling one, editing it before it starts, its recurring occurrences, who
hears about it, and its Alertmanager silences. Its lifecycle (the scheduler, the start gate, verification) is
`services.maintenance_lifecycle`, the only code that changes a window's status.
"""

from __future__ import annotations

import logging
import urllib.error
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from dateutil.rrule import rrulestr
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from itsm.audit import audited_update
from itsm.exceptions import InvalidInput, NotPermitted
from itsm.lifecycles import MAINTENANCE_EDITABLE_STATUSES
from itsm.models import Event, MaintenanceWindow, Service
from itsm.models.maintenance import EDITABLE_FIELDS, PUBLICATION_FIELDS, RELATIONS, default_verify_for
from itsm.roles import is_admin
from itsm.services.events import event_record, event_record_change
from itsm.services.monitoring import alertmanager_request
from itsm.services.publication import publication_checked
from itsm.services.versioned import version_bump, version_bumped, version_check

logger = logging.getLogger(__name__)

Status = MaintenanceWindow.Status

# How far ahead the occurrences of a recurring window exist as rows, and at most how many at once.
RECURRENCE_HORIZON = timedelta(days=35)
RECURRENCE_LIMIT = 100
# A silence outlives the planned end and the verification period by this much; it is expired explicitly.
SILENCE_MARGIN = timedelta(hours=1)
MAX_VERIFY_FOR = timedelta(hours=24)
CHECK_KINDS = frozenset({"api_health", "promql", "no_firing_alerts"})


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
    public: bool = False,
    public_title: str = "",
) -> MaintenanceWindow:
    """Schedule a window (and, for a recurring one, its occurrences of the next weeks). Without `verify_for` the
    checks run for ITSM_MAINTENANCE_VERIFY_MINUTES after the maintenance. It is private (not on the status page, not
    shown to requesters) unless `public`, with its `public_title`."""
    now = timezone.now()
    public_title = publication_checked(public=public, public_title=public_title, noun="maintenance window")
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
            public=public,
            public_title=public_title,
        )
        window.services.set(list(services))
        window.notify_users.set(list(notify_users))
        event_record(
            window_id=window.pk, actor=actor, kind=Event.Kind.CREATED, field="status", new=window.status, at=now
        )
        if recurrence:
            maintenance_expand(window=window, now=now)
    return window


def maintenance_update(
    *, window_id: int, actor: Any, changes: dict[str, Any], expected_version: int | None = None
) -> MaintenanceWindow:
    """Edit a window that has not started yet; what is published of it (PUBLICATION_FIELDS), in any status. Refused
    (StaleVersion) when the caller read another version than the current one (None: no check)."""
    refused = sorted(set(changes) - {*EDITABLE_FIELDS, *RELATIONS})
    if refused:
        raise InvalidInput({name: ["This field cannot be changed here."] for name in refused})
    with transaction.atomic():
        window = MaintenanceWindow.objects.select_for_update().get(pk=window_id)
        version_check(window, expected_version)
        if window.status not in MAINTENANCE_EDITABLE_STATUSES and not set(changes) <= set(PUBLICATION_FIELDS):
            raise InvalidInput({"status": [f"A window that is {window.status} can no longer be edited."]})
        if set(PUBLICATION_FIELDS) & set(changes):
            changes = {
                **changes,
                "public_title": publication_checked(
                    public=changes.get("public", window.public),
                    public_title=changes.get("public_title", window.public_title),
                    noun="maintenance window",
                ),
            }
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
        for name in set(EDITABLE_FIELDS) & set(changes):
            old, new = getattr(window, name), changes[name]
            event_record_change(window_id=window.pk, actor=actor, field=name, old=old, new=new, at=now)
            setattr(window, name, new)
        if {"starts_at", "notify_before"} & set(changes):
            window.announced_at = None  # the announcement said another time: tell people again
        window.updated_at = now
        version_bump(window)
        window.save()
        version_bumped(window)
        for relation in set(RELATIONS) & set(changes):
            manager, values = getattr(window, relation), list(changes[relation])
            before = set(manager.values_list("pk", flat=True))
            if event_record_change(
                window_id=window.pk, actor=actor, field=relation, old=before, new=set(values), at=now
            ):
                manager.set(values)
        if timing and window.series_id is None:
            # The series changed shape: its occurrences that have not started are written again.
            window.occurrences.filter(status__in=MAINTENANCE_EDITABLE_STATUSES).delete()
            maintenance_expand(window=window, now=now)
    return window


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
                "public": window.public,
                "public_title": window.public_title,
                "created_by": window.created_by,
                "created_at": now,
                "updated_at": now,
            },
        )
        if new:
            occurrence.services.set(services)
            occurrence.notify_users.set(audience)
            event_record(
                window_id=occurrence.pk,
                actor=None,
                kind=Event.Kind.CREATED,
                field="status",
                new=occurrence.status,
                note=f"An occurrence of the series MW-{window.pk}.",
                at=now,
            )
            created += 1
    return created


def maintenance_delete(*, window_id: int, actor: Any) -> None:
    """Delete a window with its occurrences and history. Admins only: everyone else cancels it."""
    if not is_admin(actor):
        raise NotPermitted("Only admins can delete maintenance windows; cancel it instead.")
    MaintenanceWindow.objects.filter(pk=window_id).delete()


# --- who hears about it ---------------------------------------------------------------------------------------------
def audience_of(window: MaintenanceWindow) -> list[Any]:
    """Who hears about a window: the people named on it and the members of the affected services' teams."""
    users = get_user_model().objects.filter(
        Q(pk__in=window.notify_users.values("pk")) | Q(teams__services__maintenance_windows=window), is_active=True
    )
    return list(users.distinct().order_by("pk"))


def when_text(window: MaintenanceWindow) -> str:
    start, end = window.starts_at.astimezone(UTC), window.ends_at.astimezone(UTC)
    if start.date() == end.date():
        return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC"
    return f"{start:%Y-%m-%d %H:%M} UTC to {end:%Y-%m-%d %H:%M} UTC"


def services_text(window: MaintenanceWindow) -> str:
    return ", ".join(window.services.values_list("name", flat=True)) or "none named"


# --- Alertmanager silences -----------------------------------------------------------------------------------------
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
            ids.append(str(alertmanager_request("POST", "/api/v2/silences", body)["silenceID"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("window %s: could not silence service %s in Alertmanager: %s", window.pk, slug, exc)
    audited_update(MaintenanceWindow.objects.filter(pk=window_id), silence_ids=ids)
    return ids


def maintenance_unsilence(*, window_id: int) -> list[str]:
    """Expire the window's silences; the ids that could not be expired stay stored (and are tried again)."""
    window = MaintenanceWindow.objects.get(pk=window_id)
    if not window.silence_ids or not settings.ALERTMANAGER_URL:
        return []
    kept: list[str] = []
    for silence_id in window.silence_ids:
        try:
            alertmanager_request("DELETE", f"/api/v2/silence/{silence_id}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # a silence that is gone already is expired
                kept.append(silence_id)
        except OSError as exc:
            logger.warning("window %s: could not expire silence %s: %s", window.pk, silence_id, exc)
            kept.append(silence_id)
    audited_update(MaintenanceWindow.objects.filter(pk=window_id), silence_ids=kept)
    return kept
