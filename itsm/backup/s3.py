"""The offsite store: S3 or any S3-compatible service (endpoint URL, region and storage class configurable).

Every upload is checked against the local SHA-256: the bytes sent are hashed while they are read and must equal
the archive's recorded SHA-256; each request carries Content-MD5 (and, in one part, the SHA-256), which the
server checks on receipt; finally the stored object's size and ETag (the MD5, or the MD5 of the part MD5s) must
match what was sent. Where the ETag is not an MD5 (SSE-KMS), the object is read back and hashed instead."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from itsm.backup.base import CHUNK, BackupError, StorageUnavailable

# Objects in these classes must be restored (hours) before they can be read.
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
TRANSIENT_CODES = frozenset({"RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable", "Throttling"})


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class S3Storage:
    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str = "",
        region: str = "",
        access_key_id: str = "",
        secret_access_key: str = "",
        part_size: int = 64 * 1024 * 1024,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        credentials = (
            {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key} if access_key_id else {}
        )
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            config=Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                # Only what S3-compatible stores all understand; the checks below are our own.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
            **credentials,
        )

    def key_for(self, *, kind: str, tier: str, file_name: str) -> str:
        return f"{self.prefix}{kind}/{tier}/{file_name}"

    # --- upload ----------------------------------------------------------------------------------------------
    def upload(self, path: Path, key: str, *, sha256: str, storage_class: str) -> dict[str, Any]:
        """Upload and check; returns what was checked. StorageUnavailable on transient errors."""
        size = path.stat().st_size
        extra = {"StorageClass": storage_class, "Metadata": {"sha256": sha256}}
        with _errors("upload"):
            if size <= self.part_size:
                expected_etag, sent_sha = self._put(path, key, extra)
            else:
                expected_etag, sent_sha = self._multipart(path, key, extra)
            if sent_sha != sha256:
                self.client.delete_object(Bucket=self.bucket, Key=key)
                raise BackupError("the local file changed after it was written: its SHA-256 no longer matches")
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        stored_size = int(head["ContentLength"])
        etag = str(head.get("ETag", "")).strip('"')
        if stored_size != size:
            raise StorageUnavailable(f"S3 stored {stored_size} bytes of {size}")
        method = "etag"
        if etag != expected_etag:
            if storage_class in ARCHIVE_CLASSES:
                raise BackupError(f"S3 ETag {etag} is not the expected {expected_etag} and the object cannot be read")
            method = "read-back"
            if self.sha256_of(key) != sha256:
                raise StorageUnavailable("the object read back from S3 does not match the local SHA-256")
        return {"size": size, "etag": etag, "checked_by": method, "storage_class": storage_class}

    def _put(self, path: Path, key: str, extra: dict[str, Any]) -> tuple[str, str]:
        data = path.read_bytes()
        md5 = hashlib.md5(data, usedforsecurity=False).digest()
        sha = hashlib.sha256(data).digest()
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentMD5=_b64(md5), ChecksumSHA256=_b64(sha), **extra
        )
        return md5.hex(), sha.hex()

    def _multipart(self, path: Path, key: str, extra: dict[str, Any]) -> tuple[str, str]:
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)["UploadId"]
        sha = hashlib.sha256()
        part_md5s: list[bytes] = []
        parts = []
        try:
            with path.open("rb") as handle:
                while data := handle.read(self.part_size):
                    md5 = hashlib.md5(data, usedforsecurity=False).digest()
                    sha.update(data)
                    part_md5s.append(md5)
                    number = len(part_md5s)
                    answer = self.client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
                        ContentMD5=_b64(md5),
                    )  # fmt: skip
                    parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            # When the store is unreachable, its lifecycle rule for incomplete uploads cleans up instead.
            with contextlib.suppress(BotoCoreError, ClientError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        combined = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
        return f"{combined}-{len(part_md5s)}", sha.hexdigest()

    # --- read and delete -------------------------------------------------------------------------------------
    def sha256_of(self, key: str) -> str:
        digest = hashlib.sha256()
        with _errors("read"):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def download(self, key: str, target: Path) -> None:
        with _errors("download"), target.open("wb") as out:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(CHUNK):
                out.write(chunk)

    def list_archives(self, kind: str = "") -> list[dict[str, Any]]:
        """The archives under the prefix (of one kind), newest first: key, size, last_modified, storage_class."""
        found: list[dict[str, Any]] = []
        with _errors("list"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}{kind}/" if kind else self.prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = Path(item["Key"]).name
                    if name.startswith("backup_"):
                        found.append({
                            "key": item["Key"], "size": int(item["Size"]), "last_modified": item["LastModified"],
                            "storage_class": item.get("StorageClass", "STANDARD"),
                        })  # fmt: skip
        # Names start with the time they were taken and end with the backup id: the order within a second too.
        return sorted(found, key=lambda item: (_taken(item["key"]), item["last_modified"]), reverse=True)

    def fetch(self, key: str, directory: Path) -> tuple[Path, str]:
        """Download an archive into `directory` under its own name and check it against the SHA-256 recorded
        with it at upload; returns the file and its SHA-256."""
        with _errors("read"):
            recorded = self.client.head_object(Bucket=self.bucket, Key=key).get("Metadata", {}).get("sha256", "")
        target = directory / Path(key).name
        digest = hashlib.sha256()
        with _errors("download"), target.open("wb") as out:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if recorded and digest.hexdigest() != recorded:
            target.unlink()
            raise BackupError(f"s3://{self.bucket}/{key} does not match the SHA-256 recorded at upload: it is damaged")
        return target, digest.hexdigest()

    def delete(self, key: str) -> None:
        with _errors("delete"):
            self.client.delete_object(Bucket=self.bucket, Key=key)


def _taken(key: str) -> tuple[str, int]:
    """(YYYYmmdd_HHMMSS, backup id) of `backup_YYYYmmdd_HHMMSS_<kind>_<tier>_<id>.<extension>`."""
    parts = Path(key).name.split(".", 1)[0].split("_")
    return "_".join(parts[1:3]), int(parts[-1]) if parts[-1].isdigit() else 0


@contextlib.contextmanager
def _errors(action: str) -> Iterator[None]:
    """Map boto errors: unreachable, timeouts, throttling and 5xx are StorageUnavailable (retried); the rest
    (no such bucket, access denied, an object in Glacier) is a BackupError."""
    try:
        yield
    except (BotoConnectionError, HTTPClientError) as exc:
        raise StorageUnavailable(f"S3 {action} failed: {exc}") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"S3 {action} failed: {error.get('Code')} {error.get('Message', '')}".strip()
        if error.get("Code") in TRANSIENT_CODES or status >= 500:
            raise StorageUnavailable(message) from exc
        raise BackupError(message) from exc
    except BotoCoreError as exc:
        raise BackupError(f"S3 {action} failed: {exc}") from exc
