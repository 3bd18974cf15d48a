"""itsm_job_last_success_timestamp_seconds survives in multiprocess mode: the newest success of any process,
including one that has exited (a recycled worker child), and the most recent period."""

from __future__ import annotations

import subprocess
import textwrap

from tests.system.processes import PYTHON, ROOT, base_env

SET = textwrap.dedent(
    """
    import os, sys
    from prometheus_client import multiprocess
    from itsm import metrics
    metrics.JOB_LAST_SUCCESS.labels(job="cleanup").set(float(sys.argv[1]))
    metrics.JOB_PERIOD.labels(job="cleanup").set(float(sys.argv[2]))
    multiprocess.mark_process_dead(os.getpid())  # what gunicorn's child_exit and Celery's pool do
    """
)
COLLECT = textwrap.dedent(
    """
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    print(generate_latest(registry).decode())
    """
)


def test_the_last_success_of_an_exited_process_stays_and_the_newest_wins(tmp_path):
    env = base_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    for last_success, period in (("2000", "86400"), ("1000", "3600")):
        subprocess.run([PYTHON, "-c", SET, last_success, period], cwd=ROOT, env=env, check=True, timeout=30)
    text = subprocess.run(
        [PYTHON, "-c", COLLECT], cwd=ROOT, env=env, check=True, capture_output=True, timeout=30
    ).stdout.decode()
    assert 'itsm_job_last_success_timestamp_seconds{job="cleanup"} 2000.0' in text
    assert 'itsm_job_period_seconds{job="cleanup"} 3600.0' in text
