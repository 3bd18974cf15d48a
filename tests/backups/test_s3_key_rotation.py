"""The backups' S3 access key rotated as docs/runbooks/rotate-secrets.md says, against a moto server of the test's
own that enforces IAM (every request signed with a known access key, allowed by the user's policy): a second key is
created for the backup user, the platform's backup configuration switched to it, a backup taken with it, the former
key deactivated then deleted, and a backup still goes through; one taken with the former key fails and says why."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from itsm.models import Backup
from tests.backups.conftest import MotoServer, database_url
from tests.system.processes import PYTHON, ROOT, base_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BUCKET = "itsm-backups-rotation"
USER = "itsm-backups"
# What the backup user may do: the bucket's objects, and its own access keys (so it can rotate them itself).
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::*"]},
        {
            "Effect": "Allow",
            "Action": ["iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:ListAccessKeys"],
            "Resource": "*",
        },
    ],
}


@pytest.fixture
def iam_moto(tmp_path: Path) -> Iterator[MotoServer]:
    """moto's server for this test alone: auth is switched on after the setup, which the shared one must not see."""
    server = MotoServer(tmp_path)
    server.start()
    yield server
    server.stop()


def client(service: str, server: MotoServer, key: dict[str, str] | None = None) -> Any:
    key = key or {"AccessKeyId": "setup", "SecretAccessKey": "setup"}
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )


def enforce_iam(server: MotoServer) -> None:
    """From now on every request must be signed with a key IAM knows and be allowed by its user's policy."""
    url = f"{server.url}/moto-api/reset-auth"
    request = urllib.request.Request(url, data=b"0", method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["status"] == "ok"


def backup(server: MotoServer, key: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The runbook's check, `manage.py backup --kind database`, in a process started with the S3 key given."""
    env = base_env(
        DATABASE_URL=database_url(),
        ITSM_VAR_DIR=str(tmp_path / "var"),
        BACKUP_DIR=str(tmp_path / "backups"),
        BACKUP_S3_BUCKET=BUCKET,
        BACKUP_S3_ENDPOINT_URL=server.url,
        BACKUP_S3_REGION="us-east-1",
        BACKUP_S3_ACCESS_KEY_ID=key["AccessKeyId"],
        BACKUP_S3_SECRET_ACCESS_KEY=key["SecretAccessKey"],
    )
    command = [PYTHON, "manage.py", "backup", "--kind", "database"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_backup_key_rotates_with_iam_enforced_and_the_former_key_fails_clearly(
    iam_moto: MotoServer, tmp_path: Path
) -> None:
    iam = client("iam", iam_moto)
    iam.create_user(UserName=USER)
    iam.put_user_policy(UserName=USER, PolicyName="backups", PolicyDocument=json.dumps(POLICY))
    old = iam.create_access_key(UserName=USER)["AccessKey"]
    client("s3", iam_moto).create_bucket(Bucket=BUCKET)
    enforce_iam(iam_moto)
    with pytest.raises(Exception, match=r"InvalidAccessKeyId|InvalidClientTokenId"):
        client("s3", iam_moto).list_objects_v2(Bucket=BUCKET)  # unsigned by a known key: refused

    first = backup(iam_moto, old, tmp_path)
    assert first.returncode == 0, first.stderr

    # 1. A second key for the backup user, made with the first (AWS: aws iam create-access-key).
    new = client("iam", iam_moto, old).create_access_key(UserName=USER)["AccessKey"]
    # 2-3. The platform switched to it; a backup reaches S3 with it.
    second = backup(iam_moto, new, tmp_path)
    assert second.returncode == 0, second.stderr
    # 4. The former key deactivated, then deleted, with the new one.
    with_new = client("iam", iam_moto, new)
    with_new.update_access_key(UserName=USER, AccessKeyId=old["AccessKeyId"], Status="Inactive")
    with_new.delete_access_key(UserName=USER, AccessKeyId=old["AccessKeyId"])
    keys = with_new.list_access_keys(UserName=USER)["AccessKeyMetadata"]
    assert [key["AccessKeyId"] for key in keys] == [new["AccessKeyId"]]

    third = backup(iam_moto, new, tmp_path)
    assert third.returncode == 0, third.stderr
    stale = backup(iam_moto, old, tmp_path)  # a process still configured with the former key
    assert stale.returncode == 1
    assert "S3 upload failed: InvalidAccessKeyId" in stale.stderr, stale.stderr

    stored = client("s3", iam_moto, new).list_objects_v2(Bucket=BUCKET)["Contents"]
    succeeded = Backup.objects.filter(status=Backup.Status.SUCCEEDED).exclude(s3_key="")
    assert sorted(item["Key"] for item in stored) == sorted(succeeded.values_list("s3_key", flat=True))
    assert succeeded.count() == 3
    failed = Backup.objects.get(status=Backup.Status.FAILED)
    assert failed.error.startswith("S3 upload failed: InvalidAccessKeyId"), failed.error
    assert failed.local_path  # the local copy is kept
