"""`manage.py restore --to-time`: pgBackRest restores the repository to a moment into a new data directory, which
holds exactly what was committed before that moment; bad input is one line and a non-zero exit."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.pitr.conftest import ArchivedCluster, needs_pgbackrest

pytestmark = [needs_pgbackrest]


def restore(*args: str) -> str:
    out = StringIO()
    call_command("restore", *args, stdout=out)
    return out.getvalue()


@pytest.mark.slow
@pytest.mark.django_db
def test_a_restore_to_a_moment_holds_exactly_the_writes_before_it(archived: ArchivedCluster):
    archived.query("CREATE TABLE probe (name text)")
    archived.query("INSERT INTO probe VALUES ('first-1'), ('first-2')")
    moment = archived.query("SELECT clock_timestamp()::text")[0][0]
    archived.query("INSERT INTO probe VALUES ('second-1')")
    archived.query("UPDATE probe SET name = 'changed' WHERE name = 'first-1'")
    archived.switch_and_wait_archived()

    output = restore("--to-time", moment)

    found = re.search(r"into (\S+): (\d+) tables, (\d+) rows", output)
    assert found, output
    data = Path(found[1])
    assert data.parent == archived.root / "restores"
    assert found[2] == "1"
    assert found[3] == "2"
    assert "mv " in output
    assert "read_only_mode on" in output
    assert "archive_mode" not in (data / "postgresql.auto.conf").read_text()  # archives again once swapped in
    port = archived.start_restored(data)
    assert archived.query("SELECT name FROM probe ORDER BY name", port=port) == [("first-1",), ("first-2",)]
    assert archived.query("SELECT pg_is_in_recovery()", port=port) == [(False,)]
    # The live cluster was not touched.
    assert archived.query("SELECT name FROM probe ORDER BY name") == [("changed",), ("first-2",), ("second-1",)]


@pytest.mark.slow
@pytest.mark.django_db
def test_a_moment_before_the_oldest_backup_is_refused_in_one_line(archived: ArchivedCluster):
    with pytest.raises(CommandError, match=r"before the oldest backup, which ended at .*earliest moment") as error:
        restore("--to-time", "2020-01-01 00:00:00+00")
    assert "\n" not in str(error.value)
    assert not (archived.root / "restores").exists() or not any((archived.root / "restores").iterdir())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "is not a time"),
        ("2026-13-03 14:05:00+00", "is not a valid time"),
        ("2026-12-03 14:05:00", "has no UTC offset"),
    ],
)
def test_an_unreadable_moment_is_refused_in_one_line(settings, text, message):
    settings.BACKUP_PITR_STANZA = "itsm"
    with pytest.raises(CommandError, match=message) as error:
        restore("--to-time", text)
    assert "\n" not in str(error.value)


@pytest.mark.django_db
def test_without_pgbackrest_configured_a_restore_to_a_moment_says_what_to_set(settings):
    settings.BACKUP_PITR_STANZA = ""
    with pytest.raises(CommandError, match="not configured: set BACKUP_PITR_STANZA"):
        restore("--to-time", "2026-12-03 14:05:00+00")


@pytest.mark.django_db
def test_a_backup_id_and_a_moment_together_are_refused():
    with pytest.raises(CommandError, match="not both"):
        restore("12", "--to-time", "2026-12-03 14:05:00+00")
    with pytest.raises(CommandError, match="give a backup id or file"):
        restore()


@pytest.mark.slow
@pytest.mark.django_db
def test_a_restore_directory_that_cannot_be_created_is_one_line(archived: ArchivedCluster, settings):
    blocker = archived.root / "a-file"
    blocker.write_text("")
    settings.BACKUP_PITR_RESTORE_DIR = blocker / "restores"
    moment = archived.query("SELECT clock_timestamp()::text")[0][0]

    with pytest.raises(CommandError, match=r"cannot create the data directory .* \(BACKUP_PITR_RESTORE_DIR\)") as error:
        restore("--to-time", moment)
    assert "\n" not in str(error.value)
