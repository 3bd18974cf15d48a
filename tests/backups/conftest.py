"""Backups are tested against the real things: PostgreSQL with pg_dump and pg_restore, Redis, and moto's S3 server
started as a process on a free loopback port. Every test gets its own BACKUP_DIR, var directory and media root."""

from __future__ import annotations

import secrets
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from django.db import connection
from prometheus_client import REGISTRY

from tests.system.processes import BIN, base_env, free_port, started

S3_KEYS = {"BACKUP_S3_ACCESS_KEY_ID": "testing", "BACKUP_S3_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(autouse=True)
def _backup_paths(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_S3_BUCKET = ""


def database_url(name: str | None = None) -> str:
    """The test database (or another one on the same server) as a URL, for child processes."""
    conf = connection.settings_dict
    password = f":{quote(conf['PASSWORD'])}" if conf.get("PASSWORD") else ""
    port = f":{conf['PORT']}" if conf.get("PORT") else ""
    return f"postgres://{quote(conf['USER'])}{password}@{conf['HOST'] or '127.0.0.1'}{port}/{name or conf['NAME']}"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class MotoServer:
    """moto's S3 server as a child process; stop() and start() it again on the same port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.url = f"http://127.0.0.1:{self.port}"
        self._context: Any = None

    def start(self) -> None:
        command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]
        self._context = started(command, base_env(), self.log_dir / f"moto-{time.monotonic_ns()}.log")
        self._context.__enter__()
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def s3(settings: Any, moto: MotoServer) -> Any:
    """A fresh bucket in moto, configured as the backups' S3; returns a boto3 client for assertions."""
    bucket = f"itsm-backups-{secrets.token_hex(4)}"
    client = s3_client(moto.url)
    client.create_bucket(Bucket=bucket)
    settings.BACKUP_S3_BUCKET = bucket
    settings.BACKUP_S3_ENDPOINT_URL = moto.url
    settings.BACKUP_S3_REGION = "us-east-1"
    settings.BACKUP_S3_ACCESS_KEY_ID = S3_KEYS["BACKUP_S3_ACCESS_KEY_ID"]
    settings.BACKUP_S3_SECRET_ACCESS_KEY = S3_KEYS["BACKUP_S3_SECRET_ACCESS_KEY"]
    client.itsm_bucket = bucket
    return client


def seed_tickets(count: int, *, title: str = "Seeded ticket") -> None:
    """`count` tickets in one statement (generate_series), for data that takes pg_dump a moment."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
            "is_active, date_joined) VALUES ('!', false, %s, '', '', '', false, true, now()) RETURNING id",
            [f"seed-{secrets.token_hex(3)}"],
        )
        user_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO itsm_ticket (title, description, status, priority, category, requester_id, created_at, "
            "updated_at, sla_status, version) "
            "SELECT %s || ' ' || g, repeat(md5(g::text), 4), 'new', 'medium', 'seed', %s, now(), now(), 'ok', 1 "
            "FROM generate_series(1, %s) AS g",
            [title, user_id, count],
        )


@pytest.fixture
def drop_databases() -> Iterator[Callable[[str], None]]:
    """Register databases to drop after the test (restores keep the replaced database)."""
    names: list[str] = []
    yield names.append
    from itsm.backup.configured import postgres_dumper

    for name in names:
        postgres_dumper().drop_database(name)
