"""Alertmanager intake: alerts stored once by fingerprint, one open incident per alert group."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from itsm import metrics
from itsm.lifecycles import INCIDENT_CLOSED_STATUSES
from itsm.models import Alert, Event, Incident, Service
from itsm.services.clocks import services_under_maintenance
from itsm.services.events import event_record
from itsm.services.incidents import SEVERITY_RANK, incident_create, incident_transition, incident_update

logger = logging.getLogger(__name__)

# Alertmanager's `severity` label → incident severity; an `itsm_severity` label overrides it.
SEVERITY_FROM_LABEL = {"critical": "critical", "warning": "high", "info": "low"}
DEFAULT_SEVERITY = "high"


@dataclass
class IntakeResult:
    incidents: list[int] = field(default_factory=list)
    alerts_created: int = 0
    alerts_updated: int = 0
    incidents_opened: int = 0
    incidents_resolved: int = 0
    # Firing alerts of services under maintenance: recorded, but no incident and no page.
    alerts_under_maintenance: int = 0


def severity_of(labels: dict[str, str]) -> str:
    override = labels.get("itsm_severity", "").lower()
    if override in SEVERITY_RANK:
        return override
    return SEVERITY_FROM_LABEL.get(labels.get("severity", "").lower(), DEFAULT_SEVERITY)


def alerts_ingest(
    *, payload: dict[str, Any], now: datetime | None = None, source: str = Incident.Source.ALERTMANAGER
) -> IntakeResult:
    """Store one Alertmanager webhook delivery (version 4) all or nothing.

    Concurrent deliveries of one group collapse into one incident: the partial unique index on the open
    incident's group key makes the losers of the race fall back to the winner's incident.
    """
    now = now or timezone.now()
    result = IntakeResult()
    services = {
        s.slug: s for s in Service.objects.filter(slug__in={a["labels"].get("service", "") for a in payload["alerts"]})
    }
    quiet = services_under_maintenance()
    with transaction.atomic():
        firing: list[tuple[dict[str, Any], str, Service | None]] = []
        others = []
        for data in payload["alerts"]:
            labels = data["labels"]
            key = payload.get("groupKey") or f"{labels.get('alertname', '')}|{labels.get('service', '')}"
            service = services.get(labels.get("service", ""))
            if data["status"] == Alert.Status.FIRING and (service is None or service.pk not in quiet):
                firing.append((data, key, service))
            else:
                others.append((data, key, service))
            metrics.ALERTS_RECEIVED.labels(status=data["status"]).inc()
        # Firing alerts first, in a fixed number of queries: a group's resolved alerts then see its firing ones.
        if firing:
            _firing_batch(firing, now, result, source)
        for data, key, service in others:
            if data["status"] == Alert.Status.FIRING and service is not None:
                _firing_under_maintenance(data, key, service, now, result)
            else:
                _resolved(data, key, service, now, result)
    return result


def _open_incident(
    key: str,
    data: dict[str, Any],
    service: Service | None,
    now: datetime,
    result: IntakeResult,
    source: str = Incident.Source.ALERTMANAGER,
) -> Incident:
    incident = (
        Incident.objects.select_for_update().filter(group_key=key).exclude(status__in=INCIDENT_CLOSED_STATUSES).first()
    )
    if incident is not None:
        return incident
    labels, annotations = data["labels"], data["annotations"]
    name = labels.get("alertname", "Alert")
    title = annotations.get("summary") or (f"{name} on {service.name}" if service else name)
    try:
        incident = incident_create(
            actor=None,
            title=title[:200],
            summary=annotations.get("description", ""),
            severity=severity_of(labels),
            services=[service] if service else [],
            source=source,
            group_key=key,
            detected_at=data.get("startsAt") or now,
        )
    except IntegrityError:
        # Another delivery of the same group opened it first and has committed: join that one.
        found = (
            Incident.objects.select_for_update()
            .filter(group_key=key)
            .exclude(status__in=INCIDENT_CLOSED_STATUSES)
            .first()
        )
        if found is None:
            raise
        return found
    result.incidents_opened += 1
    return incident


def _locked_alert(fingerprint: str, defaults: dict[str, Any]) -> tuple[Alert, bool]:
    alert = Alert.objects.select_for_update().filter(fingerprint=fingerprint).first()
    if alert is not None:
        return alert, False
    try:
        with transaction.atomic():
            return Alert.objects.create(fingerprint=fingerprint, **defaults), True
    except IntegrityError:
        return Alert.objects.select_for_update().get(fingerprint=fingerprint), False


def _alert_fields(data: dict[str, Any], key: str, service: Service | None, now: datetime) -> dict[str, Any]:
    labels = data["labels"]
    return {
        "status": data["status"],
        "alertname": labels.get("alertname", "")[:200],
        "severity": labels.get("severity", "")[:20],
        "labels": labels,
        "annotations": data["annotations"],
        "starts_at": data.get("startsAt"),
        "ends_at": data.get("endsAt"),
        "generator_url": data.get("generatorURL", "")[:2000],
        "group_key": key[:500],
        "service": service,
        "received_at": now,
        "last_received_at": now,
    }


# Every field of a stored alert that a repeated delivery rewrites (received_at keeps the first delivery's time).
UPDATED_FIELDS = [
    "status",
    "alertname",
    "severity",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "generator_url",
    "group_key",
    "service",
    "incident",
    "last_received_at",
    "receive_count",
]


def _firing_batch(
    items: list[tuple[dict[str, Any], str, Service | None]],
    now: datetime,
    result: IntakeResult,
    source: str,
) -> None:
    """Store the firing alerts of one delivery with a bounded number of queries, whatever their number.

    Locks the open incident of each group (in key order), then the alerts already stored (in fingerprint
    order), like the one-by-one path, so concurrent deliveries of a group queue instead of deadlocking.
    """
    incidents: dict[str, Incident] = {}
    for key in sorted({key for _, key, _ in items}):
        data, _, service = next(item for item in items if item[1] == key)
        incidents[key] = _open_incident(key, data, service, now, result, source)
    stored = {
        alert.fingerprint: alert
        for alert in Alert.objects.select_for_update()
        .filter(fingerprint__in={data["fingerprint"] for data, _, _ in items})
        .order_by("fingerprint")
    }
    new: dict[str, Alert] = {}
    changed: dict[str, Alert] = {}
    # Alerts whose delivery repeats what is stored: only the time and the count move, in one UPDATE for all.
    repeated: dict[str, Alert] = {}
    events: list[Event] = []
    wanted: dict[int, str] = {}
    services: dict[int, set[int]] = {}
    for data, key, service in items:
        incident = incidents[key]
        fields = _alert_fields(data, key, service, now)
        fingerprint = data["fingerprint"]
        alert = new.get(fingerprint) or stored.get(fingerprint)
        if alert is None:
            alert = new[fingerprint] = Alert(fingerprint=fingerprint, incident=incident, **fields)
            is_news = True
            result.alerts_created += 1
        else:
            is_news = alert.status != Alert.Status.FIRING or alert.incident_id != incident.pk
            fields["incident"] = incident
            seen = fingerprint in new or fingerprint in changed or fingerprint in repeated
            if not seen and not _differs(alert, fields):
                repeated[fingerprint] = alert
            elif fingerprint not in new:
                repeated.pop(fingerprint, None)
                changed[fingerprint] = alert
            for name, value in fields.items():
                if name != "received_at":
                    setattr(alert, name, value)
            alert.receive_count += 1
            result.alerts_updated += 1
        if is_news:
            summary = data["annotations"].get("summary", "")[:1000]
            events.append(
                Event(incident=incident, kind=Event.Kind.ALERT, field=alert.alertname, new_value="firing", note=summary)
            )
        severity = severity_of(data["labels"])
        if SEVERITY_RANK[severity] > SEVERITY_RANK[wanted.get(incident.pk, incident.severity)]:
            wanted[incident.pk] = severity
        if service is not None:
            services.setdefault(incident.pk, set()).add(service.pk)
        if incident.pk not in result.incidents:
            result.incidents.append(incident.pk)
    _store_new_alerts(list(new.values()), result)
    if repeated:
        Alert.objects.filter(pk__in=[alert.pk for alert in repeated.values()]).update(
            last_received_at=now, receive_count=F("receive_count") + 1
        )
    if changed:
        Alert.objects.bulk_update(list(changed.values()), UPDATED_FIELDS)
    if events:
        for event in events:
            event.created_at = now
        Event.objects.bulk_create(events)
    for incident in incidents.values():
        if incident.pk in wanted:
            incident_update(incident_id=incident.pk, actor=None, changes={"severity": wanted[incident.pk]})
        if not (new or changed):
            continue  # every alert repeats a stored one: their services were added when they were first stored
        missing = services.get(incident.pk, set()) - set(incident.services.values_list("pk", flat=True))
        if missing:
            incident.services.add(*missing)


def _differs(alert: Alert, fields: dict[str, Any]) -> bool:
    """Whether a delivery changes anything of a stored alert but its last delivery time (and count)."""
    for name, value in fields.items():
        if name in ("received_at", "last_received_at"):
            continue
        if name in ("service", "incident"):
            if getattr(alert, f"{name}_id") != (value.pk if value is not None else None):
                return True
        elif getattr(alert, name) != value:
            return True
    return False


def _store_new_alerts(alerts: list[Alert], result: IntakeResult) -> None:
    """Insert the alerts seen for the first time; if a concurrent delivery stored one of them meanwhile, fall
    back to one-by-one upserts (the unique fingerprint decides)."""
    if not alerts:
        return
    try:
        with transaction.atomic():
            Alert.objects.bulk_create(alerts)
    except IntegrityError:
        for alert in alerts:
            values = {name: getattr(alert, name) for name in [*UPDATED_FIELDS, "received_at"]}
            stored, created = _locked_alert(alert.fingerprint, values)
            if not created:
                for name in UPDATED_FIELDS:
                    if name != "receive_count":
                        setattr(stored, name, values[name])
                stored.receive_count += 1
                stored.save()
                result.alerts_created -= 1
                result.alerts_updated += 1


def _firing_under_maintenance(
    data: dict[str, Any], key: str, service: Service, now: datetime, result: IntakeResult
) -> None:
    """The service is in a maintenance window: store the alert (an incident it already has stays) and page nobody."""
    fields = _alert_fields(data, key, service, now)
    alert, created = _locked_alert(data["fingerprint"], fields)
    result.alerts_under_maintenance += 1
    if created:
        result.alerts_created += 1
        return
    for name, value in fields.items():
        if name != "received_at":
            setattr(alert, name, value)
    alert.receive_count += 1
    alert.save()
    result.alerts_updated += 1


def _resolved(data: dict[str, Any], key: str, service: Service | None, now: datetime, result: IntakeResult) -> None:
    fields = _alert_fields(data, key, service, now)
    alert, created = _locked_alert(data["fingerprint"], fields)
    was_firing = not created and alert.status == Alert.Status.FIRING
    if created:
        result.alerts_created += 1
        return  # a resolution for an alert never seen firing: recorded, nothing to resolve
    alert.status = Alert.Status.RESOLVED
    alert.ends_at = data.get("endsAt") or now
    alert.last_received_at = now
    alert.receive_count += 1
    alert.save(update_fields=["status", "ends_at", "last_received_at", "receive_count"])
    result.alerts_updated += 1
    if not was_firing or alert.incident_id is None:
        return
    incident = Incident.objects.select_for_update().get(pk=alert.incident_id)
    if incident.pk not in result.incidents:
        result.incidents.append(incident.pk)
    event_record(
        incident=incident,
        actor=None,
        kind=Event.Kind.ALERT,
        field=alert.alertname,
        old="firing",
        new="resolved",
        at=now,
    )
    if incident.status in INCIDENT_CLOSED_STATUSES or incident.alerts.filter(status=Alert.Status.FIRING).exists():
        return
    event_record(
        incident=incident, actor=None, kind=Event.Kind.ALERT, note="All alerts of this incident have resolved.", at=now
    )
    services = list(incident.services.all())
    if services and all(s.auto_resolve_incidents for s in services):
        incident_transition(
            incident_id=incident.pk, actor=None, to=Incident.Status.RESOLVED, note="All alerts resolved."
        )
        result.incidents_resolved += 1
