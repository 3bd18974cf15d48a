"""A real Celery worker on the Redis broker picks the SLA scan off the critical queue."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings

from itsm.models import JobRun
from itsm_project.celery import app
from tests.system.processes import BIN, base_env, current_database_url, started

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_worker_on_the_critical_queue_runs_the_sla_scan_sent_through_redis(tmp_path):
    env = base_env(DATABASE_URL=current_database_url(), REDIS_URL=settings.REDIS_URL, ITSM_VAR_DIR=str(tmp_path))
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("critical")  # no message left from another run
    command = [
        str(BIN / "celery"),
        "-A",
        "itsm_project",
        "worker",
        "-Q",
        "critical",
        "--concurrency",
        "1",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]
    with started(command, env, tmp_path / "worker.log"):
        result = app.send_task("itsm.tasks.sla.scan_sla")
        assert result.id
        # The run is written `running` when the task starts and `succeeded` when it ends: wait for the end.
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and not JobRun.objects.filter(job="scan_sla").exclude(status=JobRun.Status.RUNNING).exists()
        ):
            time.sleep(0.3)
        run = JobRun.objects.filter(job="scan_sla").first()
        assert run is not None, (tmp_path / "worker.log").read_text()[-2000:]
        assert run.status == JobRun.Status.SUCCEEDED
