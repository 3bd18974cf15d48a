"""Kubernetes checks of `make ops-check` (scripts/validate_ops.py) that read what the manifests mean, not only
their schema: where the backups live, what the ingress routes, what the NetworkPolicy lets Prometheus scrape.

Each function takes the root of a checkout (or of the self-test's broken copy), returns a one-line summary, and
raises K8sProblem naming the file and what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

# The worker Deployment takes the scheduled backups (the `backups` queue).
WORKER = ("itsm-celery", "celery")
# docs/runbooks/backup-restore.md says where `manage.py restore` runs: `kubectl exec ... deployment/NAME`.
RUNBOOK = "docs/runbooks/backup-restore.md"
RESTORE_COMMAND = re.compile(r"kubectl exec(?: -it)? deployment/([\w-]+) -n itsm-system -- python manage\.py")


class K8sProblem(Exception):
    """The message names each manifest and what is wrong with it."""


def documents(root: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted((root / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") != "Kustomization":
                found.append({**doc, "_file": f"k8s/{path.name}"})
    return found


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name), None)


def config_value(docs: list[dict[str, Any]], name: str) -> str | None:
    for doc in docs:
        if doc["kind"] == "ConfigMap" and name in (doc.get("data") or {}):
            return str(doc["data"][name])
    return None


def backup_dir(docs: list[dict[str, Any]]) -> str:
    """BACKUP_DIR as itsm_project/settings.py derives it from the ConfigMap (default ITSM_VAR_DIR/backups)."""
    explicit = config_value(docs, "BACKUP_DIR")
    if explicit:
        return explicit.rstrip("/")
    return (config_value(docs, "ITSM_VAR_DIR") or "/var/lib/itsm").rstrip("/") + "/backups"


def volume_behind(deployment: dict[str, Any], container_name: str, path: str) -> dict[str, Any] | None:
    """The volume a container sees at `path`: the mount with the longest mountPath containing it."""
    spec = deployment["spec"]["template"]["spec"]
    container = next((c for c in spec["containers"] if c["name"] == container_name), None)
    if container is None:
        return None
    mounts = [
        m
        for m in container.get("volumeMounts") or []
        if path == m["mountPath"].rstrip("/") or path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    if not mounts:
        return None
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    return next((v for v in spec.get("volumes") or [] if v["name"] == mount["name"]), None)


def restore_workload(root: Path) -> str:
    names = set(RESTORE_COMMAND.findall((root / RUNBOOK).read_text()))
    if len(names) != 1:
        raise K8sProblem(f"{RUNBOOK}: expected one `kubectl exec deployment/NAME` for manage.py, found {names}")
    return names.pop()


def check_backup_claim(root: Path) -> str:
    """BACKUP_DIR is a PersistentVolumeClaim in the workers and in the pods where the runbook's restore runs, the
    same claim, ReadWriteMany when those pods can be on different nodes."""
    docs = documents(root)
    directory = backup_dir(docs)
    restore = restore_workload(root)
    problems: list[str] = []
    claims: dict[str, str] = {}
    for name, container in (WORKER, (restore, None)):
        deployment = find(docs, "Deployment", name)
        if deployment is None:
            problems.append(f"no Deployment {name}")
            continue
        spec = deployment["spec"]["template"]["spec"]
        container = container or spec["containers"][0]["name"]
        volume = volume_behind(deployment, container, directory)
        claim = ((volume or {}).get("persistentVolumeClaim") or {}).get("claimName")
        if claim is None:
            kind = next((key for key in volume or {} if key != "name"), "no volume")
            problems.append(f"{deployment['_file']}: {name}/{container} has {directory} on {kind}, not a claim")
            continue
        claims[name] = claim
    if len(set(claims.values())) > 1:
        problems.append(f"the worker and the restore command see different claims: {claims}")
    for claim in set(claims.values()):
        pvc = find(docs, "PersistentVolumeClaim", claim)
        if pvc is None:
            problems.append(f"no PersistentVolumeClaim {claim} in k8s/")
        elif "ReadWriteMany" not in pvc["spec"].get("accessModes", []):
            problems.append(
                f"{pvc['_file']}: {claim} is {pvc['spec'].get('accessModes')}; the workers and the {restore} pods "
                "run on several nodes, so it must be ReadWriteMany"
            )
    if problems:
        raise K8sProblem("backups not on a shared claim:\n" + "\n".join(problems))
    return (
        f"{directory} on claim {claims[WORKER[0]]} (ReadWriteMany) in {WORKER[0]} and in {restore}, "
        f"where {RUNBOOK} runs the restore"
    )


# The compose Alertmanager's configuration, and the Kubernetes copy that differs only in the intake's address.
COMPOSE_ALERTMANAGER = "monitoring/alertmanager/alertmanager.yml"
K8S_ALERTMANAGER = "k8s/alertmanager/alertmanager.yml"
INTAKE_PATH = "/api/v1/alerts/alertmanager/"
IN_CLUSTER_URL = re.compile(
    r"http://(?P<service>[a-z0-9-]+)\.(?P<namespace>[a-z0-9-]+)\.svc(?:\.cluster\.local)?:(?P<port>\d+)(?P<path>/\S*)"
)


def _intake_urls(config: dict[str, Any]) -> list[str]:
    return [
        hook["url"]
        for receiver in config.get("receivers") or []
        for hook in receiver.get("webhook_configs") or []
        if hook.get("url", "").endswith(INTAKE_PATH)
    ]


def check_alertmanager_intake(root: Path) -> str:
    """k8s/alertmanager/alertmanager.yml is the compose configuration with the intake at the API Service's
    in-cluster address (name, namespace and port of k8s/api-service.yaml)."""
    compose = yaml.safe_load((root / COMPOSE_ALERTMANAGER).read_text())
    cluster = yaml.safe_load((root / K8S_ALERTMANAGER).read_text())
    problems: list[str] = []
    urls = sorted(set(_intake_urls(cluster)))
    compose_urls = sorted(set(_intake_urls(compose)))
    if len(urls) != 1 or len(compose_urls) != 1:
        raise K8sProblem(
            f"one intake URL expected: {K8S_ALERTMANAGER} has {urls}, {COMPOSE_ALERTMANAGER} {compose_urls}"
        )
    url = urls[0]
    match = IN_CLUSTER_URL.fullmatch(url)
    if match is None:
        problems.append(f"{K8S_ALERTMANAGER}: intake {url} is not http://SERVICE.NAMESPACE.svc:PORT{INTAKE_PATH}")
    else:
        service = find(documents(root), "Service", match["service"])
        ports = {int(p["port"]) for p in (service or {}).get("spec", {}).get("ports", [])}
        if service is None or service["metadata"].get("namespace") != match["namespace"]:
            problems.append(f"{K8S_ALERTMANAGER}: intake {url}: no Service {match['service']} in {match['namespace']}")
        elif int(match["port"]) not in ports:
            problems.append(f"{K8S_ALERTMANAGER}: intake {url}: Service {match['service']} has ports {sorted(ports)}")
        elif "api" not in str(service["spec"].get("selector")):
            problems.append(f"{K8S_ALERTMANAGER}: intake {url}: Service {match['service']} does not select the API")
    # Routes, receivers and inhibitions stay those of compose (the routing cases of validate_ops.py test both).
    same = yaml.safe_load((root / K8S_ALERTMANAGER).read_text().replace(url, compose_urls[0]))
    if same != compose:
        problems.append(f"{K8S_ALERTMANAGER} differs from {COMPOSE_ALERTMANAGER} in more than the intake address")
    if problems:
        raise K8sProblem("Alertmanager cannot reach the intake in Kubernetes:\n" + "\n".join(problems))
    return f"intake {url} (compose: {compose_urls[0]}); otherwise identical to {COMPOSE_ALERTMANAGER}"


# Public pages the ingress must route to the API: the status page and its JSON (itsm_project/urls.py).
INGRESS_ROUTES = ("/status/", "/status.json")
API_SERVICE = ("itsm-api", {"http", 8000})


def _path_matches(rule: dict[str, Any], request: str) -> bool:
    """Kubernetes' matching: Exact is the whole path; Prefix (and ImplementationSpecific, as ingress-nginx treats
    it) matches element by element, so /status matches /status/ but not /status.json."""
    path = rule["path"]
    if rule.get("pathType") == "Exact":
        return bool(request == path)
    wanted = [part for part in path.split("/") if part]
    return [part for part in request.split("/") if part][: len(wanted)] == wanted


def _route(docs: list[dict[str, Any]], request: str) -> dict[str, Any] | None:
    """The backend the longest matching path of any Ingress sends `request` to (Exact before Prefix)."""
    candidates = [
        path
        for doc in docs
        if doc["kind"] == "Ingress"
        for rule in doc["spec"].get("rules") or []
        for path in (rule.get("http") or {}).get("paths") or []
        if _path_matches(path, request)
    ]
    if not candidates:
        return None
    best = max(candidates, key=lambda p: (p.get("pathType") == "Exact", len(p["path"])))
    return dict(best["backend"].get("service") or {})


def check_ingress_routes(root: Path) -> str:
    docs = documents(root)
    problems = []
    for request in INGRESS_ROUTES:
        service = _route(docs, request)
        if service is None:
            problems.append(f"k8s/ingress.yaml: no path routes {request}")
            continue
        port = service.get("port") or {}
        if service.get("name") != API_SERVICE[0] or not {port.get("name"), port.get("number")} & API_SERVICE[1]:
            problems.append(f"k8s/ingress.yaml: {request} goes to {service}, not the API Service {API_SERVICE[0]}")
    if problems:
        raise K8sProblem("the ingress does not route the status page:\n" + "\n".join(problems))
    return f"{', '.join(INGRESS_ROUTES)} routed to Service {API_SERVICE[0]}"


# What Prometheus (a pod of the `monitoring` namespace) scrapes, by workload, and on which container port; and
# which exporter must reach which database. The NetworkPolicies of k8s/ must let each connection through.
MONITORING_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
SCRAPED = (
    ("Deployment", "itsm-api", 8000),
    ("Deployment", "itsm-celery", 9808),
    ("Deployment", "itsm-celery-beat", 9809),
    ("Deployment", "postgres-exporter", 9187),
    ("StatefulSet", "postgres-replica", 9187),
    ("Deployment", "redis-exporter", 9121),
    ("DaemonSet", "node-exporter", 9100),
)
EXPORTED = (
    ("postgres-exporter", "StatefulSet", "postgres", 5432),
    ("redis-exporter", "StatefulSet", "redis-broker", 6379),
    ("redis-exporter", "Deployment", "redis", 6379),
)


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions); an empty selector selects everything."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and present and labels[key] in values)
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


def _peer_matches(peer: dict[str, Any], namespace: dict[str, str] | None, pod: dict[str, str]) -> bool:
    """`namespace` None means the policy's own namespace; a pod selector alone only admits pods of that one."""
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        if namespace is None and not _selects(
            peer["namespaceSelector"], {"kubernetes.io/metadata.name": "itsm-system"}
        ):
            return False
        if namespace is not None and not _selects(peer["namespaceSelector"], namespace):
            return False
    elif namespace is not None:
        return False
    return "podSelector" not in peer or _selects(peer["podSelector"], pod)


def _port_matches(rule_ports: list[dict[str, Any]] | None, port: int, named: dict[str, int]) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        value = entry.get("port")
        if value is None or value == port or named.get(str(value)) == port:
            return True
    return False


def allowed(
    docs: list[dict[str, Any]],
    target: dict[str, str],
    port: int,
    named: dict[str, int],
    namespace: dict[str, str] | None,
    pod: dict[str, str],
) -> bool:
    """Whether the NetworkPolicies admit a connection to a pod labelled `target` on `port`."""
    policies = [
        doc
        for doc in docs
        if doc["kind"] == "NetworkPolicy"
        and "Ingress" in (doc["spec"].get("policyTypes") or ["Ingress"])
        and _selects(doc["spec"].get("podSelector"), target)
    ]
    if not policies:
        return True
    return any(
        _port_matches(rule.get("ports"), port, named)
        and (not rule.get("from") or any(_peer_matches(peer, namespace, pod) for peer in rule["from"]))
        for policy in policies
        for rule in policy["spec"].get("ingress") or []
    )


def _pod(doc: dict[str, Any]) -> tuple[dict[str, str], dict[str, int]]:
    template = doc["spec"]["template"]
    named = {
        port["name"]: int(port["containerPort"])
        for container in template["spec"]["containers"]
        for port in container.get("ports") or []
        if "name" in port
    }
    return dict(template["metadata"].get("labels") or {}), named


def reaches(docs: list[dict[str, Any]], source: dict[str, Any], target: dict[str, Any], port: int) -> bool:
    """Whether the NetworkPolicies let the pods of workload `source` reach the pods of `target` on `port`."""
    labels, named = _pod(target)
    return allowed(docs, labels, port, named, None, _pod(source)[0])


def check_scraping_allowed(root: Path) -> str:
    docs = documents(root)
    problems = []
    for kind, name, port in SCRAPED:
        doc = find(docs, kind, name)
        if doc is None:
            problems.append(f"no {kind} {name} for Prometheus to scrape")
            continue
        labels, named = _pod(doc)
        if port not in named.values():
            problems.append(f"{doc['_file']}: {name} declares no container port {port}")
        elif not allowed(docs, labels, port, named, MONITORING_NAMESPACE, {}):
            problems.append(f"networkpolicy: Prometheus (namespace monitoring) may not reach {name} on {port}")
    for exporter, kind, name, port in EXPORTED:
        source, target = find(docs, "Deployment", exporter), find(docs, kind, name)
        if source is not None and target is not None and not reaches(docs, source, target, port):
            problems.append(f"networkpolicy: {exporter} may not reach {name} on {port}")
    if problems:
        raise K8sProblem("scraping blocked:\n" + "\n".join(problems))
    return (
        f"Prometheus from `monitoring` may scrape {len(SCRAPED)} workloads "
        f"({', '.join(f'{name}:{port}' for _, name, port in SCRAPED)}); the exporters reach their databases"
    )


# Who must reach whom for the database: the platform's pods reach PgBouncer (DATABASE_URL), PostgreSQL itself
# (ITSM_DIRECT_DATABASE_URL: advisory locks, VACUUM, pg_dump) and the standby (ITSM_REPLICA_DATABASE_URL: lists,
# search, reports); PgBouncer reaches PostgreSQL; the standby reaches PostgreSQL (pg_basebackup, streaming).
PLATFORM = ("itsm-api", "itsm-celery", "itsm-celery-beat")
DATABASE_PATHS = (
    *((("Deployment", name), ("Deployment", "itsm-pgbouncer"), 6432) for name in PLATFORM),
    (("Deployment", "itsm-pgbouncer"), ("StatefulSet", "postgres"), 5432),
    *((("Deployment", name), ("StatefulSet", "postgres"), 5432) for name in ("itsm-api", "itsm-celery")),
    (("StatefulSet", "postgres-replica"), ("StatefulSet", "postgres"), 5432),
    *((("Deployment", name), ("StatefulSet", "postgres-replica"), 5432) for name in PLATFORM),
)


def check_database_paths(root: Path) -> str:
    """The NetworkPolicies let each pod reach the database the way its settings say."""
    docs = documents(root)
    problems = []
    for (source_kind, source_name), (target_kind, target_name), port in DATABASE_PATHS:
        source, target = find(docs, source_kind, source_name), find(docs, target_kind, target_name)
        if source is None or target is None:
            problems.append(f"no {source_kind} {source_name} or no {target_kind} {target_name}")
            continue
        if not reaches(docs, source, target, port):
            problems.append(f"networkpolicy: {source_name} may not reach {target_name} on {port}")
    if problems:
        raise K8sProblem("database unreachable:\n" + "\n".join(problems))
    return (
        f"{len(DATABASE_PATHS)} paths: the app's pods to itsm-pgbouncer:6432, past it and to postgres-replica:5432, "
        "PgBouncer and the standby to postgres:5432"
    )
