from typing import Any

from celery import current_app, shared_task

from itsm.models import JobRun
from itsm.services import jobs
from itsm.services.deadman import jobs_watch
from itsm.services.job_schedule import job_get


@shared_task(name="itsm.tasks.jobs.watch_jobs")
def watch_jobs() -> dict[str, Any] | None:
    """Every minute: the dead-man switch (a job that missed its slot opens an alert and one high incident)."""
    run = jobs.job_run_scheduled(job="watch_jobs", work=jobs_watch)
    return run.detail if run else None


@shared_task(name="itsm.tasks.jobs.run_job_now")
def run_job_now(run_id: int) -> str | None:
    """A manual run (`POST /api/v1/jobs/{name}/run/`): the job's own task, with its schedule's arguments, recorded
    in the queued run. Sent to the job's own queue; a duplicated message finds the run claimed and does nothing."""
    run = jobs.job_run_claim(run_id=run_id)
    if run is None:
        return None
    job = job_get(run.job)
    if job is None:
        jobs.job_run_abandon(run_id=run_id, error=f"{run.job} is no longer in the Beat schedule.")
        return JobRun.Status.FAILED
    try:
        with jobs.manual_run(run):
            current_app.tasks[job.task](*job.args, **job.kwargs)
    except Exception as exc:
        jobs.job_run_abandon(run_id=run_id, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    jobs.job_run_abandon(run_id=run_id, error=f"{job.task} returned without recording this run.")
    return JobRun.objects.values_list("status", flat=True).get(pk=run_id)
