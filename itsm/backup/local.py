"""The local store: BACKUP_DIR/<kind>/<file>. Archives are written as `.partial`, synced, hashed, then renamed,
so a file with a final name is always complete."""

from __future__ import annotations

import logging
from pathlib import Path

from itsm.backup.base import fsync_directory, fsync_file, sha256_of

logger = logging.getLogger(__name__)

PARTIAL = ".partial"


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, relative: str) -> Path:
        return self.root / relative

    def partial(self, relative: str) -> Path:
        path = self.path(relative + PARTIAL)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def work_dir(self) -> Path:
        """A directory on the same disk for temporary files (downloads, scratch copies)."""
        path = self.root / ".tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def commit(self, relative: str) -> tuple[str, int]:
        """Make the partial file durable under its final name; returns its SHA-256 and size."""
        partial, final = self.partial(relative), self.path(relative)
        fsync_file(partial)
        sha256, size = sha256_of(partial)
        partial.replace(final)
        fsync_directory(final.parent)
        return sha256, size

    def remove_partials(self, backup_id: int) -> list[Path]:
        """Delete what a crashed attempt at this backup left behind."""
        removed = []
        for path in self.root.glob(f"*/backup_*_{backup_id}.*{PARTIAL}"):
            path.unlink(missing_ok=True)
            removed.append(path)
        return removed

    def delete(self, relative: str) -> bool:
        path = self.path(relative)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed
