"""Two Beat processes at once (a second one started by mistake, or two replicas): every job runs once per slot
of its schedule, and the second Beat's messages are no-ops."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from functools import partial
from pathlib import Path

import pytest

from itsm_project.celery import app
from tests.fault.conftest import Stack
from tests.system.processes import eventually

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

# Beat first sends an interval job one period after it starts: 62 s see two sends of every 30 s job per Beat.
BEAT_SECONDS = 62
PERIODS = {
    name: float(entry["schedule"])
    for name, entry in app.conf.beat_schedule.items()
    if isinstance(entry["schedule"], (int, float))
}
SENT = re.compile(r"Sending due task (\S+) ")
SKIPPED = re.compile(r"job (\S+) already ran for slot")


def beat_started(log_file: Path) -> bool:
    return "beat: Starting" in log_file.read_text()


def test_two_beats_at_once_run_each_job_once_per_slot(backing: Stack) -> None:
    backing.worker("critical,default,notifications", "--concurrency", "2")
    beats = [
        backing.celery(name, "beat", "--loglevel", "INFO", "--schedule", str(backing.root / f"{name}-schedule"))
        for name in ("beat-a", "beat-b")
    ]
    for beat in beats:
        beat.start()
    for name in ("beat-a", "beat-b"):
        eventually(partial(beat_started, backing.root / f"{name}.log"), 60, f"{name} started")
    time.sleep(BEAT_SECONDS)
    for beat in beats:
        beat.stop()
    time.sleep(3)  # the worker finishes the last messages

    # Only the interval jobs: a crontab job whose minute falls inside the run (the hourly backup at :05, on the
    # backups queue this worker does not take) is sent too, but it is not what this test counts.
    def interval_jobs(names: list[str]) -> Counter[str]:
        return Counter(name for name in names if name in PERIODS)

    sent = {
        name: interval_jobs(SENT.findall((backing.root / f"{name}.log").read_text())) for name in ("beat-a", "beat-b")
    }
    both = sent["beat-a"] + sent["beat-b"]
    runs = [
        row
        for row in backing.query(
            "SELECT job, extract(epoch FROM started_at), status FROM itsm_jobrun WHERE trigger = 'schedule' ORDER BY id"
        )
        if row[0] in PERIODS
    ]
    per_job = Counter(job for job, _, _ in runs)
    skipped = interval_jobs(SKIPPED.findall((backing.root / "worker.log").read_text())).total()

    for job in ("escalate_incidents", "evaluate_alert_rules", "refresh_metrics"):
        assert sent["beat-a"][job] == sent["beat-b"][job] == 2, (job, sent, backing.logs())
    # No two runs of an interval job started in one slot of its schedule (slots are aligned to the epoch).
    slots = Counter((job, int(float(str(started)) // PERIODS[str(job)])) for job, started, _ in runs if job in PERIODS)
    assert max(slots.values()) == 1, slots
    assert all(status == "succeeded" for _, _, status in runs), runs
    # Every message was taken: each one either ran its slot or found the slot taken.
    assert sum(per_job.values()) + skipped == sum(both.values()), (per_job, skipped, both)
    assert skipped >= sum(both.values()) // 2 - 2, (per_job, skipped, both)
    log.info("two Beats for %s s sent %s messages: %s runs, %s no-ops", BEAT_SECONDS, both.total(), len(runs), skipped)
