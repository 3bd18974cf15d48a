"""Media files: a tar.gz of MEDIA_ROOT. The manifest holds the file count, the bytes and a tree hash (the sum of
per-file SHA-256 values, first 64 bits, salted with the path), computed while the files are read into the archive;
verification reads the whole archive back and recomputes them."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import time
from pathlib import Path
from typing import IO, Any

from itsm.backup.base import CHUNK, BackupError, Progress, VerificationFailed


class _HashingReader:
    """Hands a file to tarfile and hashes what tarfile reads, so each file is read once."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


class Tree:
    """Count, bytes and an order-independent hash of a set of (path, content hash) pairs."""

    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0
        self.total = 0

    def add(self, path: str, size: int, sha256: str) -> None:
        entry = hashlib.sha256(f"{path}\0{sha256}".encode()).digest()
        self.files += 1
        self.bytes += size
        self.total = (self.total + int.from_bytes(entry[:8], "big")) % (1 << 64)

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "bytes": self.bytes, "tree_hash": f"{self.total:016x}"}


class MediaDumper:
    """The media kind: every regular file under MEDIA_ROOT (symbolic links and special files are skipped)."""

    extension = ".tar.gz"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def dump(self, target: Path, *, progress: Progress) -> dict[str, Any]:
        tree = Tree()
        skipped = 0
        with tarfile.open(target, "w:gz", compresslevel=6) as archive:
            if self.root.is_dir():
                for path in sorted(self.root.rglob("*")):
                    if path.is_symlink() or not path.is_file():
                        skipped += int(not path.is_dir())
                        continue
                    name = path.relative_to(self.root).as_posix()
                    info = archive.gettarinfo(str(path), arcname=name)
                    with path.open("rb") as handle:
                        reader = _HashingReader(handle)
                        archive.addfile(info, reader)
                    tree.add(name, info.size, reader.digest.hexdigest())
        progress(f"media: {tree.files} files, {tree.bytes} bytes")
        return {"format": "tar-gzip", **tree.as_dict(), "skipped": skipped}

    @staticmethod
    def read_tree(archive: Path) -> Tree:
        tree = Tree()
        try:
            with tarfile.open(archive, "r:gz") as packed:
                for member in packed:
                    if not member.isfile():
                        continue
                    handle = packed.extractfile(member)
                    if handle is None:
                        continue
                    digest = hashlib.sha256()
                    while chunk := handle.read(CHUNK):
                        digest.update(chunk)
                    tree.add(member.name, member.size, digest.hexdigest())
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise VerificationFailed(f"the archive cannot be read to its end: {exc}") from exc
        return tree

    def verify(self, archive: Path, manifest: dict[str, Any], *, label: str, progress: Progress) -> dict[str, Any]:
        started = time.perf_counter()
        found = self.read_tree(archive).as_dict()
        expected = {key: manifest.get(key) for key in ("files", "bytes", "tree_hash")}
        if found != expected:
            raise VerificationFailed(f"the archive does not match its manifest: found {found}, expected {expected}")
        progress(f"archive matches the manifest: {found['files']} files, {found['bytes']} bytes")
        return {**found, "restore_seconds": round(time.perf_counter() - started, 3)}

    def restore_live(self, archive: Path, manifest: dict[str, Any] | None, *, keep_previous: Path) -> None:
        """Unpack next to MEDIA_ROOT, check, then swap directories; the old one is kept as `keep_previous`."""
        staging = self.root.with_name(f"{self.root.name}.restoring")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            with tarfile.open(archive, "r:gz") as packed:
                packed.extractall(staging, filter="data")
            if manifest:
                tree = Tree()
                for path in sorted(staging.rglob("*")):
                    if path.is_file():
                        digest = hashlib.sha256(path.read_bytes()).hexdigest()
                        tree.add(path.relative_to(staging).as_posix(), path.stat().st_size, digest)
                if tree.as_dict()["tree_hash"] != manifest.get("tree_hash"):
                    raise VerificationFailed("the unpacked files do not match the manifest")
        except (tarfile.TarError, OSError, EOFError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise BackupError(f"cannot unpack the media archive: {exc}") from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if self.root.exists():
            self.root.rename(keep_previous)
        staging.rename(self.root)
