"""pgBackRest as a child process: continuous WAL archiving, weekly full and daily differential backups, and
point-in-time restores of the cluster that holds the platform's database (docs/runbooks/backup-restore.md).

The platform runs `pgbackrest backup`, `check`, `info` and `restore` with the same configuration file as the
PostgreSQL server's `archive_command` (`pgbackrest archive-push %p`); `render_config` writes such a file."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2

from itsm.backup.base import BackupError
from itsm.backup.retention import KEEP

# The manual's horizons (itsm/backup/retention.py): any moment of the last 30 days (the daily tier) can be
# restored to the second. Full backups are kept by time, so the oldest one kept is at least 30 days old and WAL
# from it on is kept; a weekly full then means 30 to 37 days of history. The 12 weeks and 12 months of the weekly
# and monthly tiers stay with the logical pg_dump backups, which are also what a new major version restores.
RETENTION_FULL_DAYS = KEEP["daily"].days
# Differential backups of the kept fulls: one a day for 37 days.
RETENTION_DIFF = 37
# The documented archive_timeout: WAL is switched and archived at least this often while anything is written,
# so at most this many seconds of committed data are only on the server's disk (the RPO).
ARCHIVE_TIMEOUT_SECONDS = 30
BACKUP_TYPES = ("full", "diff", "incr")
WAL_SEGMENT_NAME_LENGTH = 24


class PitrError(BackupError):
    """pgBackRest, a restored cluster or the drill failed; the message says what, in one line."""


class PitrNotConfigured(PitrError):
    """BACKUP_PITR_STANZA is not set."""


def run_as(os_user: str) -> dict[str, Any]:
    """subprocess keyword arguments that run a child as `os_user` (when we are root), with its HOME."""
    if not os_user:
        return {}
    try:
        entry = pwd.getpwnam(os_user)
    except KeyError:
        raise PitrError(f"BACKUP_PITR_OS_USER {os_user!r} is not a user of this machine") from None
    env = {**os.environ, "HOME": entry.pw_dir, "USER": os_user}
    return {"user": entry.pw_uid, "group": entry.pw_gid, "env": env}


def chown_for(path: Path, os_user: str) -> None:
    if os_user:
        entry = pwd.getpwnam(os_user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass(frozen=True)
class BackupSet:
    """One pgBackRest backup as `info` lists it."""

    label: str
    type: str
    started_at: datetime
    stopped_at: datetime
    size: int

    @classmethod
    def from_info(cls, entry: dict[str, Any]) -> BackupSet:
        stamps = entry["timestamp"]
        return cls(
            label=entry["label"],
            type=entry["type"],
            started_at=datetime.fromtimestamp(stamps["start"], UTC),
            stopped_at=datetime.fromtimestamp(stamps["stop"], UTC),
            size=int(entry.get("info", {}).get("repository", {}).get("size", 0)),
        )


# `pgbackrest info` status codes of a stanza that can be used: ok, and no backup yet.
INFO_USABLE = (0, 2)


@dataclass(frozen=True)
class PgBackRest:
    """The `pgbackrest` command for one stanza and configuration file, run as `os_user` when that is set."""

    stanza: str
    config: Path
    binary: str = "pgbackrest"
    os_user: str = ""
    timeout: float = 3600

    def run(self, *args: str, timeout: float | None = None) -> str:
        command = [self.binary, f"--config={self.config}", f"--stanza={self.stanza}", *args]
        try:
            done = subprocess.run(  # noqa: S603 - our binary, our arguments
                command,
                capture_output=True,
                text=True,
                errors="replace",  # a repository read with the wrong cipher pass echoes binary in its messages
                timeout=timeout or self.timeout,
                **run_as(self.os_user),
            )
        except FileNotFoundError:
            raise PitrError(f"{self.binary} is not installed (apt-get install pgbackrest)") from None
        except subprocess.TimeoutExpired:
            raise PitrError(f"pgbackrest {args[-1]} did not finish within {timeout or self.timeout:.0f} s") from None
        if done.returncode != 0:
            raise PitrError(f"pgbackrest {args[-1]} failed: {_error_line(done.stdout + done.stderr, done.returncode)}")
        return done.stdout

    def info(self) -> dict[str, Any]:
        output = self.run("--output=json", "info", timeout=120)
        try:
            # strict=False: a repository read with the wrong cipher pass puts control characters in its message.
            stanzas = json.loads(output, strict=False)
        except ValueError:
            raise PitrError(f"pgbackrest info printed no JSON: {output[:200]!r}") from None
        found = next((s for s in stanzas if s.get("name") == self.stanza), None)
        if found is None:
            raise PitrError(f"pgbackrest info does not know the stanza {self.stanza!r}")
        status = found.get("status") or {}
        # 0: ok, 2: no backup yet; anything else (a missing stanza, a repository it cannot read) is an error.
        if status.get("code", 0) not in INFO_USABLE:
            message = str(status.get("message", "")).encode("ascii", "replace").decode()
            raise PitrError(f"pgbackrest info: stanza {self.stanza!r}: {message} (status {status.get('code')})")
        return dict(found)

    def backup_sets(self) -> list[BackupSet]:
        return sorted((BackupSet.from_info(e) for e in self.info().get("backup", [])), key=lambda b: b.stopped_at)

    def check(self, *, timeout: float = 60) -> None:
        """`pgbackrest check`: the repository is reachable and a WAL segment switched now gets archived."""
        self.run(f"--archive-timeout={max(1, int(timeout) - 5)}", "check", timeout=timeout)

    def stanza_create(self) -> None:
        self.run("stanza-create", timeout=120)

    def backup(self, kind: str) -> BackupSet:
        if kind not in BACKUP_TYPES:
            raise PitrError(f"unknown pgBackRest backup type {kind!r}: {', '.join(BACKUP_TYPES)}")
        self.run(f"--type={kind}", "backup")
        return self.backup_sets()[-1]

    def restore(self, *, target: datetime, pg_path: Path) -> None:
        """Restore into the empty directory `pg_path`, set to replay WAL up to `target` and then promote, with
        archiving off so the restored cluster never pushes WAL into the repository of the live one."""
        self.run(
            f"--pg1-path={pg_path}",
            # Where the repository host reaches the database through pg1-host (docker/pgbackrest.conf), the restore
            # is still local: into `pg_path` on this machine.
            "--reset-pg1-host",
            "--type=time",
            f"--target={target_text(target)}",
            "--target-action=promote",
            "--archive-mode=off",
            "restore",
        )


def target_text(moment: datetime) -> str:
    """A recovery_target_time PostgreSQL parses the same whatever its TimeZone: UTC with microseconds."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}+00"


def _error_line(output: str, code: int) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR:" in line]
    return (errors or lines or [f"exit status {code}"])[-1][:500]


def render_config(
    *,
    stanza: str,
    pg_path: Path,
    pg_port: int = 5432,
    pg_socket_path: str = "",
    pg_user: str = "postgres",
    repo_path: str = "/var/lib/pgbackrest",
    s3: dict[str, str] | None = None,
    log_path: str = "/var/log/pgbackrest",
    lock_path: str = "/tmp/pgbackrest",  # noqa: S108 - pgBackRest's own default
    spool_path: str = "/var/spool/pgbackrest",
    cipher_pass: str = "",
) -> str:
    """pgbackrest.conf for one stanza: the repository on local disk (`repo_path`) or in S3 (`s3` with bucket,
    endpoint, region, key, secret and optionally port and verify_tls), with the manual's retention; encrypted at
    rest (AES-256) with `cipher_pass` when given. In production leave the pass out of the file and give it to every
    process that runs pgBackRest as PGBACKREST_REPO1_CIPHER_PASS, from a secret (pgBackRest reads its options from
    PGBACKREST_* variables too)."""
    lines = [
        "[global]",
        f"repo1-path={repo_path}",
        "repo1-retention-full-type=time",
        f"repo1-retention-full={RETENTION_FULL_DAYS}",
        f"repo1-retention-diff={RETENTION_DIFF}",
        "compress-type=gz",
        "start-fast=y",
        "archive-async=n",
        f"log-path={log_path}",
        f"lock-path={lock_path}",
        f"spool-path={spool_path}",
        "log-level-console=warn",
        "log-level-file=info",
    ]
    if cipher_pass:
        lines += ["repo1-cipher-type=aes-256-cbc", f"repo1-cipher-pass={cipher_pass}"]
    if s3:
        lines += [
            "repo1-type=s3",
            f"repo1-s3-bucket={s3['bucket']}",
            f"repo1-s3-endpoint={s3['endpoint']}",
            f"repo1-s3-region={s3['region']}",
            f"repo1-s3-key={s3['key']}",
            f"repo1-s3-key-secret={s3['secret']}",
            f"repo1-s3-uri-style={s3.get('uri_style', 'host')}",
        ]
        if s3.get("port"):
            lines.append(f"repo1-storage-port={s3['port']}")
        if s3.get("verify_tls") == "n":
            lines.append("repo1-storage-verify-tls=n")
    lines += ["", f"[{stanza}]", f"pg1-path={pg_path}", f"pg1-port={pg_port}", f"pg1-user={pg_user}"]
    if pg_socket_path:
        lines.append(f"pg1-socket-path={pg_socket_path}")
    return "\n".join(lines) + "\n"


def postgresql_settings(*, config: Path, stanza: str) -> dict[str, str]:
    """The postgresql.conf lines that archive every WAL segment through pgBackRest."""
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": f"pgbackrest --config={config} --stanza={stanza} archive-push %p",
        "archive_timeout": f"{ARCHIVE_TIMEOUT_SECONDS}s",
    }


# --- the archived cluster -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchiveStatus:
    last_archived_wal: str
    last_archived_at: datetime | None
    last_failed_wal: str
    last_failed_at: datetime | None
    now: datetime

    @property
    def age_seconds(self) -> float | None:
        if self.last_archived_at is None:
            return None
        return max(0.0, (self.now - self.last_archived_at).total_seconds())

    def covers(self, segment: str) -> bool:
        """Whether WAL segment `segment` (a 24-digit name) has been archived: segments are archived in order."""
        name = self.last_archived_wal
        return len(name) == WAL_SEGMENT_NAME_LENGTH and name >= segment


def archive_status(params: dict[str, Any]) -> ArchiveStatus:
    """pg_stat_archiver of the archived cluster, with the server's clock."""
    connection = psycopg2.connect(**params)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(last_archived_wal, ''), last_archived_time, coalesce(last_failed_wal, ''), "
                "last_failed_time, clock_timestamp() FROM pg_stat_archiver"
            )
            row = cursor.fetchone()
    finally:
        connection.close()
    assert row is not None
    return ArchiveStatus(*row)
