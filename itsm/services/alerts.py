"""Alertmanager intake: alerts stored once by fingerprint, one open incident per alert group."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from itsm import metrics
from itsm.models import Alert, Event, Incident, Service
from itsm.services.events import event_record
from itsm.services.incidents import SEVERITY_RANK, incident_create, incident_transition, incident_update
from itsm.services.maintenance import services_under_maintenance

logger = logging.getLogger(__name__)

# Alertmanager's `severity` label → incident severity; an `itsm_severity` label overrides it.
SEVERITY_FROM_LABEL = {"critical": "critical", "warning": "high", "info": "low"}
DEFAULT_SEVERITY = "high"
CLOSED = (Incident.Status.RESOLVED, Incident.Status.REVIEWED)


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
        for data in payload["alerts"]:
            labels = data["labels"]
            key = payload.get("groupKey") or f"{labels.get('alertname', '')}|{labels.get('service', '')}"
            service = services.get(labels.get("service", ""))
            if data["status"] == Alert.Status.FIRING and service is not None and service.pk in quiet:
                _firing_under_maintenance(data, key, service, now, result)
            elif data["status"] == Alert.Status.FIRING:
                _firing(data, key, service, now, result, source)
            else:
                _resolved(data, key, service, now, result)
            metrics.ALERTS_RECEIVED.labels(status=data["status"]).inc()
    return result


def _open_incident(
    key: str,
    data: dict[str, Any],
    service: Service | None,
    now: datetime,
    result: IntakeResult,
    source: str = Incident.Source.ALERTMANAGER,
) -> Incident:
    incident = Incident.objects.select_for_update().filter(group_key=key).exclude(status__in=CLOSED).first()
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
        found = Incident.objects.select_for_update().filter(group_key=key).exclude(status__in=CLOSED).first()
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


def _firing(
    data: dict[str, Any],
    key: str,
    service: Service | None,
    now: datetime,
    result: IntakeResult,
    source: str = Incident.Source.ALERTMANAGER,
) -> None:
    incident = _open_incident(key, data, service, now, result, source)
    fields = _alert_fields(data, key, service, now)
    alert, created = _locked_alert(data["fingerprint"], {**fields, "incident": incident})
    news = created or alert.status != Alert.Status.FIRING or alert.incident_id != incident.pk
    if not created:
        for name, value in fields.items():
            if name != "received_at":
                setattr(alert, name, value)
        alert.incident = incident
        alert.receive_count += 1
        alert.save()
        result.alerts_updated += 1
    else:
        result.alerts_created += 1
    if news:
        event_record(
            incident=incident,
            actor=None,
            kind=Event.Kind.ALERT,
            field=alert.alertname,
            new="firing",
            note=data["annotations"].get("summary", "")[:1000],
            at=now,
        )
    wanted = severity_of(data["labels"])
    if SEVERITY_RANK[wanted] > SEVERITY_RANK[incident.severity]:
        incident_update(incident_id=incident.pk, actor=None, changes={"severity": wanted})
    if service is not None and not incident.services.filter(pk=service.pk).exists():
        incident.services.add(service)
    if incident.pk not in result.incidents:
        result.incidents.append(incident.pk)


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
    if incident.status in CLOSED or incident.alerts.filter(status=Alert.Status.FIRING).exists():
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
