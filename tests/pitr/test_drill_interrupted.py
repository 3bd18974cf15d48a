"""A drill killed with its worker does not stay `running` for ever: the next drill, or the metrics job within a
minute, finds its lock free, records it as failed and stops and removes the throw-away cluster it left behind. A
drill whose process still holds its lock, or that has just started, is left alone."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from itsm.backup.configured import drill_lock
from itsm.models import RecoveryDrill
from itsm.services.monitoring import metrics_refresh
from itsm.services.pitr import INTERRUPTED, pitr_drills_reap
from tests.pitr.conftest import OS_USER, needs_pgbackrest
from tests.system.processes import free_port, postgres_initdb, postgres_server, wait_for_postgres

pytestmark = [needs_pgbackrest, pytest.mark.slow, pytest.mark.django_db]


def a_running_drill(minutes_ago: float) -> RecoveryDrill:
    return RecoveryDrill.objects.create(started_at=timezone.now() - timedelta(minutes=minutes_ago))


def test_a_dead_drill_is_failed_and_its_cluster_stopped_and_removed(settings, pitr_root: Path):
    restores = pitr_root / "restores"
    restores.mkdir()
    if OS_USER:
        shutil.chown(restores, OS_USER, OS_USER)
    settings.BACKUP_PITR_STANZA = "itsm"
    settings.BACKUP_PITR_RESTORE_DIR = restores
    dead, alive, young = a_running_drill(5), a_running_drill(5), a_running_drill(0)
    left_behind = restores / f"drill_{dead.pk}_20261203_120000"
    postgres_initdb(left_behind, pitr_root / "initdb.log")
    port = free_port()
    server = postgres_server(left_behind, port, pitr_root / "left-behind.log").start()
    try:
        wait_for_postgres(port, timeout=60)
        with drill_lock(alive.pk) as held:  # `alive`'s process still runs it
            assert held
            assert pitr_drills_reap() == [dead.pk]
        assert server.process is not None
        assert server.process.wait(timeout=30) is not None, "the left-behind postmaster is still running"
    finally:
        server.close()
    assert not left_behind.exists()
    dead.refresh_from_db()
    assert (dead.status, dead.error) == (RecoveryDrill.Status.FAILED, INTERRUPTED)
    assert dead.finished_at is not None
    assert dead.detail == {"removed": [str(left_behind)]}
    running = set(RecoveryDrill.objects.filter(status=RecoveryDrill.Status.RUNNING).values_list("pk", flat=True))
    assert running == {alive.pk, young.pk}


def test_the_metrics_job_reaps_a_dead_drill_once(settings, tmp_path: Path):
    dead = a_running_drill(2)
    settings.BACKUP_PITR_STANZA = ""
    assert metrics_refresh()["pitr_drills_interrupted"] == []  # PITR off: nothing is touched
    settings.BACKUP_PITR_STANZA = "itsm"
    settings.BACKUP_PITR_RESTORE_DIR = tmp_path
    assert metrics_refresh()["pitr_drills_interrupted"] == [dead.pk]
    assert metrics_refresh()["pitr_drills_interrupted"] == []
    dead.refresh_from_db()
    assert dead.status == RecoveryDrill.Status.FAILED
