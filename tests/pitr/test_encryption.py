"""A pgBackRest repository encrypted at rest (repo1-cipher-type aes-256-cbc, the pass from a secret): its files are
ciphertext, a restore to a moment still holds exactly the writes before it, and without the pass the repository
cannot be read."""

from __future__ import annotations

import re
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from itsm.backup.pgbackrest import PgBackRest, PitrError
from tests.pitr.conftest import OS_USER, STANZA, _configure, _stop, needs_pgbackrest, start_archived_cluster

pytestmark = [needs_pgbackrest, pytest.mark.slow]

CIPHER_PASS = "a-long-random-pass-from-the-secret-0123456789"


@pytest.mark.django_db
def test_an_encrypted_repository_is_ciphertext_and_restores_only_with_its_pass(settings, pitr_root: Path):
    cluster = start_archived_cluster(pitr_root, cipher_pass=CIPHER_PASS)
    _configure(settings, cluster)
    try:
        cluster.query("CREATE TABLE probe (name text)")
        cluster.query("INSERT INTO probe VALUES ('before')")
        moment = cluster.query("SELECT clock_timestamp()::text")[0][0]
        cluster.query("INSERT INTO probe VALUES ('after')")
        cluster.switch_and_wait_archived()

        # Every file of the repository is ciphertext: OpenSSL's salted format, no readable backup.info.
        files = [path for path in (pitr_root / "repo").rglob("*") if path.is_file() and path.stat().st_size]
        assert files
        for path in files:
            assert path.read_bytes().startswith(b"Salted__"), path
        assert b"backup-label" not in (pitr_root / "repo" / "backup" / STANZA / "backup.info").read_bytes()

        out = StringIO()
        call_command("restore", "--to-time", moment, stdout=out)
        found = re.search(r"into (\S+): (\d+) tables, (\d+) rows", out.getvalue())
        assert found, out.getvalue()
        port = cluster.start_restored(Path(found[1]))
        assert cluster.query("SELECT name FROM probe", port=port) == [("before",)]

        # The same repository with the pass left out of the configuration: pgBackRest cannot read it.
        without = pitr_root / "without-pass.conf"
        without.write_text(
            "".join(line + "\n" for line in cluster.config.read_text().splitlines() if "cipher" not in line)
        )
        if OS_USER:
            shutil.chown(without, OS_USER, OS_USER)
        with pytest.raises(PitrError):
            PgBackRest(stanza=STANZA, config=without, os_user=OS_USER, timeout=120).backup_sets()
    finally:
        _stop(cluster)
