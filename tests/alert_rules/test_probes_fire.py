"""Every built-in probe of the alert evaluator fires against a real failure and stays quiet without one.

The dependencies are real: a redis-server of the test's own that is stopped, a broker URL where nothing listens,
a Prometheus started on loopback, backup and job rows as the scheduler writes them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from itsm.models import AlertRule, Backup, Incident, JobRun
from itsm.services.alert_rules import alert_rules_evaluate
from tests.system.processes import (
    REDIS_SERVER,
    Managed,
    free_port,
    redis_server,
    started,
    wait_for,
    wait_for_port,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
PROMETHEUS = shutil.which("prometheus")

pytestmark = pytest.mark.django_db


def evaluate(moment: datetime = T0) -> dict[str, int]:
    with time_machine.travel(moment, tick=False):
        return alert_rules_evaluate()


def rule(name: str, probe: str, comparison: str, threshold: float, **extra: object) -> AlertRule:
    return AlertRule.objects.create(
        name=name, probe=probe, comparison=comparison, threshold=threshold, severity="critical", **extra
    )


def fired(name: str) -> bool:
    return AlertRule.objects.get(name=name).state == "firing" and Incident.objects.filter(title=name).exists()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[Managed, int]]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    server = redis_server(port, tmp_path, tmp_path / "redis.log").start()
    try:
        wait_for_port(port, 10)
        yield server, port
    finally:
        server.close()


def test_cache_up_fires_when_the_caches_redis_stops(settings, own_redis):
    server, port = own_redis
    settings.CACHES = {
        "default": {
            **settings.CACHES.get("default", {}),
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "IGNORE_EXCEPTIONS": True},
        }
    }
    rule("CacheDown", "cache_up", "lt", 1, summary="CacheDown")
    evaluate()
    assert AlertRule.objects.get().last_value == 1.0
    assert not Incident.objects.exists()

    server.stop()
    assert evaluate(T0 + timedelta(seconds=30))["fired"] == 1
    assert AlertRule.objects.get().last_value == 0.0
    assert fired("CacheDown")


def test_broker_up_fires_when_nothing_listens_at_the_broker_url(settings, own_redis):
    _, port = own_redis
    settings.CELERY_BROKER_IS_FILESYSTEM = False
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/1"
    rule("BrokerDown", "broker_up", "lt", 1, summary="BrokerDown")
    assert evaluate()["fired"] == 0

    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/1"  # nothing listens there
    assert evaluate(T0 + timedelta(seconds=30))["fired"] == 1
    assert fired("BrokerDown")
    assert Incident.objects.get().severity == "critical"


def test_backup_age_fires_without_a_recent_verified_database_backup():
    rule("BackupOld", "backup_age_seconds", "gt", 26 * 3600, summary="BackupOld")
    backup = Backup.objects.create(
        kind="database",
        status="succeeded",
        verified_ok=True,
        created_at=T0 - timedelta(hours=2),
        started_at=T0 - timedelta(hours=2),
        sha256="c" * 64,
    )
    evaluate()
    assert AlertRule.objects.get().last_value == 7200.0
    assert not Incident.objects.exists()

    Backup.objects.filter(pk=backup.pk).update(verified_ok=False)  # the only backup failed its verification
    assert evaluate(T0 + timedelta(seconds=30))["fired"] == 1
    assert AlertRule.objects.get().last_value is None  # infinitely old: no verified backup at all
    assert fired("BackupOld")


def test_missed_jobs_fires_when_a_job_is_two_periods_late():
    rule("JobsMissed", "missed_jobs", "gt", 0, summary="JobsMissed")
    for minutes in (2, 1):
        slot = T0 - timedelta(minutes=minutes)
        JobRun.objects.create(job="scan_sla", slot=slot, started_at=slot)
    evaluate()
    assert AlertRule.objects.get().last_value == 0.0

    assert evaluate(T0 + timedelta(minutes=3))["fired"] == 1  # every minute, last seen 4 minutes ago
    assert AlertRule.objects.get().last_value == 1.0
    assert fired("JobsMissed")


def test_sla_breaches_fires_on_an_open_breached_ticket(requester):
    from tests.factories import make_ticket

    rule("Breaches", "sla_breaches", "gt", 0, summary="Breaches")
    ticket = make_ticket(requester)
    evaluate()
    assert AlertRule.objects.get().last_value == 0.0

    type(ticket).objects.filter(pk=ticket.pk).update(sla_status="breached")
    assert evaluate(T0 + timedelta(seconds=30))["fired"] == 1
    assert fired("Breaches")


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (apt-get install -y prometheus)")
def test_promql_fires_on_what_a_real_prometheus_answers(settings, tmp_path):
    port = free_port()
    (tmp_path / "prometheus.yml").write_text("global:\n  scrape_interval: 1s\n")
    command = [
        str(PROMETHEUS),
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with started(command, {"PATH": "/usr/bin:/bin"}, tmp_path / "prometheus.log"):
        wait_for(f"http://127.0.0.1:{port}/-/ready", 30)
        settings.PROMETHEUS_URL = f"http://127.0.0.1:{port}"
        rule("Quiet", "promql", "gt", 2, expression="vector(1)", summary="Quiet")
        rule("Loud", "promql", "gt", 2, expression="vector(3)", summary="Loud")
        assert evaluate() == {"evaluated": 2, "fired": 1, "resolved": 0, "errors": 0}
    assert fired("Loud")
    assert not fired("Quiet")
    assert AlertRule.objects.get(name="Loud").last_value == 3.0
