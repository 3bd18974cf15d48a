"""A Redis backup restores with the image's own tools. There is no Docker engine here, so the image is read from
the Dockerfile: the Debian packages its runtime stage installs must own every binary the Redis restore runs, and
the restore runs with PATH holding only the programs of those packages."""

from __future__ import annotations

import re
import shutil
import subprocess
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management import call_command

from itsm.backup.base import BackupError, no_progress
from itsm.backup.redis import RedisDumper
from itsm.models import Backup

ROOT = Path(__file__).resolve().parents[2]
DPKG = shutil.which("dpkg")
needs_dpkg = pytest.mark.skipif(DPKG is None, reason="not a Debian system: no dpkg to say which package owns what")


def runtime_packages() -> set[str]:
    """The packages of every `apt-get install` of the Dockerfile's runtime stage."""
    runtime = (ROOT / "Dockerfile").read_text().split(" AS runtime", 1)[1].replace("\\\n", " ")
    packages: set[str] = set()
    for arguments in re.findall(r"apt-get install ([^&\n]*)", runtime):
        packages |= {word for word in arguments.split() if not word.startswith("-")}
    return packages


def restore_binaries() -> set[str]:
    """The programs itsm/backup/redis.py looks up on PATH to verify and restore a snapshot."""
    return set(re.findall(r'shutil\.which\("([\w.-]+)"\)', (ROOT / "itsm" / "backup" / "redis.py").read_text()))


def link_chain(path: Path) -> list[Path]:
    """The path and every file its symbolic links lead through (Debian's redis-server links to redis-check-rdb)."""
    chain = [path]
    while chain[-1].is_symlink():
        target = chain[-1].readlink()
        chain.append(target if target.is_absolute() else chain[-1].parent / target)
    return chain


def owner(path: Path) -> str:
    assert DPKG
    result = subprocess.run([DPKG, "-S", str(path)], capture_output=True, text=True, check=False)
    return result.stdout.split(":", 1)[0] if result.returncode == 0 else f"no package ({path})"


def package_programs(package: str) -> list[Path]:
    assert DPKG
    result = subprocess.run([DPKG, "-L", package], capture_output=True, text=True, check=False)
    files = [Path(line) for line in result.stdout.splitlines()]
    return [path for path in files if path.parent in (Path("/usr/bin"), Path("/bin"), Path("/usr/sbin"))]


def test_the_runtime_stage_installs_the_redis_server_and_tools():
    assert {"postgresql-client-15", "redis-server", "redis-tools"} <= runtime_packages()
    assert restore_binaries() == {"redis-server"}


@needs_dpkg
def test_every_binary_the_redis_restore_runs_comes_from_a_package_the_dockerfile_installs():
    packages = runtime_packages()
    for name in restore_binaries():
        found = shutil.which(name)
        if found is None:
            pytest.skip(f"{name} is not installed here")
        owners = {str(path): owner(path) for path in link_chain(Path(found))}
        assert set(owners.values()) <= packages, owners


@pytest.fixture
def image_path(tmp_path: Path) -> Path:
    """A PATH directory with links to the programs of the Dockerfile's runtime packages, and nothing else."""
    directory = tmp_path / "image-bin"
    directory.mkdir()
    for package in runtime_packages():
        for program in package_programs(package):
            if program.exists() and not (directory / program.name).exists():
                (directory / program.name).symlink_to(program.resolve())
    return directory


@needs_dpkg
@pytest.mark.django_db
def test_a_redis_backup_restores_with_only_the_images_programs_on_path(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_path: Path
):
    if not (image_path / "redis-server").exists():
        pytest.skip("redis-server is not installed here")
    settings.VAR_DIR = tmp_path / "var"
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_S3_BUCKET = ""
    settings.BACKUP_REDIS_URL = settings.REDIS_URL
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    client.set("queue:kept", "1")
    monkeypatch.setenv("PATH", str(image_path))
    assert shutil.which("redis-server") == str(image_path / "redis-server")
    call_command("backup", "--kind", "redis", stdout=StringIO(), stderr=StringIO())
    backup = Backup.objects.get()
    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    assert backup.verification["local"]["loaded"] is True
    client.delete("queue:kept")
    number = settings.REDIS_URL.rsplit("/", 1)[1]

    out = StringIO()
    call_command("restore", str(backup.pk), "--yes", "--redis-db", number, stdout=out, stderr=StringIO())

    assert f"redis db{number}: 1 keys restored" in out.getvalue()
    assert client.keys() == [b"queue:kept"]


@pytest.mark.django_db
def test_without_redis_server_on_path_a_redis_restore_says_what_is_missing(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    archive = tmp_path / "dump.rdb"
    archive.write_bytes(b"REDIS0011" + b"\xff" + bytes(8))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackupError, match="redis-server is not installed here"):
        RedisDumper(settings.REDIS_URL).restore_live(archive, progress=no_progress)
