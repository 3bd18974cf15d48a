"""`manage.py pitr_drill`: writes a row, notes the moment, writes another, waits for archive_timeout to archive
them (RPO), restores to the moment into a throw-away cluster (RTO) and finds only the first; a drill that cannot
reach its target fails with a non-zero exit and is recorded as failed, for the PitrDrillFailed alert."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from prometheus_client import REGISTRY

from itsm.backup.pgbackrest import ARCHIVE_TIMEOUT_SECONDS
from itsm.models import RecoveryDrill
from itsm.services.monitoring import metrics_refresh
from itsm.services.pitr import MARKER_TABLE
from tests.pitr.conftest import ArchivedCluster, needs_pgbackrest

pytestmark = [needs_pgbackrest, pytest.mark.slow, pytest.mark.django_db]


def drills(outcome: str) -> float:
    return REGISTRY.get_sample_value("itsm_pitr_drills_total", {"outcome": outcome}) or 0.0


def run_drill() -> str:
    out = StringIO()
    call_command("pitr_drill", stdout=out)
    return out.getvalue()


def test_a_drill_restores_to_its_moment_and_records_an_rpo_under_a_minute(archived: ArchivedCluster):
    passed = drills("succeeded")
    archived.query("CREATE TABLE probe AS SELECT g AS n FROM generate_series(1, 500) AS g")
    archived.switch_and_wait_archived()

    output = run_drill()

    drill = RecoveryDrill.objects.get()
    assert drill.status == RecoveryDrill.Status.SUCCEEDED, drill.error
    assert ARCHIVE_TIMEOUT_SECONDS == 30
    assert drill.rpo_seconds is not None
    assert drill.rto_seconds is not None
    assert 0 <= drill.rpo_seconds < 60
    assert drill.rto_seconds > 0
    assert drill.target_time is not None
    assert drill.finished_at is not None
    assert drill.backup_label.endswith("F")
    # probe and the drill's marker table (its row written before the moment) were read in the restored cluster.
    assert drill.restored_tables == 2
    assert drill.restored_rows == 501
    assert re.search(rf"PITR drill #{drill.pk} passed: RPO \d+\.\d s, RTO \d+\.\d s", output), output
    assert drills("succeeded") == passed + 1
    # The throw-away cluster and its directory are gone; the live cluster keeps no marker.
    assert not any((archived.root / "restores").iterdir())
    assert archived.query(f"SELECT count(*) FROM {MARKER_TABLE}") == [(0,)]


def test_a_drill_that_cannot_reach_its_target_fails_and_is_recorded(archived: ArchivedCluster, settings):
    failed = drills("failed")
    archived.query("ALTER SYSTEM SET archive_command = '/bin/false'")
    archived.query("SELECT pg_reload_conf()")
    settings.BACKUP_PITR_DRILL_WAIT_SECONDS = 3

    with pytest.raises(CommandError, match=r"PITR drill #\d+ FAILED: WAL segment \w+ was not archived") as error:
        run_drill()

    assert "\n" not in str(error.value)
    drill = RecoveryDrill.objects.get()
    assert drill.status == RecoveryDrill.Status.FAILED
    assert "the target cannot be reached" in drill.error
    assert drill.finished_at is not None
    assert drill.rpo_seconds is None
    assert drills("failed") == failed + 1


def test_admins_see_pgbackrest_check_on_health_and_the_archive_age_is_a_metric(archived, client_for, admin, agent):
    archived.switch_and_wait_archived()

    as_admin = client_for(admin).get("/health/").json()
    as_agent = client_for(agent).get("/health/").json()

    assert as_admin["pgbackrest"]["status"] == "ok", as_admin
    assert "pgbackrest" not in as_agent
    assert as_admin["status"] == as_agent["status"]
    detail = metrics_refresh()
    assert 0 <= detail["wal_archive_age_seconds"] < 3600
    assert REGISTRY.get_sample_value("itsm_wal_archive_age_seconds") == detail["wal_archive_age_seconds"]


def test_a_broken_repository_shows_on_health_for_admins(archived: ArchivedCluster, client_for, admin, settings):
    settings.BACKUP_PITR_STANZA = "not-a-stanza"

    body = client_for(admin).get("/health/").json()

    assert body["pgbackrest"]["status"] == "down"
    assert "pgbackrest check failed" in body["pgbackrest"]["error"]


def test_a_drill_with_its_repository_on_s3(archived_on_s3: ArchivedCluster):
    output = run_drill()

    drill = RecoveryDrill.objects.get()
    assert drill.status == RecoveryDrill.Status.SUCCEEDED, drill.error
    assert drill.rpo_seconds is not None
    assert 0 <= drill.rpo_seconds < 60
    assert "passed" in output
