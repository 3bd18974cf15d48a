"""Redis: an RDB snapshot fetched from the running server over the replication protocol (what `redis-cli --rdb`
does), so no access to the server's disk is needed. Verification loads the file into a scratch redis-server
on loopback (which checks the RDB's CRC64), or checks the CRC64 itself when no redis-server is installed."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import redis as redis_client
from redis.backoff import NoBackoff
from redis.retry import Retry

from itsm.backup.base import CHUNK, BackupError, Child, Progress, VerificationFailed

EOF_MARK_LENGTH = 40


def _crc64_table() -> list[int]:
    polynomial = 0x95AC9329AC4BC9B5  # CRC-64/Jones, reflected: the checksum Redis writes at the end of an RDB
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ polynomial if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64 = _crc64_table()


def crc64(data: bytes, crc: int = 0) -> int:
    table = _CRC64
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def check_rdb_file(path: Path) -> dict[str, Any]:
    """Read the whole file: the REDIS header, and the CRC64 trailer against the content (0 means disabled)."""
    size = path.stat().st_size
    if size < 9 + 8:
        raise VerificationFailed(f"the RDB file is too short ({size} bytes)")
    crc = 0
    with path.open("rb") as handle:
        header = handle.read(9)
        if not header.startswith(b"REDIS") or not header[5:].isdigit():
            raise VerificationFailed("the file is not an RDB snapshot (no REDIS header)")
        crc = crc64(header, crc)
        remaining = size - 9 - 8
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                raise VerificationFailed("the RDB file ended early")
            crc = crc64(chunk, crc)
            remaining -= len(chunk)
        stored = int.from_bytes(handle.read(8), "little")
    if stored not in (0, crc):
        raise VerificationFailed("the RDB checksum does not match its content")
    return {"rdb_version": int(header[5:]), "checksum": "disabled" if stored == 0 else "ok"}


class _Wire:
    """Just enough of the Redis protocol to authenticate and read a SYNC payload."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise BackupError(f"BACKUP_REDIS_URL must be a redis:// or rediss:// URL, not {parts.scheme}://")
        sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout)
        if parts.scheme == "rediss":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
        self.sock = sock
        self.reader = sock.makefile("rb")
        if parts.password:
            args = [unquote(parts.username), unquote(parts.password)] if parts.username else [unquote(parts.password)]
            self.call("AUTH", *args, required=True)

    def send(self, *args: str) -> None:
        encoded = [arg.encode() for arg in args]
        payload = b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in encoded)
        self.sock.sendall(payload)

    def call(self, *args: str, required: bool = False) -> bytes:
        self.send(*args)
        line = self.reader.readline().rstrip(b"\r\n")
        if required and not line.startswith(b"+"):
            raise BackupError(f"Redis refused {args[0]}: {line.decode(errors='replace')}")
        return line

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.reader.close()
            self.sock.close()


def fetch_rdb(url: str, target: Path, *, timeout: float = 120) -> int:
    """Ask the server for a full resynchronisation and write the RDB it streams to `target`. Returns its size.

    First as a replica without diskless support: the server saves its RDB to its own disk (what the manual's
    BGSAVE does) and sends that file, at once. If that fails (a read-only data directory), diskless: the server
    streams the snapshot straight from its fork, after its repl-diskless-sync-delay (5 s by default)."""
    try:
        return _fetch_rdb(url, target, timeout=timeout, diskless=False)
    except BackupError:
        return _fetch_rdb(url, target, timeout=timeout, diskless=True)


def _fetch_rdb(url: str, target: Path, *, timeout: float, diskless: bool) -> int:
    try:
        wire = _Wire(url, timeout)
    except OSError as exc:
        raise BackupError(f"cannot connect to Redis: {exc}") from exc
    try:
        if diskless:
            wire.call("REPLCONF", "capa", "eof")
        wire.call("REPLCONF", "rdb-only", "1")  # Redis 7+: no replication stream after the snapshot
        wire.send("SYNC")
        line = b"\n"
        while line in (b"\n", b"\r\n"):  # the server sends newlines as keepalives while it forks and saves
            line = wire.reader.readline()
        if not line.startswith(b"$"):
            raise BackupError(f"Redis did not start a snapshot: {line[:200].decode(errors='replace')}")
        header = line[1:].rstrip(b"\r\n")
        with target.open("wb") as out:
            if header.startswith(b"EOF:"):
                return _copy_until_mark(wire, out, header[4:])
            return _copy_exact(wire, out, int(header))
    except OSError as exc:
        raise BackupError(f"the Redis snapshot transfer failed: {exc}") from exc
    finally:
        wire.close()


def _copy_exact(wire: _Wire, out: Any, length: int) -> int:
    remaining = length
    while remaining:
        chunk = wire.reader.read(min(CHUNK, remaining))
        if not chunk:
            raise BackupError("Redis closed the connection in the middle of the snapshot")
        out.write(chunk)
        remaining -= len(chunk)
    return length


def _copy_until_mark(wire: _Wire, out: Any, mark: bytes) -> int:
    # Diskless transfer: the payload ends with the 40-byte mark announced in the header.
    if len(mark) != EOF_MARK_LENGTH:
        raise BackupError("Redis sent a malformed end-of-snapshot mark")
    tail = b""
    written = 0
    while True:
        chunk = wire.reader.read1(CHUNK)
        if not chunk:
            raise BackupError("Redis closed the connection in the middle of the snapshot")
        tail += chunk
        if tail.endswith(mark):
            body = tail[:-EOF_MARK_LENGTH]
            out.write(body)
            return written + len(body)
        keep = tail[-EOF_MARK_LENGTH:]
        body = tail[:-EOF_MARK_LENGTH]
        out.write(body)
        written += len(body)
        tail = keep


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def scratch_server(archive: Path) -> Iterator[redis_client.Redis]:
    """A redis-server on loopback, started from a copy of `archive`, stopped and deleted afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise BackupError("redis-server is not installed here; it is needed to load a Redis backup")
    with tempfile.TemporaryDirectory(dir=archive.parent) as work:
        shutil.copyfile(archive, Path(work) / "dump.rdb")
        port = _free_port()
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", work, "--dbfilename", "dump.rdb"]
        log = Path(work) / "redis.log"
        command += ["--save", "", "--appendonly", "no", "--protected-mode", "yes", "--logfile", str(log)]
        child = Child(command)
        # No retries: while the server starts, a refused connection must return at once so the loop can poll.
        client = redis_client.Redis(host="127.0.0.1", port=port, socket_timeout=30, retry=Retry(NoBackoff(), 0))
        try:
            deadline = time.monotonic() + 60
            while True:
                if child.process.poll() is not None:
                    raise VerificationFailed(f"redis-server refused the snapshot: {_last_errors(log)}")
                try:
                    if client.ping() and int(client.info("persistence").get("loading", 0)) == 0:
                        break
                except redis_client.exceptions.ConnectionError:
                    pass
                except redis_client.exceptions.BusyLoadingError:
                    pass
                if time.monotonic() > deadline:
                    raise VerificationFailed("redis-server did not finish loading the snapshot within 60 s")
                time.sleep(0.05)
            yield client
        finally:
            client.close()
            child.stop()


def _last_errors(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    # Warnings are logged with "#"; the memory overcommit advice is noise here.
    errors = [line.split(" # ", 1)[1] for line in lines if " # " in line and "overcommit" not in line]
    return "; ".join(errors[-2:]) or "no message"


def keyspace(client: redis_client.Redis) -> dict[str, int]:
    return {name: int(values["keys"]) for name, values in client.info("keyspace").items()}


class RedisDumper:
    """The redis kind: one RDB snapshot of the whole server (every database)."""

    extension = ".rdb"

    def __init__(self, url: str) -> None:
        if not url:
            raise BackupError("no Redis to back up: set REDIS_URL or BACKUP_REDIS_URL")
        self.url = url

    def dump(self, target: Path, *, progress: Progress) -> dict[str, Any]:
        client = redis_client.Redis.from_url(self.url, socket_timeout=10, socket_connect_timeout=5)
        try:
            server = client.info("server")
            before = keyspace(client)
        except redis_client.exceptions.RedisError as exc:
            raise BackupError(f"cannot reach Redis: {exc}") from exc
        finally:
            client.close()
        size = fetch_rdb(self.url, target)
        progress(f"RDB snapshot of Redis {server.get('redis_version')}: {size} bytes")
        return {
            "format": "redis-rdb",
            "redis_version": str(server.get("redis_version", "")),
            # Keys just before the snapshot: a busy server changes in between, so this is for information.
            "keyspace_before": before,
        }

    def verify(self, archive: Path, manifest: dict[str, Any], *, label: str, progress: Progress) -> dict[str, Any]:
        started = time.perf_counter()
        if shutil.which("redis-server") is None:
            result: dict[str, Any] = {**check_rdb_file(archive), "loaded": False}
            progress("RDB checksum ok (no redis-server here to load it)")
        else:
            with archive.open("rb") as handle:
                head = handle.read(9)
            if not head.startswith(b"REDIS"):
                raise VerificationFailed("the file is not an RDB snapshot (no REDIS header)")
            with scratch_server(archive) as client:
                keys = keyspace(client)
            result = {"rdb_version": int(head[5:] or 0), "loaded": True, "keyspace": keys}
            progress(f"a scratch redis-server loaded the snapshot: {sum(keys.values())} keys")
        return {**result, "restore_seconds": round(time.perf_counter() - started, 3)}

    def restore_live(self, archive: Path, *, only_db: int | None = None, progress: Progress) -> dict[str, int]:
        """Replace the content of the live server's databases with the snapshot's: load it into a scratch server,
        empty each database and copy every key with DUMP and RESTORE (keeping TTLs)."""
        copied: dict[str, int] = {}
        with scratch_server(archive) as scratch:
            databases = sorted(int(name[2:]) for name in keyspace(scratch))
            if only_db is not None:
                databases = [only_db]
            for number in databases:
                copied[f"db{number}"] = self._copy_database(scratch, number, progress)
        return copied

    def _copy_database(self, scratch: redis_client.Redis, number: int, progress: Progress) -> int:
        port = scratch.connection_pool.connection_kwargs["port"]
        source = redis_client.Redis(host="127.0.0.1", port=port, db=number, socket_timeout=30)
        # The URL's own /<db> would win over a db= keyword: name the database in the URL instead.
        live = redis_client.Redis.from_url(
            urlunsplit(urlsplit(self.url)._replace(path=f"/{number}")), socket_timeout=30
        )
        count = 0
        try:
            live.flushdb()
            for keys in _batches(source.scan_iter(count=500), 500):
                pipe = source.pipeline(transaction=False)
                for key in keys:
                    pipe.dump(key)
                    pipe.pttl(key)
                values = pipe.execute()
                out = live.pipeline(transaction=False)
                for index, key in enumerate(keys):
                    payload, ttl = values[2 * index], values[2 * index + 1]
                    if payload is not None:
                        out.restore(key, max(int(ttl), 0), payload, replace=True)
                        count += 1
                out.execute()
        finally:
            source.close()
            live.close()
        progress(f"redis db{number}: {count} keys restored")
        return count


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
