"""SQLite (the embedded mode): SQLite's online backup API copies a consistent snapshot while the platform runs;
the manifest is read from that copy, which is then gzip-compressed. Verification decompresses into a scratch
file, runs SQLite's integrity check and compares counts and hashes with the manifest."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from itsm.backup.base import CHUNK, BackupError, Progress, VerificationFailed, compare_tables


def table_manifest(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """{"main.table": {"rows": n, "hash": h}}: the sum of each row's md5 (first 64 bits), independent of order."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "ORDER BY name"
        )
    ]
    result: dict[str, dict[str, Any]] = {}
    for name in names:
        rows, total = 0, 0
        quoted = '"' + name.replace('"', '""') + '"'
        for row in conn.execute(f"SELECT * FROM {quoted}"):  # noqa: S608  (a table name from sqlite_master)
            rows += 1
            digest = hashlib.md5(repr(row).encode(), usedforsecurity=False).digest()
            total += int.from_bytes(digest[:8], "big")
        result[f"main.{name}"] = {"rows": rows, "hash": str(total)}
    return result


def _copy(source: sqlite3.Connection, target_path: Path) -> None:
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)
    finally:
        target.close()


class SqliteDumper:
    """The database kind in the embedded mode."""

    extension = ".sqlite3.gz"

    def __init__(self, database_path: Path) -> None:
        self.database_path = Path(database_path)

    def dump(self, target: Path, *, progress: Progress) -> dict[str, Any]:
        if not self.database_path.exists():
            raise BackupError(f"the SQLite database {self.database_path} does not exist")
        with tempfile.TemporaryDirectory(dir=target.parent) as work:
            snapshot = Path(work) / "snapshot.sqlite3"
            source = sqlite3.connect(self.database_path, timeout=20)
            try:
                _copy(source, snapshot)
            finally:
                source.close()
            copy = sqlite3.connect(snapshot)
            try:
                tables = table_manifest(copy)
                version = sqlite3.sqlite_version
            finally:
                copy.close()
            progress(f"manifest: {len(tables)} tables, {sum(t['rows'] for t in tables.values())} rows")
            with snapshot.open("rb") as raw, gzip.open(target, "wb", compresslevel=6) as packed:
                shutil.copyfileobj(raw, packed, CHUNK)
        return {"format": "sqlite-gzip", "sqlite_version": version, "tables": tables}

    def decompress(self, archive: Path, target: Path) -> None:
        try:
            with gzip.open(archive, "rb") as packed, target.open("wb") as raw:
                shutil.copyfileobj(packed, raw, CHUNK)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise VerificationFailed(f"the archive does not decompress: {exc}") from exc

    def check_restored(self, path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
        conn = sqlite3.connect(path)
        try:
            try:
                integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
                tables = table_manifest(conn)
            except sqlite3.DatabaseError as exc:
                raise VerificationFailed(f"the restored database cannot be read: {exc}") from exc
        finally:
            conn.close()
        if integrity != "ok":
            raise VerificationFailed(f"SQLite integrity check failed: {integrity}")
        problems = compare_tables(manifest.get("tables", {}), tables)
        if problems:
            raise VerificationFailed(
                f"the restore does not match the manifest: {'; '.join(problems[:5])}", {"problems": problems[:50]}
            )
        return {"tables": len(tables), "rows": sum(t["rows"] for t in tables.values())}

    def verify(self, archive: Path, manifest: dict[str, Any], *, label: str, progress: Progress) -> dict[str, Any]:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=archive.parent) as work:
            scratch = Path(work) / f"scratch_{label}.sqlite3"
            progress(f"restoring into scratch file {scratch.name}")
            self.decompress(archive, scratch)
            result = self.check_restored(scratch, manifest)
        progress(f"restore matches the manifest: {result['tables']} tables, {result['rows']} rows")
        return {**result, "restore_seconds": round(time.perf_counter() - started, 3)}

    def restore_live(self, archive: Path, manifest: dict[str, Any] | None, *, keep_previous: Path) -> None:
        """Replace the live database's content through SQLite's own locking (other connections stay valid),
        after saving the current content to `keep_previous`."""
        with tempfile.TemporaryDirectory(dir=archive.parent) as work:
            scratch = Path(work) / "restore.sqlite3"
            self.decompress(archive, scratch)
            if manifest:
                self.check_restored(scratch, manifest)
            live = sqlite3.connect(self.database_path, timeout=20)
            try:
                _copy(live, keep_previous)
                restored = sqlite3.connect(scratch)
                with contextlib.closing(restored):
                    restored.backup(live)
            finally:
                live.close()
