"""The admin's Job runs: job, slot, status, trigger and duration at a glance; admins run a job again now."""

from __future__ import annotations

import pytest
from django.test import Client

from itsm.models import JobRun, JobWatch
from tests.jobs.conftest import MONDAY, ran

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_job_runs_list_shows_duration_and_trigger(admin):
    run = ran("cleanup", MONDAY)
    JobRun.objects.filter(pk=run.pk).update(duration_seconds=1.25)
    JobWatch.objects.create(job="cleanup", first_seen_at=MONDAY)
    client = signed_in(admin)
    page = client.get("/admin/itsm/jobrun/").content.decode()
    assert "1.250 s" in page
    assert "schedule" in page
    assert client.get(f"/admin/itsm/jobrun/{run.pk}/change/").status_code == 200
    assert "cleanup" in client.get("/admin/itsm/jobwatch/").content.decode()


def test_an_admin_runs_the_selected_runs_jobs_again_now(admin, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr("itsm.services.jobs._send", lambda run_id, queue: sent.append((run_id, queue)))
    first, second = ran("cleanup", MONDAY), ran("cleanup", MONDAY.replace(hour=1))
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(admin).post(
            "/admin/itsm/jobrun/",
            {"action": "run_again_now", "_selected_action": [first.pk, second.pk]},
            follow=True,
        )
    assert response.status_code == 200
    queued = JobRun.objects.get(trigger=JobRun.Trigger.MANUAL)
    assert (queued.job, queued.status, queued.requested_by_id) == ("cleanup", "queued", admin.pk)
    assert [m.message for m in response.context["messages"]] == [f"cleanup: run #{queued.pk} queued on default."]
    assert sent == [(queued.pk, "default")]  # one run for the job, however many of its runs were selected


def test_an_agent_reads_job_runs_but_cannot_run_jobs(agent):
    run = ran("cleanup", MONDAY)
    client = signed_in(agent)
    assert client.get("/admin/itsm/jobrun/").status_code == 200
    response = client.post(
        "/admin/itsm/jobrun/", {"action": "run_again_now", "_selected_action": [run.pk]}, follow=True
    )
    assert [m.message for m in response.context["messages"]] == ["Only admins can run jobs."]
    assert not JobRun.objects.filter(trigger=JobRun.Trigger.MANUAL).exists()
