"""What every dumper and storage shares: errors, checksums, file naming and child processes that die with us."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

CHUNK = 1024 * 1024

# Receives one line of progress for a person watching (the `backup` command) or for the log.
Progress = Callable[[str], None]


def no_progress(message: str) -> None:
    """The default progress sink: say nothing."""


class BackupError(Exception):
    """A backup or restore step failed in a way that retrying right away will not fix."""


class VerificationFailed(BackupError):
    """The archive is damaged, or a restore of it does not match its manifest."""

    def __init__(self, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.detail = detail or {}


class StorageUnavailable(Exception):
    """The offsite store could not be reached or refused a request: a transient error, retried with backoff."""


class Dumper(Protocol):
    """One kind of backup: writes an archive with its manifest, and proves an archive against a manifest."""

    extension: str

    def dump(self, target: Path, *, progress: Progress) -> dict[str, Any]: ...

    def verify(self, archive: Path, manifest: dict[str, Any], *, label: str, progress: Progress) -> dict[str, Any]: ...


def backup_file_name(*, started_at: datetime, kind: str, tier: str, backup_id: int, extension: str) -> str:
    """The manual's naming, `backup_YYYYmmdd_HHMMSS`, plus what tells two backups of the same second apart."""
    return f"backup_{started_at:%Y%m%d_%H%M%S}_{kind}_{tier}_{backup_id}{extension}"


def sha256_of(path: Path) -> tuple[str, int]:
    """The SHA-256 (hex) and size of a file, read in full."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _die_with_parent() -> None:
    # A worker killed with SIGKILL cannot stop its children: ask the kernel to do it (Linux only).
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


class Child:
    """A child process (pg_dump, pg_restore, redis-server) that dies when this process dies. Its stderr goes to a
    temporary file, so a chatty child never blocks on a full pipe while we do other work."""

    def __init__(self, command: list[str], *, env: dict[str, str] | None = None, stdout: IO[bytes] | None = None):
        self.command = command
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(  # noqa: S603  (our own arguments to pg_dump, pg_restore, redis-server)
            command,
            env=env,
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()

    def wait(self, *, what: str, timeout: float | None = None) -> str:
        """Wait for the end; a non-zero exit is a BackupError with the end of stderr. Returns stderr."""
        try:
            returncode = self.process.wait(timeout=timeout)
            text = self.stderr_text()
        finally:
            self.stop()
        if returncode != 0:
            raise BackupError(f"{what} failed (exit {returncode}): {text[-1500:] or 'no message'}")
        return text

    def stop(self) -> None:
        """Kill the child if it still runs (after an error or a time limit) and reap it."""
        if self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        self._stderr.close()


def run_child(command: list[str], *, env: dict[str, str] | None = None, what: str, timeout: float | None = None) -> str:
    """Run a child process to its end; a non-zero exit, or running past `timeout` seconds, is a BackupError."""
    child = Child(command, env=env)
    try:
        return child.wait(what=what, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} did not finish within {timeout:.0f} s and was stopped") from None


@contextlib.contextmanager
def removed_on_error(path: Path) -> Iterator[Path]:
    """Yield `path`; delete the file if the block raises, so no half-written archive is left behind."""
    try:
        yield path
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def compare_tables(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Differences between two {table: {"rows": n, "hash": h}} maps, as sentences (empty when equal)."""
    problems: list[str] = []
    for table in sorted(set(expected) - set(actual)):
        problems.append(f"table {table} is missing from the restore")
    for table in sorted(set(actual) - set(expected)):
        problems.append(f"table {table} is in the restore but not in the manifest")
    for table in sorted(set(expected) & set(actual)):
        want, got = expected[table], actual[table]
        if want.get("rows") != got.get("rows"):
            problems.append(f"table {table}: {got.get('rows')} rows restored, {want.get('rows')} in the manifest")
        elif want.get("hash") != got.get("hash"):
            problems.append(f"table {table}: content hash differs from the manifest")
    return problems
