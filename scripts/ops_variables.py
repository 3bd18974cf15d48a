"""Every production variable reaches every Django process, in docker compose and in Kubernetes.

Part of `make ops-check` (scripts/validate_ops.py). The variables are those without which `check --deploy` refuses to
start (itsm/checks.py) or the platform quietly does less: e-mail, the Alertmanager intake, silences, PromQL checks,
offsite backups. In compose each must be in the `environment` of the app services (`.env` is optional, so it does
not count); in Kubernetes each must come from the ConfigMap or, for a secret, from a key a Secret of k8s/ has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# Secrets: in Kubernetes from a Secret, never from the ConfigMap or a literal value.
PRODUCTION_SECRETS = (
    "DJANGO_SECRET_KEY",
    "DATABASE_URL",
    "ITSM_DIRECT_DATABASE_URL",
    "EMAIL_URL",
    "ITSM_ALERTMANAGER_TOKEN",
    "ITSM_METRICS_TOKEN",
    "BACKUP_S3_ACCESS_KEY_ID",
    "BACKUP_S3_SECRET_ACCESS_KEY",
    "BACKUP_ENCRYPTION_KEY",
)
PRODUCTION_SETTINGS = (
    "DJANGO_ALLOWED_HOSTS",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "ITSM_VAR_DIR",
    "ITSM_DB_TRANSACTION_POOLING",
    "PROMETHEUS_MULTIPROC_DIR",
    "ITSM_PUBLIC_URL",
    "ITSM_DEFAULT_FROM_EMAIL",
    "ALERTMANAGER_URL",
    "PROMETHEUS_URL",
    "BACKUP_S3_BUCKET",
    "BACKUP_S3_PREFIX",
    "BACKUP_S3_ENDPOINT_URL",
    "BACKUP_S3_REGION",
)
COMPOSE_APP_SERVICES = ("backend", "celery", "celery-beat")
# The Django containers of k8s/: each runs `check --deploy` before anything else (docker/entrypoint.sh).
K8S_APP_WORKLOADS = {
    "api-deployment.yaml": "django",
    "worker-deployment.yaml": "celery",
    "beat-deployment.yaml": "celery-beat",
    "migrate-job.yaml": "migrate",
}


class VariablesMissing(Exception):
    """The message lists each variable and where it is missing."""


def _documents(root: Path) -> list[dict[str, Any]]:
    documents = []
    for path in sorted((root / "k8s").glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict)]
    return documents


def _compose_problems(root: Path) -> list[str]:
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    problems = []
    for service in COMPOSE_APP_SERVICES:
        environment = services[service].get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        problems += [
            f"compose {service}: {name} is not in its environment"
            for name in (*PRODUCTION_SECRETS, *PRODUCTION_SETTINGS)
            if name not in environment
        ]
    return problems


def _container(root: Path, file: str, name: str) -> dict[str, Any]:
    for doc in yaml.safe_load_all((root / "k8s" / file).read_text()):
        spec = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            if container["name"] == name:
                return dict(container)
    raise VariablesMissing(f"k8s/{file}: no container {name}")


def _kubernetes_problems(root: Path) -> list[str]:
    documents = _documents(root)
    config_maps = {
        doc["metadata"]["name"]: set(doc.get("data") or {}) for doc in documents if doc["kind"] == "ConfigMap"
    }
    secrets = {
        doc["metadata"]["name"]: set(doc.get("stringData") or {}) | set(doc.get("data") or {})
        for doc in documents
        if doc["kind"] == "Secret"
    }
    problems = []
    for file, name in K8S_APP_WORKLOADS.items():
        container = _container(root, file, name)
        # Where each variable comes from: "configmap", "secret", "value", or a problem.
        sources: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                for key in config_maps.get(source["configMapRef"]["name"], set()):
                    sources[key] = "configmap"
            if "secretRef" in source:
                for key in secrets.get(source["secretRef"]["name"], set()):
                    sources[key] = "secret"
        for variable in container.get("env") or []:
            reference = (variable.get("valueFrom") or {}).get("secretKeyRef")
            if reference is None:
                sources[variable["name"]] = "value"
            elif reference["key"] in secrets.get(reference["name"], set()):
                sources[variable["name"]] = "secret"
            else:
                problems.append(f"k8s/{file}: {variable['name']} reads key {reference['key']} that no Secret has")
        for variable in PRODUCTION_SECRETS:
            if sources.get(variable) != "secret":
                where = sources.get(variable, "nowhere")
                problems.append(f"k8s/{file}: secret {variable} comes from {where}, not from a Secret")
        problems += [
            f"k8s/{file}: {variable} is not set" for variable in PRODUCTION_SETTINGS if variable not in sources
        ]
    return problems


def check_production_variables(root: Path) -> str:
    problems = _compose_problems(root) + _kubernetes_problems(root)
    if problems:
        raise VariablesMissing("production variables not wired:\n" + "\n".join(problems))
    count = len(PRODUCTION_SECRETS) + len(PRODUCTION_SETTINGS)
    return (
        f"{count} variables in {len(COMPOSE_APP_SERVICES)} compose services and {len(K8S_APP_WORKLOADS)} "
        f"Kubernetes workloads ({len(PRODUCTION_SECRETS)} secrets from a Secret)"
    )
