"""The shell blocks of README.md, docs/*.md and docs/runbooks/*.md, run as written.

`make run` starts the platform exactly as the README says, with DATABASE_URL naming a PostgreSQL database that
does not exist yet (make run creates it) and REDIS_URL a redis-server of this test's own. Then the blocks run in
bash, in the order an operator reads them, sharing their variables (API, TOKEN, ...) from block to block as one
terminal would. What a block prints is held to what the doc shows next to it: a JSON answer (times, tokens and
latencies may differ; with `keys`, only its fields), or a `$ command` transcript whose lines must all appear in
order. Every curl call's HTTP status is recorded (a `curl` first on the PATH passes the arguments through
unchanged and adds `-D` to keep the response headers) and must be the one listed here.

Every shell block of the docs must be in RUN or in EXCLUDED, found by a piece of text unique to it in its doc,
so a new or changed block fails until someone decides how it is checked. The only edits to what is run are the
substitutions of the `terminal` fixture: the port this test's platform listens on and the passwords `make run`
printed. The blocks depend on each other as in one terminal (the README sets API and TOKEN), so run the module
whole, not a `-k` selection of blocks.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql

from tests.mail.servers import DovecotMailbox, running_dovecot
from tests.system.processes import (
    PG_BIN,
    REDIS_SERVER,
    ROOT,
    base_env,
    free_port,
    group_alive,
    postgres_initdb,
    postgres_owned_dir,
    postgres_server,
    redis_server,
    started,
    wait_for,
    wait_for_postgres,
)

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "runbooks").glob("*.md"))]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
CURL = shutil.which("curl")


# --- what runs, in this order, and what each call must answer ----------------------------------------------------
@dataclass(frozen=True)
class Run:
    doc: str
    selector: str  # text found in exactly one shell block of `doc`
    statuses: tuple[int, ...] = ()  # the HTTP status of each curl call of the block, in order
    compare: str = "values"  # how the doc's JSON answer is held: "values", "keys", or "none"
    note: str = ""


RUN = [
    # README: the quick tour, signed in as the agent with the password make run printed.
    Run("README.md", "API=http://127.0.0.1:8000/api/v1", (200,)),
    Run("README.md", '"VPN drops every 10 minutes", "priority": "high"', (201,)),
    Run("README.md", '"to": "in_progress"', (200, 201)),
    Run("README.md", '"to": "closed"', (409,)),
    Run("README.md", "sla=at_risk&sla=breached", (200, 200)),
    # Mail in: the message appended by curl (IMAP, no HTTP status) opens a ticket the search then finds.
    Run("README.md", "Printer prints blank pages\\r\\n", (0, 200), "keys"),
    # The incident guide with API and TOKEN as the README set them.
    Run("docs/incident-response.md", "INCIDENT=$(curl", (201, 200, 200, 201, 201, 200, 200)),
    # The backup runbook, in its order: take backups, look at them, read-only mode, the checks.
    Run("docs/runbooks/backup-restore.md", "manage.py backup                       # database"),
    Run("docs/runbooks/backup-restore.md", "from itsm.models import Backup", (200,)),
    Run("docs/runbooks/backup-restore.md", "backup_verify 1 --source s3; echo"),
    Run("docs/runbooks/backup-restore.md", "manage.py read_only_mode status"),
    Run("docs/runbooks/backup-restore.md", "$ curl -s http://127.0.0.1:8000/health/", (503, 200, 200, 200)),
    Run("docs/runbooks/backup-restore.md", "backup_age_problems"),
    Run("docs/runbooks/backup-restore.md", "backup_restore_drill"),
    # The upgrade runbook: the plan of an installation at this release's migrations.
    Run("docs/runbooks/upgrade.md", 'upgrade --plan-only; echo "exit $?"\n```'),
    Run("docs/runbooks/upgrade.md", "$ .venv/bin/python manage.py upgrade --plan-only"),
    # The API guide: tokens per role, then what does not depend on the ticket ids of a fresh instance.
    Run("docs/api.md", '"username": "requester", "password": "REQUESTER-PASSWORD"}\'\n```', (200,), "keys"),
    Run("docs/api.md", "REQUESTER_TOKEN=$(curl", (200, 200, 200)),
    Run("docs/api.md", "?search=vpn&status=open", (200,)),
    Run("docs/api.md", "services/?page_size=2", (200,)),
    Run("docs/api.md", '"name": "Wiki"', (201,)),
    Run("docs/api.md", "oncall/?at=", (200,), "none", "the doc's answer comes from an instance with a rotation"),
    Run("docs/api.md", '-d \'{"kind": "database", "tier": "daily"}\'', (202,), "keys"),
    Run("docs/api.md", "$API/jobs/cleanup/", (200,), "keys"),
    Run("docs/api.md", "$API/jobs/vacuum_database/run/", (202,), "keys"),
    Run("docs/api.md", "$API/audit/?object_type=ticket", (200,), "none", "the doc's ticket 201 was deleted elsewhere"),
    # The operations runbook.
    Run("docs/operations.md", "curl -s http://127.0.0.1:8000/health/", (200,)),
    # Before add_user: its password reset ends the admin's tokens, ADMIN_TOKEN among them.
    Run("docs/operations.md", '-H "Authorization: Token $ADMIN_TOKEN" $API/jobs/vacuum_database/run/', (202,)),
    Run("docs/operations.md", "add_user jdoe --role agent"),
    Run("docs/operations.md", "sla_recompute_open_tickets"),
    # Out-of-band paging on Kubernetes: the Alertmanager configuration rendered from the Secret's files.
    Run("docs/monitoring.md", "render-config.sh k8s/alertmanager/alertmanager.yml /tmp/am-secrets"),
    Run("docs/monitoring.md", "$ grep -n 'url: .https' /tmp/am.yml"),
    # Last: it revokes the requester's token, which the API guide's later blocks use.
    Run("docs/api.md", "$API/auth/logout/", (204,), note="run last: it revokes REQUESTER_TOKEN"),
    Run("docs/api.md", "$API/auth/logoutall/", (204,), note="after it: it revokes every token of the agent"),
]

_COMPOSE = "needs docker compose (no Docker engine here); its manage.py commands run in test_container_commands"
_K8S = "needs a Kubernetes cluster"
_PITR = "needs a PostgreSQL cluster archiving with pgBackRest; tests/pitr runs these against throw-away clusters"
_REBUILD = "run as written by tests/backups/test_rebuild_from_s3.py, on a new initdb cluster with S3 (moto) and a key"
EXCLUDED = {
    ("README.md", "make run    # the whole platform"): "the platform under test is started with this make run; "
    "make test is this suite",
    ("docs/api.md", '"title": "VPN drops every 10 minutes", "description": "Since the update on Monday."'): "the "
    "ticket examples assume a fresh instance where the requester's ticket is 201; the README tour took 201",
    ("docs/api.md", 'If-Match: "201-1"'): "same: ticket 201 of a fresh instance",
    ("docs/api.md", '"note": "Looking at the VPN concentrator logs."'): "same: ticket 201 of a fresh instance",
    ("docs/api.md", "$API/tickets/201/comments/"): "same: ticket 201 of a fresh instance",
    ("docs/api.md", "$API/tickets/201/attachments/"): "same: ticket 201 of a fresh instance, and a local file",
    ("docs/api.md", "$API/attachments/57/download/"): "the attachment of the example above",
    ("docs/api.md", "$API/tickets/201/rating/"): "same: ticket 201 of a fresh instance, once resolved",
    ("docs/api.md", "Idempotency-Key: 5f0c2a9e"): "its answer shows the ticket ids of a fresh instance",
    ("docs/api.md", "hooks.example.com/itsm"): "resolves hooks.example.com (the webhook address check), and "
    "there is no DNS here",
    ("docs/api.md", "$API/notification-channels/3/rotate-secret/"): "channel 3 is the webhook channel of the example "
    "above, which cannot be made here (no DNS for hooks.example.com)",
    ("docs/operations.md", "make run\n```"): "the platform under test is started with this make run",
    ("docs/operations.md", "check --deploy --fail-level WARNING   # stops"): "the production processes: needs "
    "the production environment of .env.example; make run starts the same three processes",
    ("docs/operations.md", "add_user NAME --role requester|agent|admin --password PW [--email E]"): "a synopsis "
    "with placeholders",
    ("docs/operations.md", "setup_demo [--tickets N]"): "a synopsis with placeholders",
    ("docs/operations.md", "pg_terminate_backend(pid)"): "needs docker compose; the statement itself runs in "
    "test_the_terminate_statement_spares_backups_and_vacuum",
    ("docs/operations.md", "cp .env.example .env"): _COMPOSE,
    ("docs/operations.md", "SELECT application_name, state, count(*) FROM pg_stat_activity"): _COMPOSE,
    ("docs/operations.md", "pg_basebackup -h PRIMARY_HOST"): "a second PostgreSQL host; tests/replica runs the same "
    "pg_basebackup -R against clusters of its own",
    ("docs/operations.md", 'select(.request_id == "abcdef0123456789")'): _COMPOSE
    + "; tests/docs/test_log_commands.py runs it on the platform's JSON lines",
    ("docs/operations.md", "--scale celery=3"): _COMPOSE,
    ("docs/operations.md", "kubectl wait --for=condition=complete"): _K8S,
    ("docs/operations.md", "kubectl delete job itsm-migrate"): _K8S,
    ("docs/operations.md", "kubectl create secret generic itsm-alertmanager-config"): _K8S
    + " with the Prometheus Operator; scripts/ops_operator.py checks that the Alertmanager reads this Secret",
    ("docs/operations.md", "redis_backup.rdb:/backup.rdb:ro"): _COMPOSE + "; destructive (replaces the broker)",
    ("docs/configuration.md", "DJANGO_SECRET_KEY_FILE=/run/secrets"): "environment variables to set, not commands",
    ("docs/configuration.md", "check --deploy --fail-level WARNING"): "needs the production environment",
    ("docs/development.md", "make venv        # creates .venv"): "make run and make test: this suite",
    ("docs/development.md", "itsm_mine REDIS_URL"): "runs the test suite",
    ("docs/development.md", 'make test PYTEST_ARGS="tests/tickets/test_api.py"'): "runs the test suite",
    ("docs/development.md", "makemigrations itsm     # after a model change"): "a developer's steps after a "
    "model change; CI runs make migrations-check",
    ("docs/api.md", "Token itsm_it_..."): "a placeholder token: tests/integrations issue real ones and call the API "
    "with them",
    ("docs/benchmarks.md", "make bench    "): "takes minutes and seeds the itsm_bench database",
    ("docs/benchmarks.md", "--tickets 1000000"): "takes minutes (1,000,000 tickets)",
    ("docs/benchmarks.md", "--tickets 100000 "): "takes about 40 s and a database of its own",
    ("docs/reliability.md", "tests/fault -o log_cli=true"): "runs the test suite",
    ("docs/monitoring.md", "amtool config routes test"): "needs amtool; make ops-check runs these routing cases",
    ("docs/monitoring.md", "ITSM_RUNBOOK_BASE_URL="): "rewrites the rule files for another runbook base; make "
    "ops-check runs the check with the default base",
    ("docs/monitoring.md", "make ops-check"): "runs the validators and the test suite",
    ("docs/monitoring.md", "amtool alert add PagingTest"): "needs Alertmanager on 9093; "
    "tests/monitoring/test_paging_live.py fires a critical alert through the real Alertmanager",
    ("docs/runbooks/backup-restore.md", "$ .venv/bin/python manage.py backup\n[    0.0s]"): "output of a run with "
    "S3 (moto) configured; sizes, paths and times differ",
    ("docs/runbooks/backup-restore.md", "backup_verify 12               # the local copy"): "example id 12; the "
    "S3 line needs S3 (the refusal without S3 runs above and in tests/backups)",
    ("docs/runbooks/backup-restore.md", "$ .venv/bin/python manage.py backup_verify 1\n"): "output of a run with S3",
    ("docs/runbooks/backup-restore.md", "backup_verify 4; echo"): "needs a damaged backup file",
    ("docs/runbooks/backup-restore.md", "restore 12 --yes  "): "destructive: replaces the live database",
    ("docs/runbooks/backup-restore.md", "$ .venv/bin/python manage.py restore 1 --yes"): "destructive",
    ("docs/runbooks/backup-restore.md", "DROP DATABASE"): "destructive, and names the compose host postgres",
    ("docs/runbooks/backup-restore.md", "aws s3 cp"): "needs the AWS CLI and S3, and the compose host postgres",
    ("docs/runbooks/backup-restore.md", "restore 15 --yes  "): "destructive: replaces the live Redis data",
    ("docs/runbooks/backup-restore.md", "--redis-db 8"): "destructive",
    ("docs/runbooks/backup-restore.md", "restore 16 --yes"): "destructive: replaces the media files",
    ("docs/runbooks/backup-restore.md", "backup_key --generate > /root/"): "writes a key file under /root; "
    "tests/backups/test_offsite_commands.py runs backup_key",
    ("docs/runbooks/lost-second-factor.md", "reset_2fa USERNAME        # docker compose"): "in a deployment's "
    "container, for a real user; the command's output and exit codes are tested in tests/auth/test_two_factor.py",
    ("docs/runbooks/personal-data-request.md", "export_personal_data jane.doe@example.org"): "for a real "
    "person; the command's output and exit codes are tested in tests/privacy/test_export.py",
    ("docs/runbooks/personal-data-request.md", "erase_personal_data jane.doe@example.org"): "destructive, for a "
    "real person; tests/privacy/test_erase.py runs the command, its question and its exit codes",
    ("docs/runbooks/rebuild-from-s3.md", "export DATABASE_URL="): "the operator's own values: "
    "tests/backups/test_rebuild_from_s3.py gives a new host's",
    ("docs/runbooks/rebuild-from-s3.md", "backup_s3 list\n"): _REBUILD,
    ("docs/runbooks/rebuild-from-s3.md", "DATABASE_ARCHIVE="): _REBUILD,
    ("docs/runbooks/rebuild-from-s3.md", "REDIS_ARCHIVE="): _REBUILD,
    ("docs/runbooks/rebuild-from-s3.md", "Attachment.objects.count()"): _REBUILD,
    ("docs/runbooks/backup-restore.md", "apt-get install pgbackrest"): "installs a package and writes /etc/ as "
    "root; tests/pitr writes the same file with render_config",
    ("docs/runbooks/backup-restore.md", "pgbackrest --stanza=itsm stanza-create"): _PITR,
    ("docs/runbooks/backup-restore.md", 'restore --to-time "2026-12-03 14:05:00+00"'): _PITR,
    ("docs/runbooks/backup-restore.md", 'restore --to-time "2026-12-03 16:23:43'): _PITR,
    ("docs/runbooks/backup-restore.md", 'restore --to-time "2020-01-01'): _PITR,
    ("docs/runbooks/backup-restore.md", ".venv/bin/python manage.py pitr_drill\n```"): _PITR,
    ("docs/runbooks/backup-restore.md", "$ .venv/bin/python manage.py pitr_drill"): _PITR,
    ("docs/runbooks/backup-restore.md", "backups/drills/?status=failed"): "needs drills; tests/pitr/test_api.py "
    "lists and filters them as an agent",
    ("docs/runbooks/PitrDrillFailed.md", "from itsm.models import RecoveryDrill"): _PITR,
    ("docs/runbooks/upgrade.md", "docker compose images backend"): _COMPOSE + "; tests/upgrade runs the command",
    ("docs/runbooks/upgrade.md", "NEW=ghcr.io/your-org/itsm-api:v2.1.0"): _K8S,
    ("docs/operations.md", "mkdir -p secrets/pgbackrest && cd secrets/pgbackrest"): "writes certificates into the "
    "checkout; tests/pitr/test_shipped_config.py runs it as written and uses its certificates",
    ("docs/operations.md", "docker compose exec celery python manage.py pitr_backup --type full"): _COMPOSE
    + "; tests/pitr/test_shipped_config.py takes the same backup through the shipped files",
    ("docs/operations.md", "create secret generic itsm-pgbackrest-tls"): _K8S,
    ("docs/runbooks/upgrade.md", "ITSM_IMAGE=itsm-api:1.4.2 docker compose run"): _COMPOSE + "; destructive",
    ("docs/runbooks/upgrade.md", "--previous-image itsm-api:1.4.2 --rollback"): _COMPOSE + "; tests/upgrade runs "
    "--rollback",
    ("docs/runbooks/upgrade.md", "upgrade --remove-backup 31"): "example id 31; tests/upgrade removes one",
    ("docs/runbooks/WalArchiveStale.md", "FROM pg_stat_archiver"): _PITR,
    **{
        (f"docs/runbooks/{name}.md", "docker compose"): _COMPOSE
        for name in (
            "ApiDown",
            "BackupStale",
            "BackupVerificationFailed",
            "BeatDown",
            "BeatJobMissed",
            "CeleryQueueBackingUp",
            "CeleryWorkerDown",
            "DatabaseDown",
            "ReplicaDown",
            "HighResponseTime",
            "MailboxNotPolled",
            "RedisDown",
            "UnappliedMigrations",
            "HighRequestRate",
            "ErrorRateAboveTarget",
            "TooManyActiveRequests",
            "ErrorLogsRising",
            "DatabaseConnectionsHigh",
            "SlowDatabaseQueries",
            "ReplicationLagHigh",
            "CacheHitRateLow",
            "CacheMemoryHigh",
            "CacheEvictionsHigh",
        )
    },
    **{
        (f"docs/runbooks/{name}.md", "docker stats --no-stream"): _COMPOSE + " and the host's shell"
        for name in ("HighMemoryUsage", "HighDiskIo", "HighNetworkIo")
    },
    ("docs/runbooks/HighCpuUsage.md", "docker stats --no-stream"): _COMPOSE,
    ("docs/runbooks/HighErrorRate.md", "docker compose logs"): _COMPOSE + "; and Prometheus",
    ("docs/runbooks/LowDiskSpace.md", "docker system df"): _COMPOSE,
    ("docs/operations.md", "docker compose exec postgres-replica psql"): "needs docker compose and a Kubernetes "
    "cluster; tests/deploy/test_standby.py makes a standby with docker/postgres/standby.sh and checks the same query",
    ("docs/operations.md", "docker compose exec postgres sh /docker-entrypoint-initdb.d/02-replication.sh"): "needs "
    "docker compose and a Kubernetes cluster; tests/deploy/test_standby.py runs the script on a primary of its own",
    ("docs/runbooks/Watchdog.md", "9093/api/v2/alerts"): "needs Alertmanager on 9093",
}
# The wrapped `python manage.py …` of compose and kubectl commands that test_container_commands does not run.
CONTAINER_COMMANDS_NOT_RUN = {
    "…": "a placeholder for any command",
    "migrate itsm <previous migration>": "a placeholder",
    "pitr_backup --type full": "needs BACKUP_PITR_STANZA and an archiving cluster: tests/pitr/test_shipped_config.py "
    "takes this backup through the shipped pgBackRest files",
}


# --- the docs' blocks ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    lang: str
    text: str
    answer: str | None  # the fenced block right after it, when that is its output (JSON or plain text)

    @property
    def is_transcript(self) -> bool:
        return any(line.startswith("$ ") for line in self.text.splitlines())


def blocks_of(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    fences: list[tuple[int, int, str, str]] = []
    index = 0
    while index < len(lines):
        opening = re.match(r"^\s*```(\S*)\s*$", lines[index])
        if opening:
            end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
            fences.append((index + 1, end, opening.group(1), "\n".join(lines[index + 1 : end])))
            index = end
        index += 1
    found = []
    for number, (line, end, lang, text) in enumerate(fences):
        answer = None
        if number + 1 < len(fences):
            start, _, following_lang, following_text = fences[number + 1]
            if following_lang in ("json", "") and all(not lines[i].strip() for i in range(end + 1, start - 1)):
                answer = following_text
        block = Block(str(path.relative_to(ROOT)), line, lang, text, answer)
        if lang in SHELL_LANGUAGES or (lang == "" and block.is_transcript):
            found.append(block)
    return found


def all_blocks() -> list[Block]:
    return [block for path in DOCS for block in blocks_of(path)]


def find(doc: str, selector: str) -> Block:
    matches = [block for block in all_blocks() if block.doc == doc and selector in f"{block.text}\n```"]
    assert len(matches) == 1, f"{doc}: {selector!r} matches {len(matches)} shell blocks, not one"
    return matches[0]


def test_every_shell_block_of_the_docs_is_run_or_excluded_with_a_reason():
    chosen: dict[tuple[str, int], str] = {}
    for doc, selector in [(run.doc, run.selector) for run in RUN] + list(EXCLUDED):
        block = find(doc, selector)
        assert (block.doc, block.line) not in chosen, f"{doc}:{block.line} is both {chosen[block.doc, block.line]}"
        chosen[block.doc, block.line] = selector
    unclassified = [
        f"{b.doc}:{b.line}: {b.text.splitlines()[0]}" for b in all_blocks() if (b.doc, b.line) not in chosen
    ]
    assert unclassified == [], "add each to RUN or EXCLUDED in tests/docs/test_docs_commands.py:\n" + "\n".join(
        unclassified
    )


# --- comparing an answer with the doc's ------------------------------------------------------------------------------
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
TOKEN = re.compile(r"[0-9a-f]{64}")


def same(shown: Any, got: Any, where: str = "$") -> list[str]:
    """Where `got` differs from the answer the doc shows; times, tokens and float measurements may differ."""
    if isinstance(shown, dict):
        if not isinstance(got, dict):
            return [f"{where}: {got!r} is not an object"]
        if set(shown) != set(got):
            return [f"{where}: fields {sorted(got)} are not the doc's {sorted(shown)}"]
        return [problem for key in shown for problem in same(shown[key], got[key], f"{where}.{key}")]
    if isinstance(shown, list):
        if not isinstance(got, list) or len(got) != len(shown):
            return [f"{where}: {got!r} is not a list of {len(shown)}"]
        return [problem for i, item in enumerate(shown) for problem in same(item, got[i], f"{where}[{i}]")]
    if isinstance(shown, str) and ISO_TIME.fullmatch(shown):
        return [] if isinstance(got, str) and ISO_TIME.fullmatch(got) else [f"{where}: {got!r} is not a time"]
    if isinstance(shown, str) and TOKEN.fullmatch(shown):
        return [] if isinstance(got, str) and TOKEN.fullmatch(got) else [f"{where}: {got!r} is not a token"]
    if isinstance(shown, float):
        return [] if isinstance(got, int | float) else [f"{where}: {got!r} is not a number"]
    return [] if shown == got else [f"{where}: {got!r}, the doc shows {shown!r}"]


def as_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def line_matches(shown: str, got: str) -> bool:
    shown_json, got_json = as_json(shown), as_json(got)
    if isinstance(shown_json, dict):
        return isinstance(got_json, dict) and not same(shown_json, got_json)
    return ISO_TIME.sub("<time>", shown).strip() == ISO_TIME.sub("<time>", got).strip()


def missing_lines(shown: list[str], got: list[str]) -> list[str]:
    """The doc's lines not found, in order, among what the command printed (the doc may leave lines out)."""
    position = 0
    for number, line in enumerate(shown):
        while position < len(got) and not line_matches(line, got[position]):
            position += 1
        if position == len(got):
            return shown[number:]
        position += 1
    return []


# --- a terminal: bash with the variables of earlier blocks, and every curl call recorded --------------------------
@dataclass
class Call:
    arguments: list[str]
    status: int
    body: str


@dataclass
class Result:
    code: int
    output: str
    calls: list[Call] = field(default_factory=list)


class Terminal:
    def __init__(self, env: dict[str, str], directory: Path, substitutions: dict[str, str]) -> None:
        self.directory = directory
        self.state = directory / "variables.sh"
        self.state.write_text("")
        self.calls = directory / "calls"
        self.calls.mkdir()
        shim = directory / "bin"
        shim.mkdir()
        assert CURL, "curl is not installed"
        (shim / "curl").write_text(
            "#!/bin/bash\nset -o pipefail\n"
            'call="$ITSM_DOCS_CALLS/$(date +%s%N)"\n'
            'printf \'%s\\n\' "$@" > "$call.arguments"\n'
            f'{CURL} -D "$call.headers" "$@" | tee "$call.body"\n'
        )
        (shim / "curl").chmod(0o755)
        self.env = {**env, "PATH": f"{shim}:{env['PATH']}", "ITSM_DOCS_CALLS": str(self.calls)}
        self.substitutions = substitutions

    def substitute(self, text: str) -> str:
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        return text

    def run(self, script: str, *, errexit: bool = True, timeout: float = 300) -> Result:
        """Run `script` in bash, stopping at the first failing command (`errexit`, for a block: a transcript line
        such as `cmd; echo "exit=$?"` runs as a terminal would), with the variables earlier scripts set."""
        script = self.substitute(script)
        assigned = sorted(set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", script, re.MULTILINE)))
        keep = "".join(f"declare -p {name} >> {self.state}\n" for name in assigned)
        program = f"set {'-eu' if errexit else '-u'} -o pipefail\nsource {self.state}\n{script}\n{keep}"
        completed = subprocess.run(
            ["bash", "-c", program],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(completed.returncode, completed.stdout, self._calls())

    def _calls(self) -> list[Call]:
        calls = []
        for arguments in sorted(self.calls.glob("*.arguments")):
            stem = arguments.with_suffix("")
            headers = Path(f"{stem}.headers").read_text() if Path(f"{stem}.headers").exists() else ""
            statuses = re.findall(r"^HTTP/\S+ (\d{3})", headers, re.MULTILINE)
            calls.append(
                Call(
                    arguments.read_text().splitlines(),
                    int(statuses[-1]) if statuses else 0,
                    Path(f"{stem}.body").read_text(),
                )
            )
        for leftover in self.calls.iterdir():
            leftover.unlink()
        return calls


def check_block(terminal: Terminal, run: Run) -> list[str]:
    """Run one RUN entry's block; return what differs from the doc (empty when the block does what it says)."""
    block = find(run.doc, run.selector)
    where = f"{block.doc}:{block.line}"
    if block.is_transcript:
        return check_transcript(terminal, block, run)
    result = terminal.run(block.text)
    problems = [] if result.code == 0 else [f"{where} exited {result.code}:\n{result.output[-3000:]}"]
    statuses = tuple(call.status for call in result.calls)
    if statuses != run.statuses:
        problems.append(f"{where}: curl answered {statuses}, expected {run.statuses}:\n{result.output[-3000:]}")
    if block.answer is not None and run.compare != "none" and not problems:
        shown = as_json(terminal.substitute(block.answer))
        got = as_json(result.calls[-1].body if result.calls else result.output)
        if shown is not None:
            if run.compare == "keys":
                shown, got = dict.fromkeys(shown), dict.fromkeys(got or {})
            problems += [f"{where}: {problem}" for problem in same(shown, got)]
    return problems


def check_transcript(terminal: Terminal, block: Block, run: Run) -> list[str]:
    steps: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip():
            steps[-1][1].append(terminal.substitute(line))
    problems, statuses = [], []
    for command, shown in steps:
        result = terminal.run(command, errexit=False)
        statuses += [call.status for call in result.calls]
        if result.code != 0:
            problems.append(f"{block.doc}:{block.line}: `{command}` exited {result.code}:\n{result.output[-2000:]}")
            continue
        missing = missing_lines(shown, [line.rstrip("\r") for line in result.output.splitlines() if line.strip()])
        if missing:
            problems.append(f"{block.doc}:{block.line}: `{command}` printed\n{result.output}\nnot {missing}")
    if tuple(statuses) != run.statuses:
        problems.append(f"{block.doc}:{block.line}: curl answered {tuple(statuses)}, expected {run.statuses}")
    return problems


# --- the platform, started as the README says ---------------------------------------------------------------------
@dataclass
class Platform:
    port: int
    env: dict[str, str]
    passwords: dict[str, str]
    log: Path
    mailbox: DovecotMailbox


def server_params(**overrides: Any) -> dict[str, Any]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    params = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"], "dbname": "postgres"}
    if db["PASSWORD"]:
        params["password"] = db["PASSWORD"]
    return {**params, **overrides}


def wait_past_backups_scheduled_soon(minutes: int = 6) -> None:
    """Beat makes backups at fixed times (:05 every hour, ...). One in the next minutes would take backup #1, which
    the runbook's transcripts name: start after it instead."""
    from itsm_project.celery import app

    now = datetime.now(UTC)
    soon = [
        entry["schedule"].remaining_estimate(now)
        for entry in app.conf.beat_schedule.values()
        if entry["task"] == "itsm.tasks.backups.scheduled_backup"
    ]
    wait = min(soon, default=timedelta(hours=1))
    if wait < timedelta(minutes=minutes):
        time.sleep(wait.total_seconds() + 60)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if REDIS_SERVER is None:
        pytest.skip("no redis-server: apt-get install redis-server")
    directory = tmp_path_factory.mktemp("docs")
    name = f"itsm_docs_{secrets.token_hex(4)}"  # no such database yet: make run creates it
    params = server_params()
    password = f":{params['password']}" if params.get("password") else ""
    database_url = f"postgres://{params['user']}{password}@{params['host']}:{params['port']}/{name}"
    redis_port, port = free_port(), free_port()
    env = base_env(
        DATABASE_URL=database_url,
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        PORT=str(port),
        ITSM_GUNICORN_WORKERS="2",
        ITSM_VAR_DIR=str(directory / "var"),
        ITSM_STATIC_ROOT=str(directory / "static"),
        PROMETHEUS_MULTIPROC_DIR=str(directory / "metrics"),
        ITSM_STOP_GRACE_SECONDS="15",
    )
    # Under `make test DATABASE_URL=…`, MAKEFLAGS carries the outer command line into make run, where it would win
    # over this environment; and none of the operator's own settings may leak in.
    for variable in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "BACKUP_S3_BUCKET", "BACKUP_DIR"):
        env.pop(variable, None)
    for variable in ("ITSM_MEDIA_ROOT", "PROMETHEUS_URL"):
        env.pop(variable, None)
    wait_past_backups_scheduled_soon()
    log = directory / "make-run.log"
    try:
        with (
            running_dovecot(tls=False) as dovecot,
            redis_server(redis_port, directory, directory / "redis.log", persistent=True).start(),
        ):
            # The README's mailbox: make run reads it (ITSM_MAIL_INBOX_URL), the tour appends to it.
            mailbox = dovecot.mailbox()
            env["ITSM_MAIL_INBOX_URL"] = mailbox.url
            yield from _make_run(env, log, port, mailbox)
    finally:
        conn = psycopg2.connect(**server_params())
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.close()


def _make_run(env: dict[str, str], log: Path, port: int, mailbox: DovecotMailbox) -> Iterator[Platform]:
    with started(["make", "run"], env, log) as make:
        try:
            wait_for(f"http://127.0.0.1:{port}/health/", timeout=240)
            output = log.read_text()
            logins = re.findall(r"^\s+(admin|agent|requester)\s+(\S+)\s+(\S+)$", output, re.MULTILINE)
            yield Platform(port, env, {username: secret for _, username, secret in logins}, log, mailbox)
        finally:
            stop_make_run(make, log)


def stop_make_run(make: subprocess.Popen[bytes], log: Path) -> None:
    """Ctrl-C, as the README says: SIGINT to make's process group; run_platform stops its three process groups."""
    leaders = [int(pid) for pid in re.findall(r"started \w+ \(pid (\d+)\)", log.read_text())]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(make.pid, signal.SIGINT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "all stopped" not in log.read_text():
        time.sleep(0.5)
    make.wait(timeout=30)
    assert not [pid for pid in leaders if group_alive(pid)], "make run left a process group behind"


@pytest.fixture(scope="module")
def terminal(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Terminal:
    passwords = platform.passwords
    substitutions = {
        "127.0.0.1:8000": f"127.0.0.1:{platform.port}",
        "PRINTED-PASSWORD": passwords["agent"],
        "AGENT-PASSWORD": passwords["agent"],
        "REQUESTER-PASSWORD": passwords["requester"],
        "ADMIN-PASSWORD": passwords["admin"],
        "support:MAILBOX-PASSWORD@127.0.0.1:1143": (
            f"{platform.mailbox.username}:{platform.mailbox.password}@127.0.0.1:{platform.mailbox.server.port}"
        ),
    }
    return Terminal(platform.env, tmp_path_factory.mktemp("terminal"), substitutions)


@pytest.mark.slow
def test_make_run_creates_the_missing_database_and_prints_the_three_logins(platform: Platform):
    output = platform.log.read_text()
    assert re.search(r'Created the database "itsm_docs_[0-9a-f]{8}"', output), output[-3000:]
    assert set(platform.passwords) == {"admin", "agent", "requester"}, output[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("run", RUN, ids=[f"{run.doc}:{run.selector[:40]}" for run in RUN])
def test_the_doc_block_runs_as_written_and_answers_what_the_doc_shows(terminal: Terminal, run: Run):
    problems = check_block(terminal, run)
    assert problems == [], "\n\n".join(problems)


# --- the manage.py commands the compose and kubectl commands wrap -----------------------------------------------
WRAPPED = re.compile(
    r"(?:docker compose (?:exec|run --rm)(?: -T)? (?:backend|celery)|kubectl exec [^`\n]*? --) python manage\.py "
    r"((?:[^`\n|;\"]|\"[^\"\n]*\")+)"
)


def container_commands() -> list[tuple[str, str]]:
    """(doc, arguments) of every `python manage.py …` run inside a container by a doc, in blocks and in prose."""
    found = []
    for path in DOCS:
        for arguments in WRAPPED.findall(path.read_text()):
            found.append((str(path.relative_to(ROOT)), arguments.strip()))
    return sorted(set(found))


@pytest.mark.slow
def test_container_commands(platform: Platform, terminal: Terminal):
    """Inside the image `python manage.py` is the same program as `.venv/bin/python manage.py` here: each command a
    compose or kubectl line wraps runs here against the platform (the wrapper itself cannot)."""
    commands = container_commands()
    assert len(commands) > 10, commands
    problems = []
    for doc, arguments in commands:
        if arguments in CONTAINER_COMMANDS_NOT_RUN:
            continue
        result = terminal.run(f".venv/bin/python manage.py {arguments}")
        if result.code != 0:
            problems.append(f"{doc}: manage.py {arguments} exited {result.code}:\n{result.output[-1500:]}")
    assert problems == [], "\n\n".join(problems)


# --- the statement that ends long-running queries, on a PostgreSQL of this test's own -----------------------------
@pytest.mark.slow
def test_the_terminate_statement_spares_backups_and_vacuum(tmp_path: Path):
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL server binaries in {PG_BIN}: apt-get install postgresql")
    block = find("docs/operations.md", "pg_terminate_backend(pid)")
    root = postgres_owned_dir("itsm-docs-terminate-")
    try:
        postgres_initdb(root / "data", root / "postgres.log")
        port = free_port()
        with postgres_server(root / "data", port, root / "postgres.log").start():
            wait_for_postgres(port, 30)
            setup = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
            setup.autocommit = True
            setup.cursor().execute("CREATE DATABASE itsm_db")
            setup.close()
            sessions = Sessions(port)
            try:
                sessions.start("itsm-backup", "SELECT pg_sleep(600)")  # the manifest of a running backup
                sessions.start("pg_dump", "SELECT pg_sleep(600)")
                sessions.start("pg_restore", "SELECT pg_sleep(600)")
                sessions.start("report", "SELECT pg_sleep(600)")  # the long query to end
                sessions.start(
                    "psql", "CREATE TABLE t (id int); BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE", hold=True
                )
                sessions.start("psql-vacuum", "VACUUM t")  # waits for the lock, as a VACUUM behind a long transaction
                sessions.wait_until_running(6)
                # The doc's statement, with psql pointed at this server and "more than five minutes" made "now".
                script = block.text.replace(
                    "docker compose exec postgres psql", f"psql -h 127.0.0.1 -p {port}"
                ).replace("interval '5 minutes'", "interval '0 seconds'")
                result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
                assert result.returncode == 0, result.stderr
                assert "(2 rows)" in result.stdout, result.stdout
                ended = sessions.ended(timeout=30)
                assert ended == {"report", "psql"}, (ended, result.stdout)
                assert sessions.finished("psql-vacuum", timeout=30), "VACUUM did not get its lock and finish"
            finally:
                sessions.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Sessions:
    """Client sessions of the test's PostgreSQL, each in a thread, named by application_name."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.errors: dict[str, str] = {}
        self.done: dict[str, threading.Event] = {}
        self.connections: dict[str, Any] = {}

    def start(self, name: str, statements: str, *, hold: bool = False) -> None:
        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="itsm_db", application_name=name
        )
        conn.autocommit = True
        self.connections[name] = conn
        self.done[name] = threading.Event()

        def work() -> None:
            try:
                with conn.cursor() as cursor:
                    for statement in statements.split("; "):
                        cursor.execute(statement)
                if hold:  # keep the transaction open, idle, until the session is ended
                    while not self.done[name].wait(0.2):
                        conn.poll()
            except psycopg2.Error as exc:
                self.errors[name] = str(exc)
            finally:
                self.done[name].set()

        threading.Thread(target=work, daemon=True).start()
        if hold:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not self._holding(name):
                time.sleep(0.05)

    def _holding(self, name: str) -> bool:
        return self._states().get(name) == "idle in transaction"

    def _states(self) -> dict[str, str]:
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT application_name, state FROM pg_stat_activity WHERE datname = 'itsm_db'")
                return dict(cursor.fetchall())
        finally:
            conn.close()

    def wait_until_running(self, count: int) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            states = self._states()
            if len([s for s in states.values() if s in ("active", "idle in transaction")]) >= count:
                return
            time.sleep(0.1)
        raise AssertionError(f"sessions not all running: {self._states()}")

    def ended(self, timeout: float) -> set[str]:
        """The sessions the server terminated (their connection reports it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.errors) < 2:
            time.sleep(0.1)
        time.sleep(0.5)
        return {name for name, error in self.errors.items() if "terminat" in error}

    def finished(self, name: str, timeout: float) -> bool:
        return self.done[name].wait(timeout) and name not in self.errors

    def close(self) -> None:
        for conn in self.connections.values():
            with contextlib.suppress(Exception):
                conn.cancel()
            with contextlib.suppress(Exception):
                conn.close()
        for event in self.done.values():
            event.set()
