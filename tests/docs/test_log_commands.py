"""The docs' log commands work on the platform's JSON lines, and compose rotates every service's logs
(docs/operations.md#logs).

test_docs_commands.py cannot run them (they need docker compose or a cluster), so every piped `docker compose logs`
or `kubectl logs` line of a shell block in docs/ runs here as written, with a `docker` and a `kubectl` first on
the PATH that print what the platform's processes write: JSON lines from the real formatters, Celery's start-up
banner and an Nginx access line. Like compose, the fake puts `backend-1  | ` before each line unless given
`--no-log-prefix`. Each command must succeed and print something.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from gunicorn.glogging import SafeAtoms

from itsm.log_context import GunicornJsonFormatter, JsonFormatter

ROOT = Path(__file__).resolve().parents[2]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "runbooks").glob("*.md"))]
SHELL_BLOCK = re.compile(r"```(?:bash|sh|shell|console)\n(.*?)```", re.DOTALL)
LOG_COMMAND = re.compile(r"^(?:docker compose|kubectl)\b.*\blogs\b.*\|")
REQUEST_ID = "abcdef0123456789"  # the id docs/operations.md follows

FAKE = """#!{python}
import sys
lines = open({samples!r}).read().splitlines()
prefix = "" if "--no-log-prefix" in sys.argv or sys.argv[1:2] == ["logs"] else "backend-1  | "
for line in lines:
    print(prefix + line)
"""


def record(logger: str, level: int, message: str, **fields: object) -> logging.LogRecord:
    made = logging.LogRecord(logger, level, __file__, 1, message, None, None)
    made.__dict__.update(fields)
    return made


def sample_lines() -> list[str]:
    try:
        raise ConnectionError("the mail server refused the login")
    except ConnectionError:
        exc_info = sys.exc_info()
    error = record("itsm.tasks.mail", logging.ERROR, "polling the mailbox failed", process_kind="worker")
    error.exc_info = exc_info
    error.request_id = REQUEST_ID
    error.task_name, error.task_id = "itsm.tasks.mail.poll_mail", "0b5e6f6c-7a61-4c1e-9d0c-3c2b1a0f9e8d"
    backup = record(
        "itsm.services.backups", logging.INFO, "backup 12 (database, hourly) verified", process_kind="worker"
    )
    atoms = SafeAtoms(
        {
            "h": "10.0.0.7",
            "m": "POST",
            "U": "/api/v1/tickets/",
            "q": "",
            "s": "500",
            "B": 145,
            "M": 87,
            "a": "curl/8",
            "{x-request-id}o": REQUEST_ID,
        }
    )
    access = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(m)s %(U)s %(s)s", None, None)
    access.args = atoms
    return [
        " -------------- celery@worker v5.7.0 (banner, not JSON)",
        JsonFormatter().format(error),
        JsonFormatter().format(backup),
        GunicornJsonFormatter().format(access),
        '10.0.0.7 - - [03/Dec/2026:14:02:45 +0000] "POST /api/v1/tickets/ HTTP/1.1" 500 145 "-" "curl/8" rt=0.087 '
        f"upstream=172.31.250.3:8000 urt=0.087 cache=- request_id={REQUEST_ID}",
    ]


def log_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for block in SHELL_BLOCK.findall(doc.read_text()):
            for command in block.replace("\\\n", " ").splitlines():
                command = command.removeprefix("$ ").strip()
                if LOG_COMMAND.match(command):
                    found.append((str(doc.relative_to(ROOT)), command))
    return found


def test_the_docs_have_log_commands_to_check():
    docs = {doc for doc, _ in log_commands()}
    assert {"docs/operations.md", "docs/runbooks/ErrorLogsRising.md", "docs/runbooks/HighErrorRate.md"} <= docs


@pytest.mark.parametrize(("doc", "command"), log_commands())
def test_a_documented_log_command_finds_its_lines_in_the_platforms_output(doc, command, tmp_path):
    samples = tmp_path / "samples.log"
    samples.write_text("\n".join(sample_lines()) + "\n")
    for name in ("docker", "kubectl"):
        fake = tmp_path / name
        fake.write_text(FAKE.format(python=sys.executable, samples=str(samples)))
        fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, f"{doc}: {command}\n{done.stderr}"
    assert not done.stderr, f"{doc}: {command}\n{done.stderr}"
    assert done.stdout.strip(), f"{doc}: {command} printed nothing"


def test_every_compose_service_rotates_its_logs():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    unrotated = {
        name
        for name, service in services.items()
        if service.get("logging", {}).get("driver") != "json-file"
        or not {"max-size", "max-file"} <= set(service["logging"].get("options", {}))
    }
    assert not unrotated
