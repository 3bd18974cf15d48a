"""Point-in-time recovery is tested against the real things: a throw-away PostgreSQL 15 cluster (initdb) on a free
loopback port, archiving every WAL segment with `pgbackrest archive-push` into a repository on local disk (or on
moto's S3 server over TLS), and pgBackRest's own backup and restore. Each server is started by the test and
stopped by the PID it started; its directory is removed after."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
import urllib3

from itsm.backup.pgbackrest import ARCHIVE_TIMEOUT_SECONDS, PgBackRest, postgresql_settings, render_config
from tests.system.processes import (
    BIN,
    PG_BIN,
    Managed,
    base_env,
    free_port,
    postgres_initdb,
    postgres_owned_dir,
    wait_for_postgres,
)

STANZA = "itsm"
PGBACKREST = shutil.which("pgbackrest")
OS_USER = "postgres" if os.geteuid() == 0 else ""

needs_pgbackrest = pytest.mark.skipif(
    PGBACKREST is None or not (PG_BIN / "initdb").exists(), reason="pgbackrest or PostgreSQL's initdb is missing"
)


@dataclass
class ArchivedCluster:
    """A primary that archives through pgBackRest, its repository and the settings pointing the platform at it."""

    root: Path
    port: int
    config: Path
    server: Managed | None = None
    restored: list[Managed] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def query(self, statement: str, params: tuple[Any, ...] = (), *, port: int | None = None) -> list[tuple[Any, ...]]:
        connection = psycopg2.connect(host="127.0.0.1", port=port or self.port, user="postgres", dbname="postgres")
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    @property
    def pgbackrest(self) -> PgBackRest:
        return PgBackRest(stanza=STANZA, config=self.config, os_user=OS_USER, timeout=300)

    def switch_and_wait_archived(self, timeout: float = 60) -> None:
        """Close the current WAL segment and wait until it is in the repository (for tests that do not measure
        the RPO)."""
        segment = self.query("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0]
        self.query("SELECT pg_switch_wal()")
        deadline = time.monotonic() + timeout
        while self.query("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")[0][0] < segment:
            assert time.monotonic() < deadline, f"WAL segment {segment} was not archived within {timeout} s"
            time.sleep(0.2)

    def start_restored(self, data: Path) -> int:
        """Start a restored data directory as the test's own server on a free port; returns the port."""
        port = free_port()
        command = [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data)]
        command += ["-c", "listen_addresses=127.0.0.1", "-c", "archive_mode=off"]
        server = Managed(command, self.root / f"restored-{port}.log", **_as_postgres())
        self.restored.append(server.start())
        wait_for_postgres(port, timeout=60)
        return port


def _as_postgres() -> dict[str, Any]:
    return {"user": "postgres", "group": "postgres"} if OS_USER else {}


def start_archived_cluster(root: Path, *, s3: dict[str, str] | None = None, cipher_pass: str = "") -> ArchivedCluster:
    port = free_port()
    config = root / "pgbackrest.conf"
    text = render_config(
        stanza=STANZA,
        pg_path=root / "data",
        pg_port=port,
        pg_socket_path=str(root),
        repo_path=str(root / "repo") if s3 is None else "/itsm-pgbackrest",
        s3=s3,
        log_path=str(root / "log"),
        lock_path=str(root / "lock"),
        spool_path=str(root / "spool"),
        cipher_pass=cipher_pass,
    )
    config.write_text(text)
    if OS_USER:
        shutil.chown(config, OS_USER, OS_USER)
    cluster = ArchivedCluster(root=root, port=port, config=config)
    postgres_initdb(root / "data", root / "initdb.log")
    command = [str(PG_BIN / "postgres"), "-D", str(root / "data"), "-p", str(port), "-k", str(root)]
    settings = {
        "listen_addresses": "127.0.0.1",
        "fsync": "off",
        "shared_buffers": "16MB",
        **postgresql_settings(config=config, stanza=STANZA),
    }
    for name, value in settings.items():
        command += ["-c", f"{name}={value}"]
    cluster.server = Managed(command, root / "postgres.log", **_as_postgres()).start()
    wait_for_postgres(port, timeout=60)
    cluster.pgbackrest.stanza_create()
    backup = cluster.pgbackrest.backup("full")
    # pgBackRest records whole seconds: a moment to restore to must be in a later second than the backup's end.
    while cluster.query("SELECT clock_timestamp() > %s + interval '1.1 s'", (backup.stopped_at,))[0][0] is False:
        time.sleep(0.1)
    return cluster


@pytest.fixture
def pitr_root() -> Iterator[Path]:
    root = postgres_owned_dir("itsm-pitr-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _configure(settings: Any, cluster: ArchivedCluster) -> None:
    settings.BACKUP_PITR_STANZA = STANZA
    settings.BACKUP_PITR_CONFIG = str(cluster.config)
    settings.BACKUP_PITR_OS_USER = OS_USER
    settings.BACKUP_PITR_DATABASE_URL = cluster.url
    settings.BACKUP_PITR_RESTORE_DIR = cluster.root / "restores"
    # Long enough for archive_timeout (30 s) on a slow, shared machine; the drill returns as soon as it is archived.
    settings.BACKUP_PITR_DRILL_WAIT_SECONDS = 4 * ARCHIVE_TIMEOUT_SECONDS
    settings.BACKUP_PITR_RESTORE_TIMEOUT_SECONDS = 300


def _stop(cluster: ArchivedCluster) -> None:
    for server in [*cluster.restored, cluster.server]:
        if server is not None:
            server.stop(signal.SIGINT, timeout=60)
            server.close()


@pytest.fixture
def archived(settings: Any, pitr_root: Path) -> Iterator[ArchivedCluster]:
    """A primary archiving into a repository on local disk, with one full backup; the platform pointed at it."""
    cluster = start_archived_cluster(pitr_root)
    _configure(settings, cluster)
    try:
        yield cluster
    finally:
        _stop(cluster)


# moto's server over TLS, ending each connection with a TLS close_notify: werkzeug just closes the socket, which
# pgBackRest's OpenSSL 3 reports as "TLS error ... unexpected eof while reading".
MOTO_TLS = """
import socketserver, ssl
plain_shutdown = socketserver.TCPServer.shutdown_request
def shutdown_request(self, request):
    if isinstance(request, ssl.SSLSocket):
        try:
            request.settimeout(2)
            request.unwrap()
        except (OSError, ValueError):
            pass
    plain_shutdown(self, request)
socketserver.TCPServer.shutdown_request = shutdown_request
from moto import server
server.main(["-H", "127.0.0.1", "-p", "{port}", "--ssl"])
"""


@pytest.fixture
def moto_tls(pitr_root: Path) -> Iterator[str]:
    """moto's S3 server over TLS (pgBackRest speaks only HTTPS to S3) on a free loopback port, stopped by PID."""
    port = free_port()
    command = [str(BIN / "python"), "-c", MOTO_TLS.format(port=port)]
    server = Managed(command, pitr_root / "moto.log", env=base_env()).start()
    url = f"https://127.0.0.1:{port}"
    context = ssl._create_unverified_context()  # noqa: S323 - moto's self-signed certificate, loopback only
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1, context=context):
                break
        except OSError:
            assert time.monotonic() < deadline, "moto did not start"
            time.sleep(0.2)
    try:
        yield url
    finally:
        server.close()


@pytest.fixture
def archived_on_s3(settings: Any, pitr_root: Path, moto_tls: str) -> Iterator[ArchivedCluster]:
    """The same primary with its repository in a bucket of moto's S3 server."""
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # moto's self-signed certificate
    client = boto3.client(
        "s3",
        endpoint_url=moto_tls,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        verify=False,
    )
    client.create_bucket(Bucket="itsm-pitr")
    port = moto_tls.rsplit(":", 1)[1]
    s3 = {
        "bucket": "itsm-pitr",
        "endpoint": "127.0.0.1",
        "port": port,
        "region": "us-east-1",
        "key": "testing",
        "secret": "testing",
        "uri_style": "path",
        "verify_tls": "n",
    }
    cluster = start_archived_cluster(pitr_root, s3=s3)
    _configure(settings, cluster)
    try:
        yield cluster
    finally:
        _stop(cluster)
