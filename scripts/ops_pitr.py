"""Point-in-time recovery checks of `make ops-check` (scripts/validate_ops.py): the pgBackRest wiring of
docker-compose.yml and k8s/ read for what it means. PostgreSQL's archive_command pushes to the stanza the platform
names in BACKUP_PITR_STANZA; the two pgBackRest files describe the same repository (encrypted); the cipher pass
and the repository's keys reach every process that runs pgbackrest; the workers find their configuration where
BACKUP_PITR_CONFIG says and reach the TLS server on its port. tests/pitr/test_shipped_config.py runs the same
files against a loopback cluster; these checks keep the manifests from drifting away from them.

Each function takes the root of a checkout (or of the self-test's broken copy), returns a one-line summary, and
raises PitrWiringProblem naming the file and what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import ops_k8s
import yaml

DATABASE_CONF = "docker/postgres/pgbackrest.conf"
REPOSITORY_CONF = "docker/pgbackrest.conf"
ARCHIVE_COMMAND = re.compile(r"^pgbackrest --config=(\S+) --stanza=(\S+) archive-push %p$")
# What pgBackRest needs besides its files: the repository's place and keys, and the pass.
REPOSITORY_VARIABLES = (
    "PGBACKREST_REPO1_S3_BUCKET",
    "PGBACKREST_REPO1_S3_KEY",
    "PGBACKREST_REPO1_S3_KEY_SECRET",
    "PGBACKREST_REPO1_CIPHER_PASS",
)
# The [global] options both ends must agree on: the same repository, read and written the same way.
SHARED_OPTIONS = re.compile(r"^(repo1-|compress-type$)")
TLS_PORT = 8432


class PitrWiringProblem(Exception):
    """The message names each file and what is wrong with it."""


def parse_conf(text: str) -> dict[str, dict[str, str]]:
    """pgBackRest's INI file: {section: {option: value}}."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif current is not None and "=" in line:
            key, value = line.split("=", 1)
            current[key.strip()] = value.strip()
    return sections


def _confs(root: Path) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    return parse_conf((root / DATABASE_CONF).read_text()), parse_conf((root / REPOSITORY_CONF).read_text())


def _archive(settings: list[str], where: str) -> tuple[str, str, list[str]]:
    """The config path and stanza of a postgres command's archive_command, and what is missing around it."""
    options = dict(settings[i + 1].split("=", 1) for i, word in enumerate(settings) if word == "-c")
    problems = [
        f"{where}: {name} is {options.get(name)!r}, not {value!r}"
        for name, value in (("archive_mode", "on"), ("wal_level", "replica"))
        if options.get(name) != value
    ]
    if "archive_timeout" not in options:
        problems.append(f"{where}: no archive_timeout (the RPO when little is written)")
    match = ARCHIVE_COMMAND.match(options.get("archive_command", ""))
    if match is None:
        problems.append(f"{where}: archive_command {options.get('archive_command')!r} is not pgbackrest archive-push")
        return "", "", problems
    return match.group(1), match.group(2), problems


def _conf_problems(root: Path, stanza: str) -> list[str]:
    database, repository = _confs(root)
    problems = []
    for path, conf in ((DATABASE_CONF, database), (REPOSITORY_CONF, repository)):
        if stanza not in conf:
            problems.append(f"{path}: no [{stanza}] section, the stanza archive_command pushes to")
        if not conf.get("global", {}).get("repo1-cipher-type"):
            problems.append(f"{path}: no repo1-cipher-type: the repository would not be encrypted")
    shared = {
        path: {k: v for k, v in conf.get("global", {}).items() if SHARED_OPTIONS.match(k)}
        for path, conf in ((DATABASE_CONF, database), (REPOSITORY_CONF, repository))
    }
    if shared[DATABASE_CONF] != shared[REPOSITORY_CONF]:
        diff = sorted(set(shared[DATABASE_CONF].items()) ^ set(shared[REPOSITORY_CONF].items()))
        problems.append(f"{DATABASE_CONF} and {REPOSITORY_CONF} describe different repositories: {diff}")
    auth = database.get("global", {}).get("tls-server-auth", "")
    if not auth.endswith(f"={stanza}"):
        problems.append(f"{DATABASE_CONF}: tls-server-auth {auth!r} does not admit the workers to stanza {stanza}")
    server_port = database.get("global", {}).get("tls-server-port", str(TLS_PORT))
    client_port = repository.get(stanza, {}).get("pg1-host-port", str(TLS_PORT))
    if server_port != client_port:
        problems.append(f"the TLS server listens on {server_port}, the workers ask {client_port}")
    return problems


def _mounted_at(volumes: list[str], source: str) -> str | None:
    for volume in volumes:
        parts = str(volume).split(":")
        if parts[0] == f"./{source}":
            return parts[1]
    return None


def _required(value: Any) -> bool:
    """A compose value taken from a variable that compose refuses to start without."""
    return isinstance(value, str) and value.startswith("${") and ":?" in value


def check_compose(root: Path) -> str:
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    services = compose["services"]
    problems: list[str] = []
    config, stanza, found = _archive(services["postgres"]["command"], "docker-compose.yml postgres")
    problems += found
    app_stanza = compose["x-app"]["environment"].get("BACKUP_PITR_STANZA")
    server_stanza = services.get("pgbackrest", {}).get("environment", {}).get("PGBACKREST_STANZA")
    if not (stanza == app_stanza == server_stanza):
        problems.append(
            f"docker-compose.yml: archive_command pushes to stanza {stanza!r}, the app's BACKUP_PITR_STANZA is "
            f"{app_stanza!r}, the pgbackrest service's PGBACKREST_STANZA {server_stanza!r}"
        )
    if _mounted_at(services["postgres"].get("volumes", []), DATABASE_CONF) != config:
        problems.append(f"docker-compose.yml postgres: archive_command reads {config}, where {DATABASE_CONF} is not")
    for name in ("postgres", "pgbackrest", "celery", "backend"):
        environment = services.get(name, {}).get("environment", {})
        missing = [v for v in REPOSITORY_VARIABLES if not _required(environment.get(v))]
        if missing:
            problems.append(f"docker-compose.yml {name}: {missing} not set from required variables")
    for name in ("celery", "backend"):
        service = services[name]
        target = _mounted_at(service.get("volumes", []), REPOSITORY_CONF)
        if target is None or target != service["environment"].get("BACKUP_PITR_CONFIG"):
            problems.append(f"docker-compose.yml {name}: BACKUP_PITR_CONFIG is not where {REPOSITORY_CONF} is mounted")
    host = _confs(root)[1].get(stanza, {}).get("pg1-host")
    if host not in services:
        problems.append(f"{REPOSITORY_CONF}: pg1-host {host!r} is no service of docker-compose.yml")
    problems += _conf_problems(root, stanza)
    if problems:
        raise PitrWiringProblem("\n".join(problems))
    return (
        f"archive_command pushes to stanza {stanza}, the app's BACKUP_PITR_STANZA; both files describe one encrypted "
        f"repository; the cipher pass and keys reach postgres, pgbackrest, celery and backend; workers reach {host}"
    )


def _container(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def _env_from_secrets(container: dict[str, Any]) -> list[str]:
    return [e["secretRef"]["name"] for e in container.get("envFrom") or [] if "secretRef" in e]


def _subpath_mount(container: dict[str, Any], key: str) -> str | None:
    return next((m["mountPath"] for m in container.get("volumeMounts") or [] if m.get("subPath") == key), None)


def check_k8s(root: Path) -> str:
    docs = ops_k8s.documents(root)
    postgres = ops_k8s.find(docs, "StatefulSet", "postgres")
    worker = ops_k8s.find(docs, "Deployment", ops_k8s.WORKER[0])
    configmap = ops_k8s.find(docs, "ConfigMap", "itsm-pgbackrest")
    if postgres is None or worker is None or configmap is None:
        raise PitrWiringProblem("k8s/: no StatefulSet postgres, Deployment itsm-celery or ConfigMap itsm-pgbackrest")
    problems: list[str] = []
    database, sidecar = _container(postgres, "postgres"), _container(postgres, "pgbackrest")
    celery = _container(worker, ops_k8s.WORKER[1])
    config, stanza, found = _archive(database["args"], "k8s/postgres.yaml postgres")
    problems += found
    if not (stanza == _env(celery).get("BACKUP_PITR_STANZA") == _env(sidecar).get("PGBACKREST_STANZA")):
        problems.append(
            f"k8s/: archive_command pushes to stanza {stanza!r}, the workers' BACKUP_PITR_STANZA is "
            f"{_env(celery).get('BACKUP_PITR_STANZA')!r}, the sidecar's {_env(sidecar).get('PGBACKREST_STANZA')!r}"
        )
    for key, source in (("database.conf", DATABASE_CONF), ("repository.conf", REPOSITORY_CONF)):
        if (configmap.get("data") or {}).get(key) != (root / source).read_text():
            problems.append(f"k8s/pgbackrest.yaml: ConfigMap itsm-pgbackrest {key} is not {source}")
    if _subpath_mount(database, "database.conf") != config:
        problems.append(f"k8s/postgres.yaml: archive_command reads {config}, where database.conf is not mounted")
    if _subpath_mount(celery, "repository.conf") != _env(celery).get("BACKUP_PITR_CONFIG"):
        problems.append("k8s/worker-deployment.yaml: BACKUP_PITR_CONFIG is not where repository.conf is mounted")
    secret = ops_k8s.find(docs, "Secret", "itsm-pgbackrest")
    keys = set((secret or {}).get("stringData") or {}) | set((secret or {}).get("data") or {})
    if missing := [v for v in REPOSITORY_VARIABLES if v not in keys]:
        problems.append(f"k8s/pgbackrest.yaml: Secret itsm-pgbackrest lacks {missing}")
    for where, container in (("postgres", database), ("pgbackrest", sidecar), ("celery", celery)):
        if "itsm-pgbackrest" not in _env_from_secrets(container):
            problems.append(f"k8s/: container {where} does not take the cipher pass and keys (Secret itsm-pgbackrest)")
    pgdata = _env(database).get("PGDATA")
    for where, container in (("postgres", database), ("pgbackrest", sidecar), ("celery", celery)):
        if _env(container).get("PGBACKREST_PG1_PATH") != pgdata:
            problems.append(f"k8s/: container {where}'s PGBACKREST_PG1_PATH is not PGDATA ({pgdata})")
    host = _env(celery).get("PGBACKREST_PG1_HOST")
    service = ops_k8s.find(docs, "Service", str(host))
    if service is None or service["spec"]["selector"] != postgres["spec"]["selector"]["matchLabels"]:
        problems.append(f"k8s/worker-deployment.yaml: PGBACKREST_PG1_HOST {host!r} is not the postgres pods' Service")
    if TLS_PORT not in [p["containerPort"] for p in sidecar.get("ports") or []]:
        problems.append(f"k8s/postgres.yaml: the pgbackrest sidecar does not declare port {TLS_PORT}")
    if not ops_k8s.reaches(docs, worker, postgres, TLS_PORT):
        problems.append(f"networkpolicy: itsm-celery may not reach postgres on {TLS_PORT} (pgBackRest's TLS server)")
    if problems:
        raise PitrWiringProblem("\n".join(problems))
    return (
        f"archive_command pushes to stanza {stanza}, the workers' BACKUP_PITR_STANZA; ConfigMap itsm-pgbackrest "
        f"is the docker/ files; Secret itsm-pgbackrest reaches postgres, the sidecar and the workers; "
        f"itsm-celery reaches {host}:{TLS_PORT}"
    )
