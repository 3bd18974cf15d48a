#!/usr/bin/env python3
"""Validate the deployment files offline: no Docker engine, no Kubernetes cluster needed.

    .venv-ops/bin/python scripts/validate_ops.py              # every validator on the real files
    .venv-ops/bin/python scripts/validate_ops.py --self-test  # each validator must reject a broken copy

`make ops-check` runs both. The tools come from the tools venv (requirements-ops.txt: docker-compose, hadolint,
kubernetes-validate, check-jsonschema, yamllint, gixy, shellcheck) and from Debian (nginx, promtool, amtool;
.ci/run installs them). The traps each check avoids are in the comments (see also docs/operations.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import ops_alertmanager
import ops_k8s
import ops_operator
import ops_pitr
import yaml
from ops_breakages import BREAKAGES, Breakage
from ops_variables import VariablesMissing, check_production_variables

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(sys.executable).parent
KUBERNETES_VERSION = "1.30.0"
# The files and directories a check reads; the self-test copies exactly these.
DEPLOY_FILES = (
    "Dockerfile",
    ".dockerignore",
    ".hadolint.yaml",
    ".yamllint.yaml",
    ".env.example",
    "docker-compose.yml",
    "docker",
    "nginx",
    "k8s",
    "monitoring",
    "docs/runbooks",
    "docs/operations.md",
)
# Variables docker-compose.yml must refuse to start without.
REQUIRED_COMPOSE_VARIABLES = (
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "POSTGRES_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "EMAIL_URL",
    "ITSM_DEFAULT_FROM_EMAIL",
    "ITSM_PUBLIC_URL",
    "ITSM_ALERTMANAGER_TOKEN",
    "ITSM_METRICS_TOKEN",
    "BACKUP_PITR_S3_BUCKET",
    "BACKUP_PITR_S3_KEY",
    "BACKUP_PITR_S3_KEY_SECRET",
    "PGBACKREST_CIPHER_PASS",
)
# Host names in nginx/ that must resolve when nginx parses its upstreams.
NGINX_UPSTREAM_HOSTS = ("backend",)


class CheckFailed(Exception):
    """A validator rejected a file; the message is the tool's output."""


class StaleBreakage(Exception):
    """A breakage's text is no longer in its file: the fault cannot be put in, so nothing is tested."""


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Path], str]


def tool(name: str) -> str:
    """A tool of the tools venv, else of the system (nginx lives in /usr/sbin, not always on PATH)."""
    for candidate in (TOOLS / name, Path("/usr/sbin") / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    hint = {
        "nginx": "apt-get install -y nginx",
        "promtool": "apt-get install -y prometheus",
        "amtool": "apt-get install -y prometheus-alertmanager",
    }.get(name, "make ops-check creates .venv-ops from requirements-ops.txt")
    raise CheckFailed(f"{name} is not installed ({hint}; .ci/run installs everything)")


def run(command: list[str], root: Path, env: dict[str, str] | None = None) -> str:
    """Run a validator; a non-zero exit is a failed check, with the tool's output as the reason."""
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise CheckFailed(f"{Path(command[0]).name} exited {result.returncode}:\n{output}")
    return output


def clean_env(**extra: str) -> dict[str, str]:
    """PATH and HOME only: a developer's exported variables must not change what compose interpolates."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", str(Path.home()))}
    env.update(extra)
    return env


# --- docker compose --------------------------------------------------------------------------------------------------
def check_compose_config(root: Path) -> str:
    # `env_file: [.env]` fails when .env is absent: the file must declare it `required: false`.
    compose = [tool("docker-compose"), "--project-directory", str(root), "-f", str(root / "docker-compose.yml")]
    run([*compose, "--env-file", str(root / ".env.example"), "config", "--quiet"], root, clean_env())
    # Required secrets are enforced: without them `config` must fail and name each one.
    empty_env = root / ".env.required-check"
    example = (root / ".env.example").read_text()
    empty_env.write_text(
        "".join(
            line + "\n"
            for line in example.splitlines()
            if not any(line.startswith(f"{name}=") for name in REQUIRED_COMPOSE_VARIABLES)
        )
    )
    try:
        result = subprocess.run(
            [*compose, "--env-file", str(empty_env), "config", "--quiet"],
            cwd=root,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        empty_env.unlink()
    unenforced = [
        name for name in REQUIRED_COMPOSE_VARIABLES if f"required variable {name} is missing" not in result.stderr
    ]
    if result.returncode == 0 or unenforced:
        raise CheckFailed(f"docker-compose.yml starts without these required variables: {unenforced}")
    version = run([tool("docker-compose"), "version", "--short"], root)
    return f"docker-compose {version}; required: {', '.join(REQUIRED_COMPOSE_VARIABLES)}"


def check_compose_schema(root: Path) -> str:
    run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(root / "docker-compose.yml")],
        root,
    )
    return "compose-spec schema"


# --- Dockerfile and shell scripts ------------------------------------------------------------------------------------
DOCKERFILES = ("Dockerfile", "docker/postgres/Dockerfile")


def check_hadolint(root: Path) -> str:
    files = [str(root / name) for name in DOCKERFILES]
    run([tool("hadolint"), "--no-color", "--config", str(root / ".hadolint.yaml"), *files], root)
    return f"{', '.join(DOCKERFILES)}; failure threshold: warning"


def check_shellcheck(root: Path) -> str:
    scripts = [
        str(root / "docker" / "entrypoint.sh"),
        str(root / "docker" / "redis-cli"),
        str(root / "docker" / "postgres" / "standby.sh"),
        str(root / "docker" / "postgres" / "pgbackrest-server.sh"),
        str(root / "docker" / "postgres" / "initdb" / "02-replication.sh"),
        str(root / ops_alertmanager.RENDER),
    ]
    run([tool("shellcheck"), "--shell=sh", *scripts], root)
    return f"{len(scripts)} scripts"


# --- YAML ------------------------------------------------------------------------------------------------------------
def yaml_files(root: Path) -> list[Path]:
    files = [root / ".hadolint.yaml", root / ".yamllint.yaml", root / "docker-compose.yml"]
    files += sorted((root / "k8s").glob("*.yaml"))
    files += sorted((root / "k8s" / "components").rglob("*.yaml"))
    files += sorted(p for p in (root / "monitoring").rglob("*") if p.suffix in {".yml", ".yaml"})
    files += sorted((root / "k8s" / "alertmanager").glob("*.yml"))
    return files


def check_yamllint(root: Path) -> str:
    files = yaml_files(root)
    run(
        [tool("yamllint"), "--strict", "-c", str(root / ".yamllint.yaml"), *(str(path) for path in files)],
        root,
    )
    return f"{len(files)} files"


# --- Kubernetes ------------------------------------------------------------------------------------------------------
def manifests(root: Path) -> list[Path]:
    return sorted(path for path in (root / "k8s").glob("*.yaml") if path.name != "kustomization.yaml")


def kubernetes_validate(root: Path, files: list[str]) -> None:
    # An unknown apiVersion or kind only prints "WARN ... Couldn't find schema" and exits 0: any WARN fails.
    output = run(
        [tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, *files],
        root,
    )
    warnings = [line for line in output.splitlines() if "WARN" in line]
    if warnings:
        raise CheckFailed("\n".join(warnings))


def check_kubernetes_manifests(root: Path) -> str:
    files = manifests(root)
    kubernetes_validate(root, [str(path) for path in files])
    return f"{len(files)} files against Kubernetes {KUBERNETES_VERSION} (strict, WARN fails)"


def check_kustomization(root: Path) -> str:
    kustomization = yaml.safe_load((root / "k8s" / "kustomization.yaml").read_text())
    listed = set(kustomization.get("resources", []))
    present = {path.name for path in manifests(root)}
    problems = []
    if present - listed:
        problems.append(f"not listed in k8s/kustomization.yaml: {sorted(present - listed)}")
    if listed - present:
        problems.append(f"listed in k8s/kustomization.yaml but missing: {sorted(listed - present)}")
    if problems:
        raise CheckFailed("; ".join(problems))
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return f"{len(listed)} resources listed (kubectl absent: not rendered)"
    rendered = run([kubectl, "kustomize", str(root / "k8s")], root)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(rendered)
    try:
        kubernetes_validate(root, [handle.name])
    finally:
        Path(handle.name).unlink()
    documents = [doc for doc in yaml.safe_load_all(rendered) if doc]
    outside = [
        doc["metadata"]["name"] for doc in documents if doc["metadata"].get("namespace", "itsm-system") != "itsm-system"
    ]
    if outside:
        raise CheckFailed(f"rendered outside itsm-system: {outside}")
    return f"{len(listed)} resources listed; kubectl kustomize renders {len(documents)} objects, valid"


def check_production_wiring(root: Path) -> str:
    try:
        return check_production_variables(root)
    except VariablesMissing as error:
        raise CheckFailed(str(error)) from error


def k8s_check(function: Callable[[Path], str]) -> Callable[[Path], str]:
    """A check of scripts/ops_k8s.py, its K8sProblem reported as a failed check."""

    def checked(root: Path) -> str:
        try:
            return function(root)
        except ops_k8s.K8sProblem as error:
            raise CheckFailed(str(error)) from error

    return checked


def pitr_check(function: Callable[[Path], str]) -> Callable[[Path], str]:
    """A check of scripts/ops_pitr.py, its PitrWiringProblem reported as a failed check."""

    def checked(root: Path) -> str:
        try:
            return function(root)
        except ops_pitr.PitrWiringProblem as error:
            raise CheckFailed(str(error)) from error

    return checked


def operator_check(function: Callable[[Path], str]) -> Callable[[Path], str]:
    """A check of scripts/ops_operator.py (the Prometheus Operator component), its problem a failed check."""

    def checked(root: Path) -> str:
        try:
            return function(root)
        except (ops_operator.OperatorProblem, ops_k8s.K8sProblem) as error:
            raise CheckFailed(str(error)) from error

    return checked


# --- Nginx -----------------------------------------------------------------------------------------------------------
NAMESPACE_SCRIPT = """
set -e
# Everything below happens in a private mount namespace: the host's files are untouched.
printf '127.0.0.1 localhost\\n' > "$WORK/hosts"
for name in $UPSTREAMS; do printf '127.0.0.1 %s\\n' "$name" >> "$WORK/hosts"; done
mount --bind "$WORK/hosts" /etc/hosts
mkdir -p /etc/nginx/conf.d
mount -t tmpfs tmpfs /etc/nginx/conf.d
: > /etc/nginx/conf.d/default.conf
mount --bind "$CONF_DIR/nginx-default.conf" /etc/nginx/conf.d/default.conf
mount -t tmpfs tmpfs /var/cache
mkdir /var/cache/nginx
"$NGINX_BIN" -t -q -c "$CONF_DIR/nginx.conf" -e stderr -g "pid $WORK/nginx.pid;"
"""


def unshare_available() -> bool:
    unshare = shutil.which("unshare")
    if not unshare:
        return False
    probe = subprocess.run([unshare, "-m", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def rendered_nginx_copy(root: Path, work: Path) -> Path:
    """Without mount namespaces: a copy with the upstream hosts, the include and the cache path rewritten."""
    default = (root / "nginx" / "nginx-default.conf").read_text()
    for name in NGINX_UPSTREAM_HOSTS:
        default = re.sub(rf"\bserver {name}:", "server 127.0.0.1:", default)
    (work / "default.conf").write_text(default)
    main = (root / "nginx" / "nginx.conf").read_text()
    main = main.replace("/etc/nginx/conf.d/*.conf", str(work / "default.conf"))
    main = main.replace("/var/cache/nginx/", f"{work}/cache/")
    (work / "cache").mkdir(exist_ok=True)
    (work / "nginx.conf").write_text(main)
    return work / "nginx.conf"


def check_nginx(root: Path) -> str:
    # The real files, as the nginx container sees them (/etc/nginx/conf.d/default.conf), with the upstream
    # names resolving to loopback: nginx -t resolves every upstream host and fails on an unknown one.
    nginx = tool("nginx")
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False).stderr.strip()
    with tempfile.TemporaryDirectory(prefix="itsm-nginx-t-") as directory:
        work = Path(directory)
        if unshare_available():
            env = clean_env(
                WORK=str(work),
                CONF_DIR=str(root / "nginx"),
                # Not NGINX: nginx reads that variable as a list of inherited sockets.
                NGINX_BIN=nginx,
                UPSTREAMS=" ".join(NGINX_UPSTREAM_HOSTS),
            )
            run(["unshare", "-m", "sh", "-c", NAMESPACE_SCRIPT], root, env)
            how = "real files in a private mount namespace"
        else:
            config = rendered_nginx_copy(root, work)
            run([nginx, "-t", "-q", "-c", str(config), "-e", "stderr", "-g", f"pid {work}/nginx.pid;"], root)
            how = "rendered copy (no mount namespaces here)"
    return f"{version.removeprefix('nginx version: ')}, {how}"


def check_gixy(root: Path) -> str:
    # gixy follows `include`: analyse a copy whose include points at nginx-default.conf (only paths differ).
    gixy = tool("gixy")
    with tempfile.TemporaryDirectory(prefix="itsm-gixy-") as directory:
        work = Path(directory)
        config = rendered_nginx_copy(root, work)
        output = run([gixy, str(config)], root)
    if "No issues found" not in output:
        raise CheckFailed(output)
    return "no issues"


# --- Prometheus and Alertmanager -------------------------------------------------------------------------------------
def _with_secret_files(config: Path, scratch: Path) -> Path:
    """prometheus.yml with each credentials_file under /run/secrets/ (compose's secrets, absent here) pointed at a
    file in `scratch`, for promtool, which stats them; the rules stay beside it (a link), as rule_files expects."""
    text = yaml.safe_load(config.read_text())
    for job in text.get("scrape_configs") or []:
        authorization = job.get("authorization") or {}
        secret = authorization.get("credentials_file", "")
        if secret.startswith("/run/secrets/"):
            stand_in = scratch / Path(secret).name
            stand_in.write_text("validate-ops-token")
            authorization["credentials_file"] = str(stand_in)
    (scratch / "rules").symlink_to(config.parent / "rules")
    derived = scratch / "prometheus.yml"
    derived.write_text(yaml.safe_dump(text, sort_keys=False))
    return derived


def check_promtool(root: Path) -> str:
    promtool = tool("promtool")
    # rule_files stay relative (rules/*.yml): an absolute glob that matches nothing still says SUCCESS.
    config = root / "monitoring" / "prometheus.yml"
    if any(Path(pattern).is_absolute() for pattern in yaml.safe_load(config.read_text()).get("rule_files") or []):
        raise CheckFailed("monitoring/prometheus.yml: rule_files must be relative (rules/*.yml)")
    with tempfile.TemporaryDirectory() as scratch:
        run(
            [promtool, "check", "config", "--lint=all", "--lint-fatal", str(_with_secret_files(config, Path(scratch)))],
            root,
        )
    checked = ["prometheus.yml"]
    rules = sorted((root / "monitoring" / "rules").glob("*.yml"))
    if rules:
        run([promtool, "check", "rules", "--lint=all", "--lint-fatal", *(str(path) for path in rules)], root)
        checked.append(f"{len(rules)} rule files")
    tests = sorted((root / "monitoring" / "tests").glob("*.yml"))
    if tests:
        run([promtool, "test", "rules", *(str(path) for path in tests)], root / "monitoring" / "tests")
        checked.append(f"{len(tests)} rule test files")
    alerts = check_alert_conventions(root, rules, tests)
    checked.append(f"{alerts} alerts with labels, annotations, a runbook and firing and quiet tests")
    return ", ".join(checked)


ALERT_LABELS = ("severity", "service")
ALERT_ANNOTATIONS = ("summary", "description", "runbook_url")
SEVERITIES = ("critical", "warning", "info")


# Every runbook_url is RUNBOOK_BASE + <AlertName>.md: an absolute link that works from a page or an e-mail, to
# docs/runbooks/<AlertName>.md published there. A deployment that publishes the docs elsewhere replaces the base in
# monitoring/rules/ and monitoring/tests/ (docs/monitoring.md) and runs ops-check with ITSM_RUNBOOK_BASE_URL.
RUNBOOK_BASE = os.environ.get("ITSM_RUNBOOK_BASE_URL", "https://itsm.example.com/docs/runbooks/")


def check_alert_conventions(root: Path, rules: list[Path], tests: list[Path]) -> int:
    """Labels, annotations and runbooks of every alert, and a firing and a quiet promtool case for each."""
    problems = []
    names = []
    if not re.fullmatch(r"https?://[^/\s]+/\S*/", RUNBOOK_BASE):
        problems.append(f"runbook base {RUNBOOK_BASE!r} is not an absolute http(s) URL ending in /")
    for path in rules:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                name = rule["alert"]
                names.append(name)
                labels, annotations = rule.get("labels") or {}, rule.get("annotations") or {}
                problems += [f"{name}: no label {key}" for key in ALERT_LABELS if not labels.get(key)]
                problems += [f"{name}: no annotation {key}" for key in ALERT_ANNOTATIONS if not annotations.get(key)]
                if labels.get("severity") not in SEVERITIES:
                    problems.append(f"{name}: severity {labels.get('severity')!r} not in {SEVERITIES}")
                runbook = annotations.get("runbook_url", "")
                if runbook != f"{RUNBOOK_BASE}{name}.md":
                    problems.append(f"{name}: runbook_url {runbook!r} is not {RUNBOOK_BASE}{name}.md")
                elif not (root / "docs" / "runbooks" / f"{name}.md").is_file():
                    problems.append(f"{name}: docs/runbooks/{name}.md does not exist")
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in tests:
        for case in yaml.safe_load(path.read_text()).get("tests") or []:
            for test in case.get("alert_rule_test") or []:
                (firing if test.get("exp_alerts") else quiet).add(test["alertname"])
    for name in names:
        if name not in firing:
            problems.append(f"{name}: no promtool case where it fires (monitoring/tests/)")
        if name not in quiet and name != "Watchdog":
            problems.append(f"{name}: no promtool case where it does not fire yet (monitoring/tests/)")
    if len(set(names)) != len(names):
        problems.append(f"duplicate alert names: {sorted(n for n in set(names) if names.count(n) > 1)}")
    if problems:
        raise CheckFailed("alert conventions:\n" + "\n".join(problems))
    return len(names)


def check_amtool(root: Path) -> str:
    try:
        return ops_alertmanager.check_compose(root, tool("amtool"))
    except ops_alertmanager.AlertmanagerProblem as error:
        raise CheckFailed(str(error)) from error


def check_alertmanager_k8s(root: Path) -> str:
    """The Kubernetes copy of alertmanager.yml: valid, routed like compose's, the intake at the API Service."""
    try:
        ops_alertmanager.check_kubernetes(root, tool("amtool"))
    except ops_alertmanager.AlertmanagerProblem as error:
        raise CheckFailed(str(error)) from error
    return k8s_check(ops_k8s.check_alertmanager_intake)(root)


# --- Grafana ---------------------------------------------------------------------------------------------------------
# Grafana's built-in interval variables, replaced by a plain range so promtool can parse the query.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def check_grafana(root: Path) -> str:
    """No off-the-shelf offline validator: parse each dashboard, check uids, panel ids and data sources, and parse
    every PromQL target with promtool (written as recording rules)."""
    grafana = root / "monitoring" / "grafana"
    provisioned = set()
    for path in sorted((grafana / "provisioning" / "datasources").glob("*.yml")):
        provisioned |= {source["uid"] for source in yaml.safe_load(path.read_text())["datasources"]}
    providers = [
        provider
        for path in sorted((grafana / "provisioning" / "dashboards").glob("*.yml"))
        for provider in yaml.safe_load(path.read_text())["providers"]
    ]
    if not providers:
        raise CheckFailed("monitoring/grafana/provisioning/dashboards/ provisions no dashboards")
    problems: list[str] = []
    uids: dict[str, str] = {}
    expressions: list[tuple[str, str]] = []
    dashboards = sorted((grafana / "dashboards").glob("*.json"))
    for path in dashboards:
        try:
            board = json.loads(path.read_text())
        except ValueError as error:
            problems.append(f"{path.name}: not JSON: {error}")
            continue
        if "__inputs" in board:
            problems.append(f"{path.name}: an __inputs block (file provisioning does not resolve ${{DS_...}})")
        uid = board.get("uid")
        if not uid or uid in uids:
            problems.append(f"{path.name}: uid {uid!r} missing or also in {uids.get(uid)}")
        uids[str(uid)] = path.name
        panel_ids: set[int] = set()
        for panel in board.get("panels", []):
            if panel.get("id") in panel_ids or panel.get("id") is None:
                problems.append(f"{path.name}: panel id {panel.get('id')!r} missing or repeated")
            panel_ids.add(panel.get("id"))
            for target in [panel, *panel.get("targets", [])]:
                source = (target.get("datasource") or {}).get("uid")
                if source is not None and source not in provisioned:
                    problems.append(f"{path.name}: panel {panel.get('title')!r} uses data source {source!r}")
            for target in panel.get("targets", []):
                expr = target.get("expr", "")
                if not expr.strip():
                    problems.append(f"{path.name}: panel {panel.get('title')!r} has an empty query")
                    continue
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                expressions.append((f"{path.name}: {panel.get('title')}", expr))
    if problems:
        raise CheckFailed("\n".join(problems))
    rules = {
        "groups": [
            {
                "name": "grafana-queries",
                "rules": [
                    {"record": f"grafana_query:{index}", "expr": expr} for index, (_, expr) in enumerate(expressions)
                ],
            }
        ]
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        yaml.safe_dump(rules, handle)
    try:
        run([tool("promtool"), "check", "rules", handle.name], root)
    except CheckFailed as error:
        where = re.findall(r"group \"grafana-queries\", rule (\d+)", str(error))
        panels = [expressions[int(n) - 1][0] for n in where if 0 < int(n) <= len(expressions)]
        raise CheckFailed(f"{error}\npanels: {panels}") from error
    finally:
        Path(handle.name).unlink()
    return f"{len(dashboards)} dashboards, {len(expressions)} queries parsed by promtool, uids {sorted(provisioned)}"


CHECKS = (
    Check("docker compose config", check_compose_config),
    Check("compose schema", check_compose_schema),
    Check("hadolint Dockerfile", check_hadolint),
    Check("shellcheck", check_shellcheck),
    Check("yamllint", check_yamllint),
    Check("kubernetes-validate k8s/", check_kubernetes_manifests),
    Check("kustomization", check_kustomization),
    Check("production variables", check_production_wiring),
    Check("backups on a shared claim", k8s_check(ops_k8s.check_backup_claim)),
    Check("ingress routes", k8s_check(ops_k8s.check_ingress_routes)),
    Check("scraping allowed", k8s_check(ops_k8s.check_scraping_allowed)),
    Check("database paths", k8s_check(ops_k8s.check_database_paths)),
    Check("pgBackRest wiring in compose", pitr_check(ops_pitr.check_compose)),
    Check("pgBackRest wiring on Kubernetes", pitr_check(ops_pitr.check_k8s)),
    Check("nginx -t", check_nginx),
    Check("gixy nginx/", check_gixy),
    Check("promtool", check_promtool),
    Check("amtool", check_amtool),
    Check("alertmanager on Kubernetes", check_alertmanager_k8s),
    Check("grafana dashboards", check_grafana),
    Check("operator component", operator_check(ops_operator.check_component)),
    Check("operator monitors", operator_check(ops_operator.check_monitors)),
    Check("operator PrometheusRule", operator_check(ops_operator.check_prometheus_rule)),
    Check("operator dashboards", operator_check(ops_operator.check_dashboards)),
    Check("operator Alertmanager", operator_check(ops_operator.check_alertmanager)),
)


# --- Self-test: each validator must reject a broken copy (the faults: scripts/ops_breakages.py) -----------------


@contextlib.contextmanager
def broken_copy(breakage: Breakage) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="itsm-ops-selftest-") as directory:
        copy = Path(directory)
        for name in DEPLOY_FILES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, copy / name)
            else:
                shutil.copy2(source, copy / name)
        target = copy / breakage.path
        text = target.read_text()
        if text.count(breakage.old) < 1:
            raise StaleBreakage(f"self-test is stale: {breakage.old!r} is not in {breakage.path}")
        target.write_text(text.replace(breakage.old, breakage.new, 1))
        yield copy


def first_reason(output: str) -> str:
    """The line of a tool's output that says what is wrong."""
    lines = [line.strip() for line in output.splitlines()[1:] if line.strip()] or [output]
    pattern = re.compile(r"emerg|error|fail|warn|DL\d{4}|SC\d{4}|not listed|Problem", re.IGNORECASE)
    return next((line for line in lines if pattern.search(line)), lines[0])


def self_test() -> int:
    checks = {check.name: check for check in CHECKS}
    failures = 0
    for breakage in BREAKAGES:
        started = time.monotonic()
        try:
            with broken_copy(breakage) as copy:
                checks[breakage.check].run(copy)
        except StaleBreakage as error:
            failures += 1
            print(f"FAIL  {breakage.check}: {error}")
            continue
        except CheckFailed as error:
            reason = first_reason(str(error))
            print(
                f"ok    {breakage.check} rejects {breakage.what} ({time.monotonic() - started:.1f} s): {reason[:110]}"
            )
            continue
        failures += 1
        print(f"FAIL  {breakage.check} accepted {breakage.what} in {breakage.path}")
    return 1 if failures else 0


def validate() -> int:
    failures = 0
    for check in CHECKS:
        started = time.monotonic()
        try:
            detail = check.run(ROOT)
        except CheckFailed as error:
            failures += 1
            print(f"FAIL  {check.name}\n{error}")
            continue
        print(f"ok    {check.name} ({time.monotonic() - started:.1f} s): {detail}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true", help="check that each validator rejects a broken file")
    arguments = parser.parse_args()
    return self_test() if arguments.self_test else validate()


if __name__ == "__main__":
    sys.exit(main())
