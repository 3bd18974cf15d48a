"""Run now, end to end: the API queues the run in the real Redis broker, a real Celery worker on the job's queue
picks it up, runs the job's task and records the outcome in the queued run."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings

from itsm.models import JobRun
from tests.system.processes import BIN, base_env, current_database_url, started

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_worker_on_the_default_queue_runs_the_cleanup_asked_for_through_the_api(as_admin, tmp_path):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("default")
    env = base_env(DATABASE_URL=current_database_url(), REDIS_URL=settings.REDIS_URL, ITSM_VAR_DIR=str(tmp_path))
    command = [str(BIN / "celery"), "-A", "itsm_project", "worker", "-Q", "default", "--concurrency", "1"]
    command += ["--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    with started(command, env, tmp_path / "worker.log"):
        response = as_admin.post("/api/v1/jobs/cleanup/run/")
        assert response.status_code == 202
        run_id = response.json()["run"]["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = JobRun.objects.values_list("status", flat=True).get(pk=run_id)
            if status in (JobRun.Status.SUCCEEDED, JobRun.Status.FAILED):
                break
            time.sleep(0.3)
        run = JobRun.objects.get(pk=run_id)
        assert run.status == JobRun.Status.SUCCEEDED, (tmp_path / "worker.log").read_text()[-3000:]
        assert "deleted" in run.detail
        assert run.duration_seconds is not None
        assert as_admin.get("/api/v1/jobs/cleanup/").json()["last_run"]["id"] == run_id
