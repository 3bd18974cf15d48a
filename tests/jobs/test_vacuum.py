"""The weekly VACUUM ANALYZE runs for real: on PostgreSQL outside any transaction, and on the embedded SQLite."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from django.db import connection, transaction

from itsm.models import JobRun
from itsm.services.vacuum import VacuumInTransaction, database_vacuum
from itsm.tasks.vacuum import vacuum_database
from tests.system.processes import PYTHON, ROOT, base_env


def _stats(table: str) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT vacuum_count, analyze_count FROM pg_stat_user_tables WHERE relname = %s", [table])
        row = cursor.fetchone()
    return int(row[0]), int(row[1])


@pytest.mark.django_db(transaction=True)
def test_the_vacuum_job_vacuums_and_analyzes_every_table_of_the_postgresql_database():
    assert connection.vendor == "postgresql"
    before = _stats("itsm_ticket")

    detail = vacuum_database()

    assert detail is not None
    assert detail["engine"] == "postgresql"
    assert detail["statements"] == ["VACUUM (ANALYZE)"]
    assert detail["size_before_bytes"] > 0
    assert detail["size_after_bytes"] > 0
    # The statistics views lag a little behind the VACUUM that updated them.
    deadline = time.monotonic() + 5
    while _stats("itsm_ticket") == before and time.monotonic() < deadline:
        time.sleep(0.1)
    vacuums, analyzes = _stats("itsm_ticket")
    assert vacuums == before[0] + 1
    assert analyzes == before[1] + 1
    run = JobRun.objects.get(job="vacuum_database")
    assert run.status == JobRun.Status.SUCCEEDED
    assert run.detail == detail
    # The API's statement timeout is back for the next query on this connection.
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] != "0"


@pytest.mark.django_db(transaction=True)
def test_vacuum_refuses_to_run_inside_a_transaction():
    with transaction.atomic(), pytest.raises(VacuumInTransaction):
        database_vacuum()


@pytest.mark.slow
def test_the_vacuum_runs_on_the_embedded_sqlite_database(tmp_path):
    env = base_env(ITSM_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="itsm_project.settings")
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    script = "import json; from itsm.services.vacuum import database_vacuum; print(json.dumps(database_vacuum()))"
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60
    )
    detail = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert detail["engine"] == "sqlite"
    assert detail["statements"] == ["VACUUM", "ANALYZE", "PRAGMA optimize"]
    assert detail["size_after_bytes"] > 0
