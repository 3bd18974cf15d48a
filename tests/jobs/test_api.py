"""/api/v1/jobs/: agents and admins read every job of the Beat schedule with its last run and next due time;
admins run one now, which queues a message on the job's own queue in the real Redis broker."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import redis
import time_machine
from django.conf import settings

from itsm.models import JobRun
from itsm.services.jobs import RUN_NOW_TASK
from itsm.tasks.jobs import run_job_now, watch_jobs
from itsm_project.celery import app
from tests.jobs.conftest import MONDAY, all_ran, ran

pytestmark = pytest.mark.django_db

LIST = "/api/v1/jobs/"


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("default", "backups", "critical")
    yield client
    client.delete("default", "backups", "critical")


def test_requesters_and_strangers_cannot_see_jobs(as_requester, anonymous):
    assert as_requester.get(LIST).status_code == 403
    assert as_requester.get(f"{LIST}cleanup/").status_code == 403
    assert anonymous.get(LIST).status_code == 401
    assert anonymous.post(f"{LIST}cleanup/run/").status_code == 401


def test_agents_read_but_only_admins_run_a_job_now(as_agent):
    assert as_agent.get(LIST).status_code == 200
    response = as_agent.post(f"{LIST}cleanup/run/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not JobRun.objects.exists()


def test_an_unknown_job_is_a_json_404(as_admin):
    for response in (as_admin.get(f"{LIST}no-such-job/"), as_admin.post(f"{LIST}no-such-job/run/")):
        assert response.status_code == 404
        assert response.json() == {"detail": "No scheduled job is named 'no-such-job'.", "code": "not_found"}


def test_the_list_shows_every_beat_job_with_schedule_last_run_and_next_due(
    agent, client_for, django_assert_max_num_queries
):
    with time_machine.travel(MONDAY, tick=False):
        watch_jobs()
    later = MONDAY.replace(hour=4, minute=20)
    all_ran(later - timedelta(minutes=1), except_=["cleanup"])
    ran("cleanup", MONDAY - timedelta(hours=2), status=JobRun.Status.FAILED)
    with time_machine.travel(later, tick=False):
        as_agent = client_for(agent)
        with django_assert_max_num_queries(6):
            response = as_agent.get(LIST, {"page_size": 100})
    assert response.status_code == 200
    jobs = {job["name"]: job for job in response.json()["results"]}
    assert list(jobs) == list(app.conf.beat_schedule)
    cleanup = jobs["cleanup"]
    assert cleanup["task"] == "itsm.tasks.cleanup.cleanup"
    assert (cleanup["queue"], cleanup["schedule"], cleanup["cron"]) == ("default", "daily at 03:15 UTC", "15 3 * * *")
    assert (cleanup["period_seconds"], cleanup["grace_seconds"]) == (86400, 3600)
    assert cleanup["state"] == "missed"
    assert cleanup["missed_due_at"] == "2030-01-07T03:15:00Z"
    assert cleanup["next_due_at"] == "2030-01-08T03:15:00Z"
    assert cleanup["last_run"]["status"] == "failed"
    assert cleanup["last_success_at"] is None
    scan = jobs["scan_sla"]
    assert (scan["schedule"], scan["cron"], scan["state"]) == ("every 1 min", None, "ok")
    assert scan["last_run"]["started_at"] == "2030-01-07T04:19:00Z"
    assert scan["last_success_at"] == "2030-01-07T04:19:00Z"
    assert scan["next_due_at"] == "2030-01-07T04:20:00Z"
    assert jobs["backup_database_weekly"]["args"] == ["database", "weekly"]
    assert jobs["backup_database_weekly"]["queue"] == "backups"


def test_the_list_costs_the_same_queries_for_many_runs(as_admin, django_assert_max_num_queries):
    for minutes in range(30):
        all_ran(MONDAY + timedelta(minutes=minutes))
    with django_assert_max_num_queries(6):
        assert as_admin.get(LIST).status_code == 200


def test_a_job_shows_its_newest_runs_first(as_agent):
    first, second = ran("cleanup", MONDAY), ran("cleanup", MONDAY + timedelta(days=1))
    response = as_agent.get(f"{LIST}cleanup/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "cleanup"
    assert [run["id"] for run in body["runs"]] == [second.pk, first.pk]
    assert body["runs"][0]["duration_seconds"] == 0
    assert body["last_run"]["id"] == second.pk


@pytest.mark.django_db(transaction=True)
def test_run_now_queues_the_job_on_its_queue_with_its_schedule_arguments(as_admin, admin, broker):
    response = as_admin.post(f"{LIST}backup_database_weekly/run/")

    assert response.status_code == 202
    body = response.json()
    run = JobRun.objects.get(pk=body["run"]["id"])
    assert (run.status, run.trigger, run.requested_by_id) == ("queued", "manual", admin.pk)
    assert body["run"]["requested_by"] == admin.username
    assert body["job_url"].endswith("/api/v1/jobs/backup_database_weekly/")
    assert response["Location"] == body["job_url"]
    assert broker.llen("backups") == 1
    message = json.loads(broker.lindex("backups", 0))
    assert message["headers"]["task"] == RUN_NOW_TASK
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([run.pk], {})
    # The job shows the queued run at once, so the admin can follow it.
    runs = as_admin.get(body["job_url"]).json()["runs"]
    assert runs[0] == body["run"]


@pytest.mark.django_db(transaction=True)
def test_a_queued_run_executes_the_jobs_own_task_once_and_records_into_that_run(as_admin, broker):
    # The cleanup already ran today for its slot: "run now" still runs it, in its own record.
    ran("cleanup", MONDAY)
    run_id = as_admin.post(f"{LIST}cleanup/run/").json()["run"]["id"]
    assert broker.llen("default") == 1

    assert run_job_now(run_id) == "succeeded"
    assert run_job_now(run_id) is None  # a duplicated message finds the run claimed

    run = JobRun.objects.get(pk=run_id)
    assert run.status == JobRun.Status.SUCCEEDED
    assert set(run.detail["deleted"]) == {
        "alerts",
        "notifications",
        "delivery_attempts",
        "ticket_notices",
        "job_runs",
        "tokens",
        "sessions",
        "audit_log",
        "idempotency_keys",
        "login_throttles",
    }
    assert run.duration_seconds is not None
    assert JobRun.objects.filter(job="cleanup").count() == 2  # the scheduled one and this one, no other


def test_a_run_whose_job_left_the_schedule_fails_with_a_reason():
    run = JobRun.objects.create(job="gone", slot=MONDAY, started_at=MONDAY, status="queued", trigger="manual")
    assert run_job_now(run.pk) == "failed"
    run.refresh_from_db()
    assert run.detail == {"error": "gone is no longer in the Beat schedule."}


@pytest.mark.django_db(transaction=True)
def test_a_refused_message_marks_the_run_failed_instead_of_leaving_it_queued(as_admin, settings, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(app, "send_task", refuse)
    response = as_admin.post(f"{LIST}cleanup/run/")
    assert response.status_code == 202
    run = JobRun.objects.get(pk=response.json()["run"]["id"])
    assert run.status == JobRun.Status.FAILED
    assert "broker down" in run.detail["error"]
