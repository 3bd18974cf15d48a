"""schemathesis (`st run`, every check, positive and negative data) against gunicorn on loopback, signed in as
two requesters declared peers (the object-level authorization check), an agent and an admin. schemathesis.toml
at the repository root holds the configuration; this test supplies the users and the server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from knox.models import AuthToken

from tests.deploy.test_nginx_live import database_url
from tests.factories import make_ticket, make_user
from tests.system.processes import BIN, ROOT, base_env, free_port, started, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ST = BIN / "st"
# Bounded for CI: a few examples per operation and phase, and a time budget for the fuzzing phases.
EXAMPLES = 10
MAX_TIME_SECONDS = 90
# One worker: with two, hypothesis parses source in two threads at once, which CPython 3.11's ast.parse cannot do
# (SystemError "AST constructor recursion depth mismatch", python/cpython#106905), an error of the run itself.
WORKERS = 1


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = base_env(
        DATABASE_URL=database_url(),
        REDIS_URL=str(settings.REDIS_URL),
        DJANGO_SECRET_KEY="schemathesis-test-key-0123456789abcdefghijklmnopqrstuvwxyz",
        PORT=str(port),
        ITSM_BIND_HOST="127.0.0.1",
        ITSM_GUNICORN_WORKERS="2",
        ITSM_VAR_DIR=str(tmp_path / "var"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        XDG_RUNTIME_DIR=str(tmp_path),
    )
    command = [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py"]
    with started(command, env, tmp_path / "gunicorn.log"):
        wait_for(f"http://127.0.0.1:{port}/health/", timeout=60)
        yield f"http://127.0.0.1:{port}"


def _auth_file(path: Path) -> Path:
    """Each user with a token of their own and a ticket of their own, as a WFC authentication document."""
    entries = []
    for name, role in (("rita", "requester"), ("oscar", "requester"), ("alice", "agent"), ("adam", "admin")):
        user = make_user(name, role)
        make_ticket(user, title=f"{name}'s printer jams")
        _, token = AuthToken.objects.create(user=user)
        entries.append({"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Token {token}"}]})
    path.write_text(json.dumps({"schemaVersion": "0.1.0", "auth": entries}))
    return path


def test_schemathesis_finds_no_issues(server: str, tmp_path: Path, db: Any) -> None:
    auth = _auth_file(tmp_path / "auth.json")
    command = [
        str(ST), "run", f"{server}/api/schema/",
        "--url", server,
        "--checks", "all",
        "--mode", "all",
        "--max-examples", str(EXAMPLES),
        "--max-time", str(MAX_TIME_SECONDS),
        "--workers", str(WORKERS),
        "--seed", os.environ.get("ITSM_ST_SEED", "1"),  # another seed explores other cases (docs/reliability.md)
        "--no-color",
    ]  # fmt: skip
    started_at = time.monotonic()
    run = subprocess.run(
        command,
        cwd=ROOT,
        env=base_env(ITSM_ST_AUTH_FILE=str(auth)),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    elapsed = time.monotonic() - started_at
    output = run.stdout + run.stderr
    (tmp_path / "st-output.txt").write_text(output)  # the whole run, for a failure whose cause is above FAILURES
    report = output[output.find("FAILURES") :] if "FAILURES" in output else output[-8000:]
    assert run.returncode == 0, report
    # The last line is "No issues found in 90s", or with advisory warnings only (operations the run could not give
    # existing ids, or whose generated bodies name ids that do not exist) "3 warnings in 90s": no failure, no error.
    summary = output.strip().splitlines()[-1]
    assert "No issues found" in summary or re.fullmatch(r"=+ \d+ warnings? in [\d.]+s =+", summary), report
    assert re.search(r"\d+ generated, \d+ passed", output), report  # it did run the cases
    assert elapsed < 200, f"st run took {elapsed:.0f} s"
