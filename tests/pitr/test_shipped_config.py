"""The pgBackRest wiring that docker-compose.yml ships, run on loopback: the database side's configuration
(docker/postgres/pgbackrest.conf) with the postgres service's archive settings, its TLS server started by the
pgbackrest service's own script (docker/postgres/pgbackrest-server.sh, which creates the stanza), and the workers'
configuration (docker/pgbackrest.conf) as the platform's BACKUP_PITR_CONFIG: a full backup taken through the TLS
server and a PITR drill, with the repository in moto's S3 encrypted by the cipher pass, all given as the
PGBACKREST_* variables compose sets.

Only what cannot be the same outside a container changes: paths move under the test's directory, ports are free
ones, and the host name `pgbackrest` becomes localhost (the certificate names both). S3 is moto's over TLS on
loopback (path-style, its self-signed certificate not verified).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from io import StringIO
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3
import yaml
from django.core.management import call_command

from itsm.models import RecoveryDrill
from itsm.services.pitr import pitr_backup
from tests.pitr.conftest import OS_USER, PGBACKREST, needs_pgbackrest
from tests.system.processes import PG_BIN, ROOT, Managed, free_port, postgres_initdb, wait_for_postgres

pytestmark = [needs_pgbackrest, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CIPHER_PASS = "a-test-cipher-pass-of-some-length"


def compose_postgres_settings() -> dict[str, str]:
    """The `-c name=value` settings of the postgres service's command."""
    command = COMPOSE["services"]["postgres"]["command"]
    return dict(command[i + 1].split("=", 1) for i, word in enumerate(command) if word == "-c")


CERTIFICATES_BLOCK = "mkdir -p secrets/pgbackrest && cd secrets/pgbackrest"


def certificates(work: Path) -> Path:
    """The TLS files made by the shell block of docs/operations.md, run as written in `work`; returns their
    directory. The block gives the keys to the containers' users (999, 10001); here both ends run as postgres."""
    text = (ROOT / "docs" / "operations.md").read_text()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", text, re.S) if b.startswith(CERTIFICATES_BLOCK))
    subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, check=True, capture_output=True)
    tls = work / "secrets" / "pgbackrest"
    for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key"):
        assert (tls / name).is_file(), name
        if OS_USER:
            shutil.chown(tls / name, OS_USER, OS_USER)
    return tls


def localized(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in the shipped file"
        text = text.replace(old, new)
    return text


def s3_environment(moto_tls: str) -> dict[str, str]:
    """The PGBACKREST_* variables of x-pgbackrest-env in docker-compose.yml, with moto's values; plus what only
    moto needs (its port, path-style addressing, its self-signed certificate)."""
    names = set(COMPOSE["x-pgbackrest-env"])
    values = {
        "PGBACKREST_REPO1_S3_BUCKET": "itsm-pgbackrest",
        "PGBACKREST_REPO1_S3_ENDPOINT": "127.0.0.1",
        "PGBACKREST_REPO1_S3_REGION": "us-east-1",
        "PGBACKREST_REPO1_S3_KEY": "testing",
        "PGBACKREST_REPO1_S3_KEY_SECRET": "testing",
        "PGBACKREST_REPO1_CIPHER_PASS": CIPHER_PASS,
    }
    assert names == set(values), names
    return {
        **values,
        "PGBACKREST_REPO1_STORAGE_PORT": moto_tls.rsplit(":", 1)[1],
        "PGBACKREST_REPO1_S3_URI_STYLE": "path",
        "PGBACKREST_REPO1_STORAGE_VERIFY_TLS": "n",
    }


def test_the_shipped_configuration_archives_backs_up_through_tls_and_passes_a_drill(
    settings: Any, pitr_root: Path, moto_tls: str, monkeypatch: pytest.MonkeyPatch
):
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    boto3.client(
        "s3",
        endpoint_url=moto_tls,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        verify=False,
    ).create_bucket(Bucket="itsm-pgbackrest")
    s3_env = s3_environment(moto_tls)
    tls = str(certificates(pitr_root))
    for directory in ("db-log", "db-spool", "db-lock", "worker"):
        (pitr_root / directory).mkdir()
        if OS_USER:
            shutil.chown(pitr_root / directory, OS_USER, OS_USER)
    pg_port, tls_port = free_port(), free_port()

    db_config = pitr_root / "db-pgbackrest.conf"
    db_config.write_text(
        localized(
            (ROOT / "docker" / "postgres" / "pgbackrest.conf").read_text(),
            {
                "/var/log/pgbackrest": str(pitr_root / "db-log"),
                "/var/spool/pgbackrest": str(pitr_root / "db-spool"),
                "lock-path=/tmp/pgbackrest": f"lock-path={pitr_root / 'db-lock'}",
                "/etc/pgbackrest/tls": tls,
                "tls-server-address=*": "tls-server-address=127.0.0.1",
                "tls-server-port=8432": f"tls-server-port={tls_port}",
                "/var/lib/postgresql/data": str(pitr_root / "data"),
                "/var/run/postgresql": str(pitr_root),
                "pg1-port=5432": f"pg1-port={pg_port}",
            },
        )
    )
    worker_config = pitr_root / "worker-pgbackrest.conf"
    worker_config.write_text(
        localized(
            (ROOT / "docker" / "pgbackrest.conf").read_text(),
            {
                "/tmp/pgbackrest": str(pitr_root / "worker"),  # noqa: S108 - the shipped file's path, replaced
                "pg1-host=pgbackrest": "pg1-host=localhost",
                "pg1-host-port=8432": f"pg1-host-port={tls_port}",
                "/etc/pgbackrest/tls": tls,
                "/var/lib/postgresql/data": str(pitr_root / "data"),
                "/var/run/postgresql": str(pitr_root),
                "pg1-port=5432": f"pg1-port={pg_port}",
            },
        )
    )
    for path in (db_config, worker_config):
        if OS_USER:
            shutil.chown(path, OS_USER, OS_USER)

    # The postgres service: its command's settings, archive_command pointed at the localized file.
    postgres_initdb(pitr_root / "data", pitr_root / "initdb.log")
    archiving = compose_postgres_settings()
    archiving["archive_command"] = archiving["archive_command"].replace(
        "/etc/pgbackrest/pgbackrest.conf", str(db_config)
    )
    archiving.pop("shared_preload_libraries")
    command = [str(PG_BIN / "postgres"), "-D", str(pitr_root / "data"), "-p", str(pg_port), "-k", str(pitr_root)]
    for name, value in {"listen_addresses": "127.0.0.1", "fsync": "off", **archiving}.items():
        command += ["-c", f"{name}={value}"]
    as_postgres: dict[str, Any] = {"user": "postgres", "group": "postgres"} if OS_USER else {}
    base = {k: v for k, v in os.environ.items() if not k.startswith("PGBACKREST_")}
    postgres = Managed(command, pitr_root / "postgres.log", env={**base, **s3_env}, **as_postgres).start()
    server_env = {
        **base,
        **s3_env,
        **{k: str(v) for k, v in COMPOSE["services"]["pgbackrest"]["environment"].items() if k not in s3_env},
        "PGBACKREST_CONFIG": str(db_config),
        "PGHOST": str(pitr_root),
        "PGPORT": str(pg_port),
        "HOME": str(pitr_root),
    }
    server_script = [shutil.which("sh") or "/bin/sh", str(ROOT / "docker" / "postgres" / "pgbackrest-server.sh")]
    server = Managed(server_script, pitr_root / "pgbackrest-server.log", env=server_env, **as_postgres)
    try:
        wait_for_postgres(pg_port, timeout=60)
        server.start()
        deadline = time.monotonic() + 120
        while "serving TLS" not in (pitr_root / "pgbackrest-server.log").read_text():
            assert server.process is not None
            assert server.process.poll() is None, (pitr_root / "pgbackrest-server.log").read_text()
            assert time.monotonic() < deadline, "the stanza was not created within 120 s"
            time.sleep(0.2)

        # The workers: the app's settings as compose sets them, the localized workers' file.
        app_env = COMPOSE["x-app"]["environment"]
        settings.BACKUP_PITR_STANZA = app_env["BACKUP_PITR_STANZA"]
        settings.BACKUP_PITR_CONFIG = str(worker_config)
        settings.BACKUP_PITR_BIN = PGBACKREST
        settings.BACKUP_PITR_OS_USER = OS_USER
        settings.BACKUP_PITR_DATABASE_URL = f"postgres://postgres@127.0.0.1:{pg_port}/postgres"
        settings.BACKUP_PITR_RESTORE_DIR = pitr_root / "restores"
        settings.BACKUP_PITR_DRILL_WAIT_SECONDS = 120
        settings.BACKUP_PITR_RESTORE_TIMEOUT_SECONDS = 300
        for name, value in s3_env.items():
            monkeypatch.setenv(name, value)

        backup = pitr_backup(kind="full")
        assert re.fullmatch(r"\d{8}-\d{6}F", backup["label"]), backup
        out = StringIO()
        call_command("pitr_drill", stdout=out)
        drill = RecoveryDrill.objects.get()
        assert drill.status == RecoveryDrill.Status.SUCCEEDED, drill.error
        assert "passed" in out.getvalue()
    finally:
        server.stop(signal.SIGTERM, timeout=30)
        server.close()
        postgres.stop(signal.SIGINT, timeout=60)
        postgres.close()
