"""`manage.py upgrade` against real PostgreSQL, with a throwaway release: a settings module that adds an app whose
migrations this test writes (on a temporary sys.path entry), run as the operator runs it, in a child process.

The failing release's first migration creates a table and commits; its second raises. That leaves the database
half upgraded, which is what the way back must undo: a restore of the pre-upgrade backup with the previous
release (the project's own settings) brings back the marker rows and the old schema.
"""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections

from itsm.models import Backup, Ticket
from itsm.services.backups import backup_apply_retention
from tests.backups.conftest import database_url, drop_databases, seed_tickets
from tests.system.processes import PYTHON, ROOT, base_env

__all__ = ["drop_databases"]  # the fixture, shared with tests/backups

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CREATE_TABLE = """
from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies = [("itsm", "0020_backup_pre_upgrade_trigger")]
    operations = [
        migrations.RunSQL(
            "CREATE TABLE {app}_added (id integer PRIMARY KEY)", reverse_sql="DROP TABLE {app}_added"
        )
    ]
"""

FAILS = """
from django.db import migrations


def fail(apps, schema_editor):
    raise RuntimeError("this release's data migration is broken")


class Migration(migrations.Migration):
    dependencies = [("{app}", "0001_initial")]
    operations = [migrations.RunPython(fail)]
"""


@pytest.fixture(autouse=True)
def _backup_paths(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_S3_BUCKET = ""


def release(tmp_path: Path, app: str, *, failing: bool) -> dict[str, str]:
    """A release that adds `app` (one migration, plus one that raises when `failing`): its environment."""
    package = tmp_path / "release" / app
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "migrations" / "__init__.py").write_text("")
    (package / "migrations" / "0001_initial.py").write_text(CREATE_TABLE.format(app=app))
    if failing:
        (package / "migrations" / "0002_broken.py").write_text(FAILS.format(app=app))
    (tmp_path / "release" / "release_settings.py").write_text(
        f"from itsm_project.settings import *  # noqa\nINSTALLED_APPS = [*INSTALLED_APPS, {app!r}]\n"
    )
    return {"DJANGO_SETTINGS_MODULE": "release_settings", "PYTHONPATH": f"{tmp_path / 'release'}:{ROOT}"}


def manage(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    connections.close_all()  # a restore renames the test database: no connection of ours may hold it
    env = base_env(
        DATABASE_URL=database_url(),
        ITSM_VAR_DIR=str(settings.VAR_DIR),
        BACKUP_DIR=str(settings.BACKUP_DIR),
        BACKUP_S3_BUCKET="",
        **(extra or {}),
    )
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return bool(cursor.fetchone()[0])


def applied(app: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM django_migrations WHERE app = %s ORDER BY id", [app])
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def forget_app():
    """Drop what a test's release left in the test database."""
    apps: list[str] = []
    yield apps.append
    with connection.cursor() as cursor:
        for app in apps:
            cursor.execute(f"DROP TABLE IF EXISTS {app}_added")
            cursor.execute("DELETE FROM django_migrations WHERE app = %s", [app])


def test_plan_only_lists_the_pending_migrations_flags_the_irreversible_one_and_changes_nothing(tmp_path, forget_app):
    forget_app("upgrade_planned")
    env = release(tmp_path, "upgrade_planned", failing=True)
    result = manage("upgrade", "--plan-only", extra=env)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "Migration plan: 2 to apply, 1 of them irreversible:",
        "  upgrade_planned.0001_initial",
        "    Raw SQL operation",
        "  upgrade_planned.0002_broken  [IRREVERSIBLE]",
        "    Raw Python operation (irreversible)",
    ]
    assert "2 migrations to apply" in result.stderr
    assert applied("upgrade_planned") == []
    assert not Backup.objects.exists()
    assert manage("upgrade", "--plan-only").stdout == "Migration plan: no migrations to apply.\n"


def test_an_upgrade_prints_the_plan_takes_a_kept_pre_upgrade_backup_then_applies(tmp_path, forget_app):
    forget_app("upgrade_good")
    good = release(tmp_path, "upgrade_good", failing=False)
    result = manage("upgrade", extra=good)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    plan = out.index("Migration plan: 1 to apply, 0 of them irreversible:")
    backup_line = out.index("pre-upgrade backup #")
    applying = out.index("Applying upgrade_good.0001_initial... OK")
    assert plan < backup_line < applying
    backup = Backup.objects.get()
    assert (backup.trigger, backup.status, backup.verified_ok) == ("pre_upgrade", "succeeded", True)
    assert f"the pre-upgrade backup #{backup.pk} is kept" in out
    assert backup.has_local_copy
    assert applied("upgrade_good") == ["0001_initial"]
    # Retention, even long after and with a newer verified backup, leaves it alone; only an explicit removal
    # deletes its file.
    later = backup.created_at + timedelta(days=1)
    Backup.objects.create(
        kind="database", status="succeeded", verified_ok=True, created_at=later, started_at=later, local_path="x.dump"
    )
    assert backup_apply_retention(now=backup.created_at + timedelta(days=400)) == []
    backup.refresh_from_db()
    assert backup.has_local_copy
    removed = manage("upgrade", "--remove-backup", str(backup.pk))
    assert removed.returncode == 0, removed.stderr
    backup.refresh_from_db()
    assert not backup.has_local_copy
    again = manage("upgrade", extra=good).stdout
    assert "] Migration plan: no migrations to apply.\nnothing to upgrade" in again
    assert Backup.objects.count() == 2  # nothing to apply, no backup


def test_a_failed_release_leaves_a_backup_and_its_way_back_restores_the_pre_upgrade_database(
    tmp_path, forget_app, drop_databases
):
    forget_app("upgrade_broken")
    seed_tickets(3, title="Marker before the upgrade")
    result = manage(
        "upgrade", "--previous-image", "itsm-api:1.4.2", extra=release(tmp_path, "upgrade_broken", failing=True)
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "upgrade failed: a migration failed: RuntimeError: this release's data migration is broken" in result.stderr
    backup = Backup.objects.get()
    assert (backup.trigger, backup.status, backup.verified_ok) == ("pre_upgrade", "succeeded", True)
    assert f"the pre-upgrade backup is #{backup.pk}" in result.stdout
    assert "Go back to the previous image: itsm-api:1.4.2" in result.stdout
    # Half upgraded: the first migration committed.
    assert table_exists("upgrade_broken_added")
    assert applied("upgrade_broken") == ["0001_initial"]

    # The way back, as printed, with the previous release (the project's own settings).
    command = re.search(r"^\s+python manage\.py (restore \d+ --yes)$", result.stdout, re.M)
    assert command, result.stdout
    restored = manage(*command.group(1).split())
    assert restored.returncode == 0, restored.stdout + restored.stderr
    kept = re.search(r"the previous content is kept as (\S+)", restored.stdout)
    assert kept, restored.stdout
    drop_databases(kept.group(1))
    assert Ticket.objects.filter(title__startswith="Marker before the upgrade").count() == 3
    assert not table_exists("upgrade_broken_added")
    assert applied("upgrade_broken") == []
    assert Backup.objects.get(pk=backup.pk).trigger == "pre_upgrade"


def test_rollback_restores_the_pre_upgrade_backup_without_applying_the_release_again(
    tmp_path, forget_app, drop_databases
):
    forget_app("upgrade_rolled")
    seed_tickets(2, title="Marker before the upgrade")
    result = manage("upgrade", "--rollback", extra=release(tmp_path, "upgrade_rolled", failing=True))
    assert result.returncode == 1, result.stdout + result.stderr
    kept = re.search(r"the failed one is kept as (\S+)\)", result.stdout)
    assert kept, result.stdout
    drop_databases(kept.group(1))
    assert f"Rolled back: the database is the pre-upgrade backup #{Backup.objects.get().pk} again" in result.stdout
    assert Ticket.objects.filter(title__startswith="Marker before the upgrade").count() == 2
    assert not table_exists("upgrade_rolled_added")
    assert applied("upgrade_rolled") == []
