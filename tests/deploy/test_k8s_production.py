"""The Kubernetes manifests do their job on the first day: backups on a claim the restore can see, the ingress
routing the status page, exporters Prometheus may scrape. The same checks run in `make ops-check`
(scripts/ops_k8s.py); these tests pin what they read."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_ops_k8s() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ops_k8s", ROOT / "scripts" / "ops_k8s.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("ops_k8s", module)
    spec.loader.exec_module(module)
    return module


ops_k8s = load_ops_k8s()


def test_backups_are_on_one_claim_shared_by_the_workers_and_the_restore_command():
    docs = ops_k8s.documents(ROOT)
    assert ops_k8s.backup_dir(docs) == "/var/lib/itsm/backups"
    assert ops_k8s.restore_workload(ROOT) == "itsm-api"
    assert "itsm-backups" in ops_k8s.check_backup_claim(ROOT)


def test_a_worker_backup_directory_on_an_empty_dir_is_refused(tmp_path):
    copy = tmp_path / "root"
    (copy / "docs" / "runbooks").mkdir(parents=True)
    (copy / "k8s").mkdir()
    for path in (ROOT / "k8s").glob("*.yaml"):
        (copy / "k8s" / path.name).write_text(path.read_text())
    (copy / ops_k8s.RUNBOOK).write_text((ROOT / ops_k8s.RUNBOOK).read_text())
    worker = copy / "k8s" / "worker-deployment.yaml"
    worker.write_text(
        worker.read_text().replace("persistentVolumeClaim:\n            claimName: itsm-backups", "emptyDir: {}")
    )
    with pytest.raises(ops_k8s.K8sProblem, match="emptyDir, not a claim"):
        ops_k8s.check_backup_claim(copy)


def test_the_cluster_alertmanager_posts_to_the_api_service_and_compose_to_backend():
    summary = ops_k8s.check_alertmanager_intake(ROOT)
    assert "http://itsm-api.itsm-system.svc:8000/api/v1/alerts/alertmanager/" in summary
    assert "compose: http://backend:8000/api/v1/alerts/alertmanager/" in summary


@pytest.mark.parametrize(
    ("request_path", "routed"),
    [("/status/", True), ("/status.json", True), ("/statusx", False), ("/metrics", False)],
)
def test_the_ingress_routes_the_status_page_to_the_api(request_path, routed):
    service = ops_k8s._route(ops_k8s.documents(ROOT), request_path)
    assert (service is not None and service["name"] == "itsm-api") is routed


def test_the_kubernetes_exporters_are_the_compose_ones_and_prometheus_may_scrape_them():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    docs = ops_k8s.documents(ROOT)
    for kind, name in (
        ("Deployment", "postgres-exporter"),
        ("Deployment", "redis-exporter"),
        ("DaemonSet", "node-exporter"),
    ):
        workload = ops_k8s.find(docs, kind, name)
        assert workload is not None, name
        assert workload["spec"]["template"]["spec"]["containers"][0]["image"] == compose[name]["image"]
        assert ops_k8s.find(docs, "Service", name) is not None, name
    # The standby's exporter is a sidecar of its StatefulSet, compose's postgres-replica-exporter.
    replica = ops_k8s.find(docs, "StatefulSet", "postgres-replica")
    assert replica is not None
    sidecar = next(c for c in replica["spec"]["template"]["spec"]["containers"] if c["name"] == "postgres-exporter")
    assert sidecar["image"] == compose["postgres-replica-exporter"]["image"]
    assert "7 workloads" in ops_k8s.check_scraping_allowed(ROOT)


def test_a_pod_selector_alone_does_not_admit_prometheus_from_another_namespace():
    policy = {
        "kind": "NetworkPolicy",
        "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]},
    }
    assert not ops_k8s.allowed([policy], {"app": "x"}, 9100, {}, ops_k8s.MONITORING_NAMESPACE, {})
    assert ops_k8s.allowed([policy], {"app": "x"}, 9100, {}, None, {"app": "y"})
