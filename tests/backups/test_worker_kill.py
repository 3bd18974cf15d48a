"""A real Celery worker on the Redis broker: its pool process is killed with SIGKILL in the middle of a backup,
the message is delivered again, and exactly one completed backup results."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from django.conf import settings

from itsm.models import Backup
from itsm.services.backups import backup_create
from itsm_project.celery import app
from tests.backups.conftest import database_url, seed_tickets
from tests.backups.test_database import scratch_databases
from tests.system.processes import BIN, base_env, started

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def tool_parent(worker_pid: int) -> int | None:
    """The pool process that runs pg_dump or pg_restore right now (the tool is its child), if any."""
    for pid in descendants(worker_pid):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if name in ("pg_dump", "pg_restore") and parent != worker_pid:
            return parent
    return None


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def test_a_worker_killed_in_the_middle_of_a_backup_leads_to_exactly_one_completed_backup(tmp_path):
    seed_tickets(60_000)  # a dump and a verifying restore that take long enough to be interrupted
    backup_dir = tmp_path / "worker-backups"
    env = base_env(
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        ITSM_VAR_DIR=str(tmp_path / "worker-var"),
        BACKUP_DIR=str(backup_dir),
    )
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("backups")  # nothing left from another run
    command = [str(BIN / "celery"), "-A", "itsm_project", "worker", "-Q", "backups", "--concurrency", "1"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"]
    log = tmp_path / "worker.log"
    backup = backup_create(kind="database", tier="daily", enqueue=False)

    with started(command, env, log) as worker:
        assert wait_until(lambda: bool(children_of(worker.pid)), 30), log.read_text()[-2000:]
        app.send_task("itsm.tasks.backups.run_backup", args=[backup.pk])

        # Kill the pool process once it is dumping or verifying: pg_dump or pg_restore runs as its child.
        spotted: list[int] = []

        def spot() -> bool:
            parent = tool_parent(worker.pid)
            if parent is not None:
                spotted.append(parent)
            return parent is not None

        assert wait_until(spot, 30), log.read_text()[-2000:]
        pool = spotted[-1]
        Backup.objects.filter(pk=backup.pk, status=Backup.Status.RUNNING).get()
        os.kill(pool, signal.SIGKILL)
        assert wait_until(lambda: not Path(f"/proc/{pool}").exists() or children_of(pool) == [], 10)

        done = wait_until(
            lambda: Backup.objects.filter(pk=backup.pk, status__in=["succeeded", "failed"]).exists(), 60, 0.2
        )
        assert done, log.read_text()[-3000:]

    backup.refresh_from_db()
    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    assert backup.attempts == 2
    assert backup.verified_ok is True
    assert Backup.objects.count() == 1
    assert Backup.objects.filter(status=Backup.Status.SUCCEEDED).count() == 1
    files = sorted(p.name for p in backup_dir.rglob("*") if p.is_file() and ".tmp" not in p.parts)
    assert files == [Path(backup.local_path).name]  # no partial file of the killed attempt
    assert [name for name in scratch_databases() if f"_{backup.pk}_" in name] == []
    assert "WorkerLostError" in log.read_text() or "SIGKILL" in log.read_text()
