"""The pgBackRest configuration the platform writes keeps the manual's daily horizon and archives through pgBackRest."""

from __future__ import annotations

from pathlib import Path

from itsm.backup.pgbackrest import postgresql_settings, render_config
from itsm.backup.retention import KEEP


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
