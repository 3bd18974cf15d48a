"""The pgBackRest configuration the platform writes keeps the manual's daily horizon and archives through pgBackRest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from itsm.backup.pgbackrest import ARCHIVE_TIMEOUT_SECONDS, postgresql_settings, render_config
from itsm.backup.retention import KEEP
from itsm.checks import check_pitr


def test_the_configuration_keeps_full_backups_for_the_manuals_daily_horizon():
    text = render_config(stanza="itsm", pg_path=Path("/var/lib/postgresql/15/main"))

    assert f"repo1-retention-full={KEEP['daily'].days}" in text.splitlines()
    assert "repo1-retention-full-type=time" in text.splitlines()
    assert "repo1-type=s3" not in text
    assert text.splitlines()[-3:] == ["pg1-path=/var/lib/postgresql/15/main", "pg1-port=5432", "pg1-user=postgres"]


def test_an_s3_repository_names_its_bucket_and_endpoint():
    s3 = {"bucket": "itsm-backups", "endpoint": "s3.eu-central-1.amazonaws.com", "region": "eu-central-1"}
    text = render_config(stanza="itsm", pg_path=Path("/data"), s3={**s3, "key": "k", "secret": "s"})

    for line in ("repo1-type=s3", "repo1-s3-bucket=itsm-backups", "repo1-s3-region=eu-central-1"):
        assert line in text.splitlines()
    assert "repo1-storage-verify-tls=n" not in text


def test_postgresql_archives_every_segment_through_pgbackrest_every_30_seconds():
    lines = postgresql_settings(config=Path("/etc/pgbackrest/pgbackrest.conf"), stanza="itsm")

    assert (
        lines["archive_command"] == "pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=itsm archive-push %p"
    )
    assert lines["archive_timeout"] == "30s"
    assert lines["archive_mode"] == "on"


def check_ids(settings: Any) -> set[str | None]:
    return {message.id for message in check_pitr()}


def test_pitr_settings_are_checked_only_when_pitr_is_on(settings: Any, tmp_path: Path) -> None:
    settings.BACKUP_PITR_STANZA = ""
    settings.BACKUP_PITR_BIN = "no-such-pgbackrest"
    assert check_ids(settings) == set()

    settings.BACKUP_PITR_STANZA = "itsm"
    assert check_ids(settings) == {"itsm.W002", "itsm.W003"}

    config = tmp_path / "pgbackrest.conf"
    config.write_text(render_config(stanza="itsm", pg_path=tmp_path / "data"))
    settings.BACKUP_PITR_CONFIG = str(config)
    settings.BACKUP_PITR_BIN = "sh"  # any executable on the PATH
    assert check_ids(settings) == set()


def test_a_drill_wait_that_archive_timeout_cannot_meet_is_an_error(settings: Any) -> None:
    settings.BACKUP_PITR_STANZA = "itsm"
    settings.BACKUP_PITR_DRILL_WAIT_SECONDS = ARCHIVE_TIMEOUT_SECONDS
    assert "itsm.E023" in check_ids(settings)


def test_pitr_on_sqlite_is_an_error(settings: Any) -> None:
    settings.BACKUP_PITR_STANZA = "itsm"
    settings.DATABASES = {**settings.DATABASES, "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x"}}
    assert "itsm.E022" in check_ids(settings)
