"""Alert rules evaluated by Celery: pending, firing after their duration, resolved, into incidents."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction

from itsm.models import Alert, AlertRule, Incident, Ticket
from itsm.services.alert_rules import alert_rules_evaluate
from itsm.tasks.alert_rules import evaluate_alert_rules
from tests.factories import make_ticket

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def at(moment: datetime) -> dict[str, int]:
    with time_machine.travel(moment, tick=False):
        return alert_rules_evaluate()


@pytest.mark.django_db
def test_a_rule_goes_pending_then_fires_after_its_duration_then_resolves(requester, agent):
    ticket = make_ticket(requester)
    Ticket.objects.filter(pk=ticket.pk).update(sla_status="breached")
    rule = AlertRule.objects.create(
        name="SlaBreached",
        probe="sla_breaches",
        comparison="gt",
        threshold=0,
        for_seconds=60,
        severity="warning",
        summary="Tickets breached their SLA",
    )
    assert at(T0)["fired"] == 0
    rule.refresh_from_db()
    assert (rule.state, rule.last_value) == ("pending", 1.0)
    assert at(T0 + timedelta(seconds=59))["fired"] == 0
    assert not Incident.objects.exists()
    assert at(T0 + timedelta(seconds=60))["fired"] == 1
    incident = Incident.objects.get()
    assert (incident.source, incident.title, incident.severity) == ("rule", "Tickets breached their SLA", "high")
    assert at(T0 + timedelta(seconds=90))["fired"] == 0  # still firing: nothing sent twice
    assert Alert.objects.get().receive_count == 1

    Ticket.objects.filter(pk=ticket.pk).update(status="resolved")
    assert at(T0 + timedelta(seconds=120))["resolved"] == 1
    rule.refresh_from_db()
    assert rule.state == "inactive"
    assert Alert.objects.get().status == "resolved"


@pytest.mark.django_db
def test_a_condition_that_stops_while_pending_never_fires(requester):
    ticket = make_ticket(requester)
    Ticket.objects.filter(pk=ticket.pk).update(sla_status="breached")
    AlertRule.objects.create(name="SlaBreached", probe="sla_breaches", comparison="gt", threshold=0, for_seconds=300)
    at(T0)
    Ticket.objects.filter(pk=ticket.pk).update(sla_status="ok")
    at(T0 + timedelta(seconds=30))
    assert AlertRule.objects.get().state == "inactive"
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_built_in_probes_read_the_real_dependencies(settings, admin):
    AlertRule.objects.create(name="BrokerDown", probe="broker_up", comparison="lt", threshold=1, severity="critical")
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/1"  # nothing listens there: the broker is down
    settings.CELERY_BROKER_IS_FILESYSTEM = False
    result = at(T0)
    assert result == {"evaluated": 1, "fired": 1, "resolved": 0, "errors": 0}
    incident = Incident.objects.get()
    assert (incident.severity, incident.source) == ("critical", "rule")


def test_there_is_no_database_probe_that_needs_the_database_to_report_it_down():
    assert "database_up" not in AlertRule.Probe.values


@pytest.mark.django_db
def test_an_unreachable_prometheus_is_a_visible_condition_not_a_crash(settings):
    settings.PROMETHEUS_URL = "http://127.0.0.1:1"
    rule = AlertRule.objects.create(name="ApiSlow", probe="promql", expression="up == 0", comparison="gt", threshold=0)
    assert at(T0) == {"evaluated": 0, "fired": 0, "resolved": 0, "errors": 1}
    rule.refresh_from_db()
    assert "unreachable" in rule.last_error
    unreachable = Alert.objects.get(alertname="PrometheusUnreachable")
    assert unreachable.status == "firing"
    assert unreachable.incident is not None
    assert unreachable.incident.severity == "medium"
    at(T0 + timedelta(seconds=30))
    assert Alert.objects.get(alertname="PrometheusUnreachable").receive_count == 1
    rule.enabled = False
    rule.save()
    at(T0 + timedelta(seconds=60))
    assert Alert.objects.get(alertname="PrometheusUnreachable").status == "resolved"


@pytest.mark.django_db
def test_the_beat_job_runs_once_per_slot(requester):
    with time_machine.travel(T0, tick=False):
        assert evaluate_alert_rules() == {"evaluated": 0, "fired": 0, "resolved": 0, "errors": 0}
        assert evaluate_alert_rules() is None


@pytest.mark.django_db(transaction=True)
def test_a_rule_held_by_another_evaluator_is_skipped_not_evaluated_twice(requester):
    ticket = make_ticket(requester)
    Ticket.objects.filter(pk=ticket.pk).update(sla_status="breached")
    rule = AlertRule.objects.create(name="SlaBreached", probe="sla_breaches", comparison="gt", threshold=0)
    locked, release = threading.Event(), threading.Event()

    def other_evaluator() -> None:
        with transaction.atomic():
            AlertRule.objects.select_for_update().get(pk=rule.pk)
            locked.set()
            release.wait(10)

    thread = threading.Thread(target=other_evaluator)
    thread.start()
    try:
        assert locked.wait(10)
        assert alert_rules_evaluate() == {"evaluated": 0, "fired": 0, "resolved": 0, "errors": 0}
    finally:
        release.set()
        thread.join()
    assert alert_rules_evaluate()["fired"] == 1
    assert Incident.objects.count() == 1
