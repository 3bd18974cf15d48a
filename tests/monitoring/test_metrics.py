"""The metrics the alert rules and dashboards read: gauges refreshed by Beat, Celery task signals, the worker's
own /metrics endpoint, and the job timestamps behind BeatJobMissed."""

from __future__ import annotations

import time
import urllib.request
from datetime import timedelta
from typing import Any

import pytest
from celery import signals
from django.conf import settings
from prometheus_client import REGISTRY

from itsm.celery_metrics import serve
from itsm.models import Ticket
from itsm.services.jobs import job_run_once
from itsm.services.monitoring import metrics_refresh
from itsm_project.celery import QUEUES, app
from tests.factories import make_ticket, make_user
from tests.system.processes import BIN, base_env, current_database_url, free_port, started


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


@pytest.mark.django_db
def test_refresh_counts_open_tickets_by_priority_and_status_and_breached_slas():
    requester = make_user("rita", "requester")
    make_ticket(requester, priority="high")
    make_ticket(requester, priority="high")
    breached = make_ticket(requester, priority="low")
    Ticket.objects.filter(pk=breached.pk).update(sla_status=Ticket.SlaStatus.BREACHED)
    closed = make_ticket(requester, priority="low")
    Ticket.objects.filter(pk=closed.pk).update(status=Ticket.Status.CLOSED)

    detail = metrics_refresh()

    assert detail["tickets"] == {"open": 3, "sla_breached": 1}
    assert sample("itsm_tickets_open", priority="high", status="new") == 2
    assert sample("itsm_tickets_open", priority="low", status="new") == 1
    assert sample("itsm_tickets_open", priority="critical", status="open") == 0
    assert sample("itsm_tickets_sla_breached_open", priority="low") == 1
    assert sample("itsm_tickets_sla_breached_open", priority="high") == 0
    assert detail["migrations"] == 0
    assert sample("itsm_migrations_unapplied") == 0


@pytest.mark.django_db
def test_queue_lengths_come_from_the_broker():
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(*QUEUES)  # type: ignore[attr-defined]
        for _ in range(3):
            app.send_task("itsm.tasks.monitoring.refresh_metrics", queue="backups", connection=conn)
    try:
        detail = metrics_refresh()
        assert detail["queues"] == {"critical": 0, "notifications": 0, "backups": 3, "default": 0}
        assert sample("itsm_celery_queue_length", queue="backups") == 3
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.client.delete(*QUEUES)  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_a_broken_part_of_the_refresh_does_not_stop_the_others(monkeypatch):
    monkeypatch.setattr(app, "connection_for_read", lambda: (_ for _ in ()).throw(ConnectionError("broker down")))
    detail = metrics_refresh()
    assert detail["queues"].startswith("error: ConnectionError: broker down")
    assert detail["tickets"] == {"open": 0, "sla_breached": 0}


@pytest.mark.django_db
def test_job_success_records_its_time_and_period_for_beat_job_missed():
    job_run_once(job="monitoring_test_job", period=timedelta(minutes=5), work=dict)
    assert sample("itsm_job_period_seconds", job="monitoring_test_job") == 300
    first = sample("itsm_job_last_success_timestamp_seconds", job="monitoring_test_job")
    assert first is not None
    assert first > 0


class FakeTask:
    name = "itsm.tasks.example"


def test_celery_signals_count_outcomes_and_durations():
    task: Any = FakeTask()
    before = sample("itsm_celery_tasks_total", task=task.name, outcome="failure") or 0
    count_before = sample("itsm_celery_task_duration_seconds_count", task=task.name) or 0
    signals.task_prerun.send(sender=task, task_id="t-1", task=task)
    signals.task_postrun.send(sender=task, task_id="t-1", task=task, state="FAILURE", retval=None)
    assert sample("itsm_celery_tasks_total", task=task.name, outcome="failure") == before + 1
    assert sample("itsm_celery_task_duration_seconds_count", task=task.name) == count_before + 1


def test_the_worker_serves_the_metrics_of_every_pool_process(tmp_path, monkeypatch):
    # A pool process wrote its samples into the multiprocess directory; the worker's server adds them up.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    from prometheus_client import CollectorRegistry, Counter, values

    values.ValueClass = values.get_value_class()
    try:
        counter = Counter("itsm_worker_probe_total", "probe", registry=CollectorRegistry())
        counter.inc(7)
        port = free_port()
        server = serve(port, "127.0.0.1")
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        finally:
            server.shutdown()
            server.server_close()
    finally:
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
        values.ValueClass = values.get_value_class()
    assert "itsm_worker_probe_total 7.0" in body


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_serves_task_outcomes_and_the_refreshed_gauges(tmp_path):
    make_ticket(make_user("rita", "requester"), priority="critical")
    port = free_port()
    env = base_env(
        DATABASE_URL=current_database_url(),
        REDIS_URL=str(settings.REDIS_URL),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        ITSM_CELERY_METRICS_PORT=str(port),
    )
    (tmp_path / "metrics").mkdir()
    command = [str(BIN / "celery"), "-A", "itsm_project", "worker", "-Q", "default", "--concurrency", "2"]
    with started(command, env, tmp_path / "worker.log"):
        deadline = time.monotonic() + 30
        body = ""
        sent = False
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                time.sleep(0.5)
                continue
            if not sent:
                app.send_task("itsm.tasks.monitoring.refresh_metrics", queue="default")
                sent = True
            if 'itsm_tickets_open{priority="critical",status="new"} 1.0' in body:
                break
            time.sleep(0.5)
    log = (tmp_path / "worker.log").read_text()
    assert 'itsm_tickets_open{priority="critical",status="new"} 1.0' in body, log[-2000:]
    assert 'itsm_celery_tasks_total{outcome="success",task="itsm.tasks.monitoring.refresh_metrics"} 1.0' in body
    assert 'itsm_job_period_seconds{job="refresh_metrics"} 30.0' in body
