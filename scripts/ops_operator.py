#!/usr/bin/env python3
"""The Prometheus Operator component (k8s/components/prometheus-operator/): what is generated from monitoring/, and
the checks `make ops-check` (scripts/validate_ops.py) runs on the component as an overlay renders it.

    .venv-ops/bin/python scripts/ops_operator.py generate   # rewrite the generated files (make operator-manifests)

Generated, committed, and compared with monitoring/ by ops-check: prometheusrule.yaml (monitoring/rules/*.yml),
dashboards.yaml (monitoring/grafana/dashboards/*.json as ConfigMaps for Grafana's sidecar) and
prometheus-alerting.yaml (the cluster Prometheus' entry for this Alertmanager, with prometheus.yml's alert
relabeling). The custom resources' definitions are not available offline, so their structure is checked here:
known fields, selectors that select the Services and pods of k8s/, ports named as those name them.

Each check takes the root of a checkout (or of the self-test's broken copy), returns a one-line summary, and raises
OperatorProblem naming the object and what is wrong.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import ops_k8s
import yaml

COMPONENT = "k8s/components/prometheus-operator"
RULE_FILE = f"{COMPONENT}/prometheusrule.yaml"
DASHBOARD_FILE = f"{COMPONENT}/dashboards.yaml"
ALERTING_FILE = f"{COMPONENT}/prometheus-alerting.yaml"
NAMESPACE = "itsm-system"
KUBERNETES_VERSION = "1.30.0"  # as scripts/validate_ops.py
PROMETHEUS_RULE_NAME = "itsm"
DASHBOARD_LABEL = ("grafana_dashboard", "1")
DASHBOARD_FOLDER = "ITSM"
# The Alertmanager the component runs, the Service in front of it, and what it reads.
ALERTMANAGER = "itsm"
ALERTMANAGER_SERVICE = ("itsm-alertmanager", "web", 9093)
ALERTMANAGER_CONFIG_SECRET = "itsm-alertmanager-config"  # noqa: S105  (a Secret's name)
ALERTMANAGER_FILES_SECRET = "itsm-alertmanager"  # noqa: S105
SECRETS_DIR = "/run/secrets"
RENDER_COMMAND = (
    "monitoring/alertmanager/render-config.sh k8s/alertmanager/alertmanager.yml DIR_WITH_THE_SECRET_FILES > /tmp/am.yml"
    " && kubectl create secret generic itsm-alertmanager-config -n itsm-system"
    " --from-file=alertmanager.yaml=/tmp/am.yml"
)
# Jobs of monitoring/prometheus.yml that the component does not scrape, and why.
NOT_MONITORED = {
    "prometheus": "the cluster's Prometheus scrapes itself (kube-prometheus-stack does)",
    "nginx": "no Nginx on Kubernetes: the ingress controller takes its place (TooManyActiveRequests stays quiet)",
}
# The setting of the ConfigMap each platform process listens on for its metrics, by job.
PORT_SETTINGS = {"itsm-api": "PORT", "itsm-worker": "ITSM_CELERY_METRICS_PORT", "itsm-beat": "ITSM_BEAT_METRICS_PORT"}
# Fields of the custom resources as the operator's CRDs (monitoring.coreos.com/v1) define them; a misspelt field is
# dropped by the API server without a word, so an unknown one fails here.
KNOWN_FIELDS = {
    "ServiceMonitor": {
        "selector",
        "endpoints",
        "namespaceSelector",
        "jobLabel",
        "targetLabels",
        "podTargetLabels",
        "sampleLimit",
        "targetLimit",
        "attachMetadata",
    },
    "PodMonitor": {
        "selector",
        "podMetricsEndpoints",
        "namespaceSelector",
        "jobLabel",
        "podTargetLabels",
        "sampleLimit",
        "targetLimit",
        "attachMetadata",
    },
    "endpoint": {
        "port",
        "targetPort",
        "path",
        "params",
        "scheme",
        "interval",
        "scrapeTimeout",
        "honorLabels",
        "honorTimestamps",
        "relabelings",
        "metricRelabelings",
        "followRedirects",
        "enableHttp2",
        "tlsConfig",
        "bearerTokenSecret",
        "authorization",
        "basicAuth",
    },
    "relabeling": {"sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action"},
    "PrometheusRule": {"groups"},
    "Alertmanager": {
        "image",
        "version",
        "replicas",
        "configSecret",
        "volumes",
        "volumeMounts",
        "securityContext",
        "containers",
        "resources",
        "podMetadata",
        "storage",
        "retention",
        "externalUrl",
        "alertmanagerConfigSelector",
        "alertmanagerConfigNamespaceSelector",
        "affinity",
        "tolerations",
        "nodeSelector",
        "topologySpreadConstraints",
        "priorityClassName",
        "serviceAccountName",
        "secrets",
        "configMaps",
        "logLevel",
        "logFormat",
    },
}
REQUIRED_FIELDS = {
    "ServiceMonitor": ("selector", "endpoints"),
    "PodMonitor": ("selector", "podMetricsEndpoints"),
    "PrometheusRule": ("groups",),
    "Alertmanager": ("configSecret", "volumes", "volumeMounts", "securityContext"),
}
SNAKE_TO_CAMEL = {"source_labels": "sourceLabels", "target_label": "targetLabel"}


class OperatorProblem(Exception):
    """The message names each object and what is wrong with it."""


# --- Generated files --------------------------------------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so a rule's expression reads as in monitoring/rules/."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(header: str, documents: list[Any]) -> str:
    body = "---\n".join(
        yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True) for doc in documents
    )
    return header + body


def rule_files(root: Path) -> list[Path]:
    return sorted((root / "monitoring" / "rules").glob("*.yml"))


def rule_groups(root: Path) -> list[dict[str, Any]]:
    """The groups of monitoring/rules/*.yml in file order, as Prometheus loads them in compose."""
    return [group for path in rule_files(root) for group in yaml.safe_load(path.read_text())["groups"]]


def alert_names(root: Path) -> list[str]:
    return [rule["alert"] for group in rule_groups(root) for rule in group["rules"] if "alert" in rule]


def prometheus_rule(root: Path) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": PROMETHEUS_RULE_NAME,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": "itsm", "app.kubernetes.io/component": "monitoring"},
        },
        "spec": {"groups": rule_groups(root)},
    }


def dashboard_configmaps(root: Path) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"grafana-dashboard-{path.stem}",
                "namespace": NAMESPACE,
                "labels": {
                    "app.kubernetes.io/name": "itsm",
                    "app.kubernetes.io/component": "monitoring",
                    DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1],
                },
                # Read by the sidecar when its folderAnnotation is grafana_folder (docs/operations.md).
                "annotations": {"grafana_folder": DASHBOARD_FOLDER},
            },
            "data": {path.name: path.read_text()},
        }
        for path in sorted((root / "monitoring" / "grafana" / "dashboards").glob("*.json"))
    ]


def _camel(config: dict[str, Any]) -> dict[str, Any]:
    return {SNAKE_TO_CAMEL.get(key, key): value for key, value in config.items()}


def alerting_endpoint(root: Path) -> list[dict[str, Any]]:
    """The entry of the cluster Prometheus' alerting.alertmanagers that sends this platform's alerts, and only
    those, to the component's Alertmanager, relabelled as monitoring/prometheus.yml relabels them."""
    compose = yaml.safe_load((root / "monitoring" / "prometheus.yml").read_text())
    relabel = [_camel(config) for config in (compose.get("alerting") or {}).get("alert_relabel_configs") or []]
    keep = {"sourceLabels": ["alertname"], "regex": "|".join(alert_names(root)), "action": "keep"}
    name, port, _ = ALERTMANAGER_SERVICE
    return [
        {
            "namespace": NAMESPACE,
            "name": name,
            "port": port,
            "apiVersion": "v2",
            # Prometheus >= 2.51 (alert_relabel_configs per Alertmanager).
            "alertRelabelings": [keep, *relabel],
        }
    ]


GENERATED_HEADER = (
    "# GENERATED from {source} by `make operator-manifests` (scripts/ops_operator.py generate):\n"
    "# do not edit; `make ops-check` fails when this file differs from what the generator writes.\n"
)


def generated(root: Path) -> dict[str, str]:
    """Each generated file of the component and its text."""
    rules = GENERATED_HEADER.format(source="monitoring/rules/*.yml")
    dashboards = GENERATED_HEADER.format(source="monitoring/grafana/dashboards/*.json")
    # The dashboards' JSON keeps its lines as they are.
    dashboards += "# yamllint disable rule:line-length\n"
    alerting = GENERATED_HEADER.format(source="monitoring/rules/*.yml and monitoring/prometheus.yml") + (
        "# yamllint disable rule:line-length\n"
        "# Not a resource of the component: the entry to add to the cluster Prometheus' spec.alerting.alertmanagers\n"
        "# (kube-prometheus-stack: prometheus.prometheusSpec.alertingEndpoints, next to its own Alertmanager).\n"
        "# It sends the platform's alerts, and only those, to the component's Alertmanager, with the\n"
        "# alert_relabel_configs of monitoring/prometheus.yml (docs/operations.md#prometheus-operator).\n"
    )
    return {
        RULE_FILE: _dump(rules, [prometheus_rule(root)]),
        DASHBOARD_FILE: _dump(dashboards, dashboard_configmaps(root)),
        ALERTING_FILE: _dump(alerting, [alerting_endpoint(root)]),
    }


def generate(root: Path) -> list[str]:
    written = []
    for name, text in generated(root).items():
        path = root / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(name)
    return written


def stale_files(root: Path) -> list[str]:
    return [name for name, text in generated(root).items() if (root / name).read_text() != text]


# --- The overlay, rendered ------------------------------------------------------------------------------------------
OVERLAY = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {root}/k8s
components:
  - {root}/{component}
"""
_rendered: dict[Path, tuple[list[dict[str, Any]], str]] = {}


def _component_kustomization(root: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((root / COMPONENT / "kustomization.yaml").read_text()))


def _assembled(root: Path) -> list[dict[str, Any]]:
    """Without kubectl: k8s/ and the component's resources, with its labels and ConfigMap patches applied."""
    docs = [{key: value for key, value in doc.items() if key != "_file"} for doc in ops_k8s.documents(root)]
    kustomization = _component_kustomization(root)
    for name in kustomization.get("resources") or []:
        docs += [doc for doc in yaml.safe_load_all((root / COMPONENT / name).read_text()) if doc]
    for entry in kustomization.get("labels") or []:
        kinds = {field["kind"] for field in entry.get("fields") or []}
        for doc in docs:
            if doc["kind"] in kinds:
                doc["metadata"].setdefault("labels", {}).update(entry["pairs"])
    for patch in kustomization.get("patches") or []:
        target = patch.get("target") or {}
        for doc in docs:
            if doc["kind"] == target.get("kind") == "ConfigMap" and doc["metadata"]["name"] == target.get("name"):
                for operation in yaml.safe_load(patch["patch"]):
                    doc["data"][operation["path"].removeprefix("/data/")] = operation["value"]
    return docs


def rendered(root: Path) -> tuple[list[dict[str, Any]], str]:
    """The objects of k8s/ with the component, as an overlay of the documented two lines renders them."""
    if root in _rendered:
        return _rendered[root]
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        result = (_assembled(root), "kubectl absent: assembled from the files, not rendered")
    else:
        with tempfile.TemporaryDirectory(prefix="itsm-overlay-") as directory:
            # Relative paths: kustomize refuses absolute ones.
            relative = Path(os.path.relpath(root, directory))
            (Path(directory) / "kustomization.yaml").write_text(OVERLAY.format(root=relative, component=COMPONENT))
            process = subprocess.run(
                [kubectl, "kustomize", directory], capture_output=True, text=True, timeout=120, check=False
            )
        if process.returncode != 0:
            raise OperatorProblem(f"kubectl kustomize of an overlay with {COMPONENT} failed:\n{process.stderr}")
        docs = [doc for doc in yaml.safe_load_all(process.stdout) if doc]
        result = (docs, "rendered by kubectl kustomize")
    _rendered[root] = result
    return result


def _of(docs: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] in kinds]


def _name(doc: dict[str, Any]) -> str:
    return f"{doc['kind']} {doc['metadata']['name']}"


# --- Check: the component renders, with the fields the CRDs know and the Prometheus' selector label -----------------
def selector_labels(root: Path) -> dict[str, dict[str, str]]:
    """The setting: the labels the component gives each kind the Prometheus selects (kustomization.yaml `labels`)."""
    wanted: dict[str, dict[str, str]] = {kind: {} for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule")}
    for entry in _component_kustomization(root).get("labels") or []:
        for field in entry.get("fields") or []:
            if field.get("kind") in wanted:
                wanted[field["kind"]].update(entry["pairs"])
    return wanted


def _validate_builtin(root: Path) -> list[str]:
    """kubernetes-validate (as validate_ops.py runs it) on the component's own Services, ConfigMaps and
    NetworkPolicies; the custom resources have no schema offline."""
    builtin = [
        doc
        for name in _component_kustomization(root).get("resources") or []
        for doc in yaml.safe_load_all((root / COMPONENT / name).read_text())
        if doc and not str(doc.get("apiVersion", "")).startswith("monitoring.coreos.com/")
    ]
    validator = Path(sys.executable).parent / "kubernetes-validate"
    if not validator.exists():
        return [f"{validator} is missing (make ops-check creates .venv-ops)"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump_all(builtin, handle)
    try:
        process = subprocess.run(
            [str(validator), "--strict", "--quiet", "-k", KUBERNETES_VERSION, handle.name],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        Path(handle.name).unlink()
    output = (process.stdout + process.stderr).strip()
    if process.returncode != 0 or "WARN" in output:
        return [f"kubernetes-validate: {line}" for line in output.splitlines() if line.strip()]
    return []


def _fields(problems: list[str], where: str, value: dict[str, Any], known: set[str]) -> None:
    problems += [f"{where}: unknown field {key!r}" for key in sorted(set(value) - known)]


def check_component(root: Path) -> str:
    docs, how = rendered(root)
    problems: list[str] = []
    custom = _of(docs, "ServiceMonitor", "PodMonitor", "PrometheusRule", "Alertmanager")
    for doc in custom:
        where = _name(doc)
        if doc.get("apiVersion") != "monitoring.coreos.com/v1":
            problems.append(f"{where}: apiVersion {doc.get('apiVersion')!r}, not monitoring.coreos.com/v1")
        if doc["metadata"].get("namespace") != NAMESPACE:
            problems.append(f"{where}: namespace {doc['metadata'].get('namespace')!r}, not {NAMESPACE}")
        spec = doc.get("spec") or {}
        _fields(problems, where, spec, KNOWN_FIELDS[doc["kind"]])
        problems += [f"{where}: no spec.{key}" for key in REQUIRED_FIELDS[doc["kind"]] if not spec.get(key)]
        for endpoint in spec.get("endpoints") or spec.get("podMetricsEndpoints") or []:
            _fields(problems, f"{where} endpoint", endpoint, KNOWN_FIELDS["endpoint"])
            if not endpoint.get("port"):
                problems.append(f"{where}: an endpoint without a named port")
            for relabeling in endpoint.get("relabelings") or []:
                _fields(problems, f"{where} relabeling", relabeling, KNOWN_FIELDS["relabeling"])
        for group in spec.get("groups") or []:
            if not group.get("name") or not group.get("rules"):
                problems.append(f"{where}: a group without a name or rules")
    problems += _validate_builtin(root)
    outside = [
        _name(doc) for doc in docs if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != NAMESPACE
    ]
    if outside:
        problems.append(f"rendered outside {NAMESPACE}: {outside}")
    for kind in ("ServiceMonitor", "PodMonitor", "Alertmanager", "PrometheusRule"):
        if not _of(docs, kind):
            problems.append(f"no {kind} in the component")
    wanted = selector_labels(root)
    if not any(wanted.values()):
        problems.append(f"{COMPONENT}/kustomization.yaml: no `labels` for the Prometheus' selectors")
    for doc in _of(docs, *wanted):
        labels = doc["metadata"].get("labels") or {}
        missing = {key: value for key, value in wanted[doc["kind"]].items() if labels.get(key) != value}
        if missing or wanted[doc["kind"]] != wanted["ServiceMonitor"]:
            problems.append(
                f"{_name(doc)}: lacks {missing or wanted['ServiceMonitor']}: the Prometheus' selectors would not see it"
            )
    if problems:
        raise OperatorProblem("the Prometheus Operator component:\n" + "\n".join(problems))
    setting = ", ".join(f"{key}={value}" for key, value in wanted["ServiceMonitor"].items())
    return (
        f"{how}: {len(custom)} custom resources with known fields, the component's other objects valid against "
        f"Kubernetes {KUBERNETES_VERSION}; monitors and rules labelled {setting} for the Prometheus' selectors"
    )


# --- Check: the monitors scrape what monitoring/prometheus.yml scrapes, through the NetworkPolicies ----------------
def _expand(match: re.Match[str], replacement: str) -> str:
    """A relabeling's replacement with $1 or ${1} taken from the regex's groups."""
    groups = (match.group(0), *match.groups())
    return re.sub(
        r"\$\{?(\d+)\}?",
        lambda ref: (groups[int(ref[1])] or "") if int(ref[1]) < len(groups) else "",
        replacement,
    )


def relabel(labels: dict[str, str], configs: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus' relabeling (replace, keep, drop) on a target's labels; configs in either spelling."""
    labels = dict(labels)
    for raw in configs:
        config = _camel(raw)
        action = (config.get("action") or "replace").lower()
        value = config.get("separator", ";").join(labels.get(name, "") for name in config.get("sourceLabels") or [])
        match = re.fullmatch(f"(?:{config.get('regex', '(.*)')})", value)
        if (action == "keep" and match is None) or (action == "drop" and match is not None):
            return None
        if action == "replace" and match is not None:
            labels[config["targetLabel"]] = _expand(match, str(config.get("replacement", "$1")))
        elif action not in {"replace", "keep", "drop"}:
            raise OperatorProblem(f"relabel action {action!r} is not simulated here")
    return labels


def _view(labels: dict[str, str], port: int) -> tuple[tuple[str, str], ...]:
    """What the rules and dashboards can tell apart: job, path, params and the added labels (not instance)."""
    kept = {
        key: value
        for key, value in labels.items()
        if key in {"__metrics_path__", "__param_target"} or not (key.startswith("__") or key == "instance")
    }
    return (*sorted(kept.items()), ("port", str(port)))


def compose_targets(root: Path) -> dict[str, set[tuple[tuple[str, str], ...]]]:
    config = yaml.safe_load((root / "monitoring" / "prometheus.yml").read_text())
    jobs: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    for job in config["scrape_configs"]:
        # Each target with the labels its static_configs entry adds.
        addresses = [
            (target, dict(static.get("labels") or {}))
            for static in job.get("static_configs") or []
            for target in static["targets"]
        ]
        addresses += [(f"{name}:{dns['port']}", {}) for dns in job.get("dns_sd_configs") or [] for name in dns["names"]]
        views = jobs.setdefault(job["job_name"], set())
        for address, added in addresses:
            labels = {**added, "__address__": address, "__metrics_path__": job.get("metrics_path", "/metrics")}
            labels |= {f"__param_{key}": values[0] for key, values in (job.get("params") or {}).items()}
            labels["job"] = job["job_name"]
            result = relabel(labels, job.get("relabel_configs") or [])
            if result is not None:
                views.add(_view(result, int(result["__address__"].rsplit(":", 1)[1])))
    return jobs


# A pod template: (kind and name, pod labels, named container ports); an endpoint: (its spec, default job, pods, port).
Workload = tuple[str, dict[str, str], dict[str, int]]
Endpoint = tuple[dict[str, Any], str, list[Workload], int]


def _workloads(docs: list[dict[str, Any]]) -> list[Workload]:
    """(name, pod labels, named container ports) of every pod template, and of the Alertmanager CR's pods as the
    operator labels them (its labels win over podMetadata's)."""
    found = [(_name(doc), *ops_k8s._pod(doc)) for doc in _of(docs, "Deployment", "StatefulSet", "DaemonSet")]
    for doc in _of(docs, "Alertmanager"):
        name = doc["metadata"]["name"]
        labels = dict(((doc["spec"].get("podMetadata") or {}).get("labels")) or {})
        labels |= {
            "app.kubernetes.io/name": "alertmanager",
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/managed-by": "prometheus-operator",
            "alertmanager": name,
        }
        found.append((_name(doc), labels, {"web": 9093, "mesh-tcp": 9094, "mesh-udp": 9094}))
    return found


def _port_number(workload: Workload, port: str | int) -> int | None:
    """A container port of the workload's pods, by name or number."""
    if isinstance(port, str):
        return workload[2].get(port)
    return port if port in workload[2].values() else None


def _endpoints(docs: list[dict[str, Any]], monitor: dict[str, Any], problems: list[str]) -> list[Endpoint]:
    """Each endpoint of a monitor with its default job, the pods it scrapes and their port number."""
    spec, where = monitor["spec"], _name(monitor)
    workloads = _workloads(docs)
    found: list[Endpoint] = []
    if monitor["kind"] == "PodMonitor":
        pods = [w for w in workloads if ops_k8s._selects(spec.get("selector"), w[1])]
        if not pods:
            problems.append(f"{where}: its selector matches no pods of k8s/")
        job = f"{monitor['metadata']['namespace']}/{monitor['metadata']['name']}"
        for endpoint in spec.get("podMetricsEndpoints") or []:
            ports = {w[2].get(str(endpoint.get("port", ""))) for w in pods}
            number = ports.pop() if len(ports) == 1 else None
            if not pods or number is None:
                problems.append(f"{where}: port {endpoint.get('port')!r} is not a named container port of its pods")
                continue
            found.append((endpoint, job, pods, number))
        return found
    services = [
        doc
        for doc in _of(docs, "Service")
        if doc["metadata"].get("namespace") == monitor["metadata"]["namespace"]
        and ops_k8s._selects(spec.get("selector"), doc["metadata"].get("labels") or {})
    ]
    if len(services) != 1:
        problems.append(f"{where}: its selector matches {len(services)} Services ({[_name(s) for s in services]})")
        return found
    service = services[0]
    pods = [w for w in workloads if all(w[1].get(k) == v for k, v in service["spec"]["selector"].items())]
    if not pods:
        problems.append(f"{where}: {_name(service)} selects no pods")
    for endpoint in spec.get("endpoints") or []:
        port = next((p for p in service["spec"]["ports"] if p.get("name") == endpoint.get("port")), None)
        if port is None:
            names = [p.get("name") for p in service["spec"]["ports"]]
            problems.append(f"{where}: port {endpoint.get('port')!r} is not a port of {_name(service)} ({names})")
            continue
        target = port.get("targetPort", port["port"])
        numbers = {_port_number(w, target) for w in pods}
        number = numbers.pop() if len(numbers) == 1 else None
        if not pods or number is None:
            problems.append(f"{where}: {_name(service)} port {port['name']} reaches no container port of its pods")
            continue
        job = (service["metadata"].get("labels") or {}).get(spec.get("jobLabel", ""), service["metadata"]["name"])
        found.append((endpoint, job, pods, number))
    return found


def check_monitors(root: Path) -> str:
    docs, _ = rendered(root)
    problems: list[str] = []
    compose = compose_targets(root)
    operator: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    scraped = 0
    for monitor in _of(docs, "ServiceMonitor", "PodMonitor"):
        for endpoint, job, pods, port in _endpoints(docs, monitor, problems):
            labels = {"job": job, "__metrics_path__": endpoint.get("path", "/metrics")}
            labels |= {f"__param_{key}": values[0] for key, values in (endpoint.get("params") or {}).items()}
            result = relabel(labels, endpoint.get("relabelings") or [])
            if result is None:
                continue
            operator.setdefault(result["job"], set()).add(_view(result, port))
            for name, pod_labels, named in pods:
                scraped += 1
                if not ops_k8s.allowed(docs, pod_labels, port, named, ops_k8s.MONITORING_NAMESPACE, {}):
                    problems.append(
                        f"networkpolicy: Prometheus (namespace monitoring) may not reach {name} on {port} "
                        f"({_name(monitor)})"
                    )
    for job in sorted(set(compose) | set(operator)):
        if job in NOT_MONITORED:
            continue
        if job not in compose:
            problems.append(f"job {job} is scraped by a monitor but not in monitoring/prometheus.yml")
        elif compose[job] != operator.get(job, set()):
            problems.append(
                f"job {job}: monitoring/prometheus.yml scrapes {sorted(compose[job])}, "
                f"the monitors {sorted(operator.get(job, set()))}"
            )
    settings: dict[str, Any] = next(
        (d["data"] for d in _of(docs, "ConfigMap") if d["metadata"]["name"] == "itsm-config"), {}
    )
    for job, setting in PORT_SETTINGS.items():
        ports = {int(dict(view)["port"]) for view in operator.get(job, set())}
        if str(settings.get(setting)) not in {str(port) for port in ports}:
            problems.append(
                f"job {job}: the processes listen on {setting}={settings.get(setting)!r} (ConfigMap itsm-config), "
                f"the monitor scrapes {sorted(ports)}"
            )
    services = {doc["metadata"]["name"]: doc for doc in _of(docs, "Service")}
    for job, views in sorted(operator.items()):
        for target in sorted(dict(view).get("__param_target", "") for view in views):
            if not target:
                continue
            match = re.fullmatch(r"redis://([a-z0-9-]+):(\d+)", target)
            service = services.get(match[1]) if match else None
            if match is None or service is None or int(match[2]) not in {p["port"] for p in service["spec"]["ports"]}:
                problems.append(f"job {job}: target {target} is not a Service and port of k8s/")
    rules_text = "".join(path.read_text() for path in rule_files(root))
    for job in sorted(set(re.findall(r'\bjob="([^"]+)"', rules_text)) - set(operator)):
        problems.append(f'monitoring/rules/ match job="{job}", which no monitor scrapes')
    if problems:
        raise OperatorProblem(
            "the monitors do not scrape what monitoring/prometheus.yml scrapes:\n" + "\n".join(problems)
        )
    return (
        f"jobs {', '.join(sorted(operator))} as in monitoring/prometheus.yml (same paths, ports, params and labels; "
        f"not {', '.join(NOT_MONITORED)}); the NetworkPolicies admit Prometheus from `monitoring` to the port of each "
        f"({scraped} endpoint and pod template pairs)"
    )


# --- Check: the PrometheusRule is monitoring/rules/ ------------------------------------------------------------------
def _rule_key(rule: dict[str, Any]) -> str:
    return f"alert {rule['alert']}" if "alert" in rule else f"record {rule.get('record')}"


def rule_differences(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Group by group, rule by rule, field by field."""
    differences = []
    names = [group.get("name") for group in expected]
    if names != [group.get("name") for group in actual]:
        return [f"groups {[group.get('name') for group in actual]}, monitoring/rules/ has {names}"]
    for want, have in zip(expected, actual, strict=True):
        group = want["name"]
        for key in sorted(set(want) | set(have) - {"rules"}):
            if key != "rules" and want.get(key) != have.get(key):
                differences.append(f"group {group}: {key} {have.get(key)!r}, monitoring/rules/ {want.get(key)!r}")
        keys = [_rule_key(rule) for rule in want["rules"]]
        if keys != [_rule_key(rule) for rule in have["rules"]]:
            differences.append(
                f"group {group}: rules {[_rule_key(r) for r in have['rules']]}, monitoring/rules/ {keys}"
            )
            continue
        for rule, other in zip(want["rules"], have["rules"], strict=True):
            for field in sorted(set(rule) | set(other)):
                if rule.get(field) != other.get(field):
                    differences.append(
                        f"group {group}, {_rule_key(rule)}: {field} is {other.get(field)!r} in the PrometheusRule, "
                        f"{rule.get(field)!r} in monitoring/rules/"
                    )
    return differences


def check_prometheus_rule(root: Path) -> str:
    docs, _ = rendered(root)
    rules = _of(docs, "PrometheusRule")
    if len(rules) != 1:
        raise OperatorProblem(f"one PrometheusRule expected, the overlay renders {len(rules)}")
    expected = rule_groups(root)
    differences = rule_differences(expected, rules[0]["spec"].get("groups") or [])
    stale = [name for name in stale_files(root) if name != DASHBOARD_FILE]
    if stale:
        differences.append(f"not what `make operator-manifests` writes (run it and commit): {stale}")
    if differences:
        raise OperatorProblem("the PrometheusRule is not monitoring/rules/:\n" + "\n".join(differences))
    count = sum(len(group["rules"]) for group in expected)
    return (
        f"PrometheusRule {rules[0]['metadata']['name']}: the {len(expected)} groups and {count} rules of "
        f"{len(rule_files(root))} files in monitoring/rules/, field for field; {ALERTING_FILE} up to date"
    )


# --- Check: the dashboards' ConfigMaps are monitoring/grafana/dashboards/ --------------------------------------------
def check_dashboards(root: Path) -> str:
    docs, _ = rendered(root)
    key, value = DASHBOARD_LABEL
    configmaps = [doc for doc in _of(docs, "ConfigMap") if (doc["metadata"].get("labels") or {}).get(key) == value]
    files = {path.name: path for path in sorted((root / "monitoring" / "grafana" / "dashboards").glob("*.json"))}
    problems = []
    seen: dict[str, str] = {}
    for doc in configmaps:
        for name, text in (doc.get("data") or {}).items():
            seen[name] = text
            if name not in files:
                problems.append(f"{_name(doc)}: {name} is not a dashboard of monitoring/grafana/dashboards/")
            elif json.loads(text) != json.loads(files[name].read_text()):
                problems.append(f"{_name(doc)}: {name} differs from monitoring/grafana/dashboards/{name}")
    missing = sorted(set(files) - set(seen))
    if missing:
        problems.append(f"no ConfigMap labelled {key}={value!r} holds {missing}")
    if DASHBOARD_FILE in stale_files(root):
        problems.append(f"{DASHBOARD_FILE} is not what `make operator-manifests` writes (run it and commit)")
    if problems:
        raise OperatorProblem(
            "the dashboards' ConfigMaps are not monitoring/grafana/dashboards/:\n" + "\n".join(problems)
        )
    return f"{len(files)} dashboards in {len(configmaps)} ConfigMaps labelled {key}={value!r}, identical to the files"


# --- Check: the Alertmanager reads its Secrets and reaches the intake; Prometheus and the platform reach it -------
def check_alertmanager(root: Path) -> str:
    docs, _ = rendered(root)
    problems: list[str] = []
    managers = [doc for doc in _of(docs, "Alertmanager") if doc["metadata"]["name"] == ALERTMANAGER]
    if len(managers) != 1:
        raise OperatorProblem(f"no Alertmanager {ALERTMANAGER} in the component")
    spec = managers[0]["spec"]
    if spec.get("configSecret") != ALERTMANAGER_CONFIG_SECRET:
        problems.append(
            f"Alertmanager {ALERTMANAGER}: configSecret {spec.get('configSecret')!r}, not {ALERTMANAGER_CONFIG_SECRET}"
        )
    volume = next(
        (
            v
            for v in spec.get("volumes") or []
            if (v.get("secret") or {}).get("secretName") == ALERTMANAGER_FILES_SECRET
        ),
        None,
    )
    mount = next((m for m in spec.get("volumeMounts") or [] if volume and m.get("name") == volume.get("name")), None)
    if volume is None or mount is None or mount.get("mountPath", "").rstrip("/") != SECRETS_DIR:
        problems.append(
            f"Alertmanager {ALERTMANAGER}: the Secret {ALERTMANAGER_FILES_SECRET} is not mounted at {SECRETS_DIR}"
        )
    secret = next((d for d in _of(docs, "Secret") if d["metadata"]["name"] == ALERTMANAGER_FILES_SECRET), None)
    keys = set((secret or {}).get("stringData") or {}) | set((secret or {}).get("data") or {})
    config = (root / ops_k8s.K8S_ALERTMANAGER).read_text()
    for path in re.findall(r"^\s*\w+_file:\s*(\S+)", config, re.MULTILINE):
        if not path.startswith(SECRETS_DIR + "/") or path.removeprefix(SECRETS_DIR + "/") not in keys:
            problems.append(f"{ops_k8s.K8S_ALERTMANAGER} reads {path}, not a key of {ALERTMANAGER_FILES_SECRET} there")
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    if spec.get("image") != compose["services"]["alertmanager"]["image"]:
        problems.append(
            f"Alertmanager {ALERTMANAGER}: image {spec.get('image')!r}, "
            f"compose runs {compose['services']['alertmanager']['image']!r}"
        )
    context = spec.get("securityContext") or {}
    if not context.get("runAsNonRoot") or (context.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(
            f"Alertmanager {ALERTMANAGER}: no restricted securityContext (runAsNonRoot, seccomp RuntimeDefault)"
        )
    # The Service in front, and who may reach whom.
    name, port_name, port = ALERTMANAGER_SERVICE
    _, am_labels, am_ports = next(w for w in _workloads(docs) if w[0] == f"Alertmanager {ALERTMANAGER}")
    service = next((d for d in _of(docs, "Service") if d["metadata"]["name"] == name), None)
    ports = {p.get("name"): p for p in (service or {}).get("spec", {}).get("ports", [])}
    if service is None or not all(am_labels.get(k) == v for k, v in service["spec"].get("selector", {}).items()):
        problems.append(f"Service {name}: missing, or its selector does not select the Alertmanager's pods")
    elif (
        port_name not in ports
        or ports[port_name]["port"] != port
        or am_ports.get(ports[port_name].get("targetPort")) != port
    ):
        problems.append(f"Service {name}: no port {port_name} {port} to the Alertmanager's web port")
    url = next(
        (d["data"].get("ALERTMANAGER_URL") for d in _of(docs, "ConfigMap") if d["metadata"]["name"] == "itsm-config"),
        None,
    )
    if url != f"http://{name}.{NAMESPACE}.svc:{port}":
        problems.append(f"ConfigMap itsm-config: ALERTMANAGER_URL {url!r}: silences would not reach this Alertmanager")
    pods = {w[0]: w for w in _workloads(docs)}
    api, worker = pods.get("Deployment itsm-api"), pods.get("Deployment itsm-celery")
    admitted = (
        ("Prometheus (namespace monitoring)", am_labels, port, am_ports, ops_k8s.MONITORING_NAMESPACE, {}),
        ("the Alertmanager's replicas (gossip)", am_labels, 9094, am_ports, None, am_labels),
        *((f"{w[0]} (silences)", am_labels, port, am_ports, None, w[1]) for w in (api, worker) if w is not None),
    )
    for who, target, number, named, namespace, source in admitted:
        if not ops_k8s.allowed(docs, target, number, named, namespace, source):
            problems.append(f"networkpolicy: {who} may not reach the Alertmanager on {number}")
    intake = ops_k8s.IN_CLUSTER_URL.search(config)
    if (
        api is not None
        and intake is not None
        and not ops_k8s.allowed(docs, api[1], int(intake["port"]), api[2], None, am_labels)
    ):
        problems.append(f"networkpolicy: the Alertmanager may not reach the intake on {intake['port']}")
    operations = (root / "docs" / "operations.md").read_text()
    if RENDER_COMMAND not in " ".join(operations.split()):
        problems.append(f"docs/operations.md does not give the command that creates {ALERTMANAGER_CONFIG_SECRET}")
    if problems:
        raise OperatorProblem("the operator's Alertmanager:\n" + "\n".join(problems))
    return (
        f"Alertmanager {ALERTMANAGER} reads Secret {ALERTMANAGER_CONFIG_SECRET} and {ALERTMANAGER_FILES_SECRET} "
        f"at {SECRETS_DIR}; Service {name}:{port} is ALERTMANAGER_URL; reachable from Prometheus, the API and the "
        "workers; it reaches the intake"
    )


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    if argv[1:] != ["generate"]:
        print(__doc__.splitlines()[3].strip(), file=sys.stderr)
        return 2
    written = generate(root)
    print("\n".join(f"wrote {name}" for name in written) or "up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
