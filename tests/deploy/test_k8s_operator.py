"""The Prometheus Operator component says what monitoring/ says: the rules, the dashboards and the scrape jobs of
compose, generated and compared by scripts/ops_operator.py (`make ops-check`); these tests pin what it reads."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


load("ops_k8s")
ops_operator = load("ops_operator")


def copy_of_the_deployment_files(tmp_path: Path) -> Path:
    copy = tmp_path / "root"
    for name in ("k8s", "monitoring"):
        shutil.copytree(ROOT / name, copy / name)
    (copy / "docs").mkdir()
    shutil.copy2(ROOT / "docs" / "operations.md", copy / "docs" / "operations.md")
    shutil.copy2(ROOT / "docker-compose.yml", copy / "docker-compose.yml")
    return copy


def test_the_committed_files_are_what_the_generator_writes():
    assert ops_operator.stale_files(ROOT) == []


def test_the_prometheus_rule_holds_every_rule_of_monitoring_rules():
    rule = yaml.safe_load((ROOT / ops_operator.RULE_FILE).read_text())
    names = [r["alert"] for group in rule["spec"]["groups"] for r in group["rules"]]
    assert names == ops_operator.alert_names(ROOT)
    assert {"ApiDown", "CeleryWorkerDown", "BeatDown", "Watchdog"} <= set(names)
    assert f"{len(names)} rules" in ops_operator.check_prometheus_rule(ROOT)


def test_a_rule_changed_in_monitoring_rules_only_is_refused(tmp_path):
    copy = copy_of_the_deployment_files(tmp_path)
    rules = copy / "monitoring" / "rules" / "itsm.yml"
    rules.write_text(rules.read_text().replace("        for: 2m\n", "        for: 4m\n", 1))
    with pytest.raises(ops_operator.OperatorProblem, match="alert ApiDown: for is '2m' in the PrometheusRule"):
        ops_operator.check_prometheus_rule(copy)


def test_the_cache_and_the_broker_are_told_apart_as_in_compose():
    redis = ops_operator.compose_targets(ROOT)["redis"]
    roles = {dict(view)["role"]: dict(view)["__param_target"] for view in redis}
    assert roles == {"cache": "redis://redis:6379", "broker": "redis://redis-broker:6379"}
    summary = ops_operator.check_monitors(ROOT)
    for job in ("itsm-api", "itsm-worker", "itsm-beat", "postgres", "redis", "node"):
        assert job in summary


def test_warnings_reach_the_operators_alertmanager_as_medium_and_other_alerts_do_not_reach_it():
    (endpoint,) = yaml.safe_load((ROOT / ops_operator.ALERTING_FILE).read_text())
    relabelings = endpoint["alertRelabelings"]
    warning = ops_operator.relabel({"alertname": "HighErrorRate", "severity": "warning"}, relabelings)
    assert warning is not None
    assert warning["itsm_severity"] == "medium"
    critical = ops_operator.relabel({"alertname": "ApiDown", "severity": "critical"}, relabelings)
    assert critical is not None
    assert "itsm_severity" not in critical
    assert ops_operator.relabel({"alertname": "KubePodCrashLooping", "severity": "warning"}, relabelings) is None


def test_the_dashboards_are_configmaps_for_grafanas_sidecar():
    configmaps = list(yaml.safe_load_all((ROOT / ops_operator.DASHBOARD_FILE).read_text()))
    dashboards = sorted(path.name for path in (ROOT / "monitoring" / "grafana" / "dashboards").glob("*.json"))
    assert sorted(name for cm in configmaps for name in cm["data"]) == dashboards
    assert all(cm["metadata"]["labels"]["grafana_dashboard"] == "1" for cm in configmaps)
