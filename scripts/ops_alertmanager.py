"""Alertmanager's configuration, for compose and for Kubernetes: valid, routed as the pager needs, every secret wired.

Part of `make ops-check` (scripts/validate_ops.py). The file as committed holds '@@SECRET:<name>@@' where a webhook
URL comes from a secret file; monitoring/alertmanager/render-config.sh writes those in when Alertmanager starts. So
amtool checks the file as render-config.sh renders it, from sample secret files, and every webhook but the intake
must be such a placeholder: a pager's webhook or a dead-man's-switch ping URL is a credential, kept out of git.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ops_k8s
import yaml

COMPOSE_CONFIG = ops_k8s.COMPOSE_ALERTMANAGER
K8S_CONFIG = ops_k8s.K8S_ALERTMANAGER
INTAKE_PATH = ops_k8s.INTAKE_PATH
RENDER = "monitoring/alertmanager/render-config.sh"
SECRETS_DIR = "/run/secrets/"
SECRET_FILE = re.compile(r"^\s*\w+_file:\s*(\S+)", re.MULTILINE)
SECRET_URL = re.compile(r"@@SECRET:([A-Za-z0-9_.-]+)@@")

# Labels of an alert → the receivers Alertmanager must pick, in order. Every receiver of the file must appear here.
# Critical alerts reach on-call past the platform too.
PAGE = "itsm-page,oncall-email,oncall-webhook"
ROUTING_CASES = (
    ("alertname=ApiDown severity=critical service=api", PAGE),
    ("alertname=DatabaseDown severity=critical service=database", PAGE),
    ("alertname=CeleryWorkerDown severity=critical service=workers", PAGE),
    ("alertname=BeatDown severity=critical service=scheduler", PAGE),
    ("alertname=HighErrorRate severity=warning service=api itsm_severity=medium", "itsm-intake"),
    ("alertname=RedisDown severity=warning service=redis itsm_severity=medium", "itsm-intake"),
    ("alertname=Unknown severity=info service=api", "itsm-intake"),
    ("alertname=Unlabelled", "itsm-intake"),
    ("alertname=Watchdog severity=info service=monitoring", "deadmans-switch"),
)


class AlertmanagerProblem(Exception):
    """The configuration is invalid, misrouted or reads a secret nobody provides."""


def _run(command: list[str], root: Path) -> str:
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120, check=False)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise AlertmanagerProblem(f"{Path(command[0]).name} exited {result.returncode}:\n{output}")
    return output


@contextlib.contextmanager
def rendered(root: Path, config: str) -> Iterator[Path]:
    """The configuration as render-config.sh writes it at start, from a sample file per '@@SECRET:<name>@@'."""
    with tempfile.TemporaryDirectory() as work:
        secrets = Path(work) / "secrets"
        secrets.mkdir()
        for name in SECRET_URL.findall((root / config).read_text()):
            (secrets / name).write_text(f"https://{name.replace('_', '-')}.invalid/sample\n")
        output = Path(work) / "alertmanager.yml"
        output.write_text(_run(["sh", str(root / RENDER), str(root / config), str(secrets)], root) + "\n")
        yield output


def _webhook_urls(config: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (receiver["name"], hook.get("url", ""))
        for receiver in config.get("receivers") or []
        for hook in receiver.get("webhook_configs") or []
    ]


def check_secrets(root: Path, config: str) -> str:
    """Every secret the configuration reads (a *_file setting or a '@@SECRET:<name>@@' URL) is a compose secret of the
    alertmanager service and a key of the Kubernetes Secret itsm-alertmanager; no webhook but the intake has its
    URL written in the file."""
    text = (root / config).read_text()
    paths = SECRET_FILE.findall(text)
    outside = [path for path in paths if not path.startswith(SECRETS_DIR)]
    if outside:
        raise AlertmanagerProblem(f"{config} reads secret files outside {SECRETS_DIR}: {outside}")
    urls = set(SECRET_URL.findall(text))
    names = {path.removeprefix(SECRETS_DIR) for path in paths} | urls
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    mounted = set(compose["services"]["alertmanager"].get("secrets") or [])
    defined = set(compose.get("secrets") or {})
    secret = yaml.safe_load((root / "k8s" / "alertmanager-secret.yaml").read_text())
    keys = set(secret.get("stringData") or {}) | set(secret.get("data") or {})
    problems = [f"compose: {name} is not a secret of the alertmanager service" for name in sorted(names - mounted)]
    problems += [f"compose: secret {name} is not defined" for name in sorted(names - defined)]
    problems += [f"k8s/alertmanager-secret.yaml: no key {name}" for name in sorted(names - keys)]
    problems += [
        f"{config}: receiver {receiver} has its URL in the file, not from a secret file ('@@SECRET:<name>@@')"
        for receiver, url in _webhook_urls(yaml.safe_load(text))
        if not url.endswith(INTAKE_PATH) and not SECRET_URL.fullmatch(url)
    ]
    if problems:
        raise AlertmanagerProblem("alertmanager secrets not wired:\n" + "\n".join(problems))
    return f"{len(names)} secret files wired in compose and k8s ({len(urls)} URLs written in by render-config.sh)"


def check_routes(root: Path, config: str, amtool: str) -> int:
    """amtool accepts the rendered file and routes every case to its receivers; returns the receivers' count."""
    with rendered(root, config) as path:
        _run([amtool, "check-config", str(path)], root)
        receivers = {receiver["name"] for receiver in yaml.safe_load(path.read_text())["receivers"]}
        tested = {name for _, expected in ROUTING_CASES for name in expected.split(",")}
        if receivers - tested:
            raise AlertmanagerProblem(f"receivers without a routing case (ROUTING_CASES): {sorted(receivers - tested)}")
        # `amtool config routes test` exits 1 when the route does not end at the expected receiver.
        for labels, receiver in ROUTING_CASES:
            _run(
                [
                    amtool,
                    "config",
                    "routes",
                    "test",
                    f"--config.file={path}",
                    f"--verify.receivers={receiver}",
                    *labels.split(),
                ],
                root,
            )
    return len(receivers)


def check_compose(root: Path, amtool: str) -> str:
    receivers = check_routes(root, COMPOSE_CONFIG, amtool)
    secrets = check_secrets(root, COMPOSE_CONFIG)
    return (
        f"{len(ROUTING_CASES)} routing cases cover {receivers} receivers (critical pages through the intake "
        f"and out of band, warning and info do not, Watchdog to the dead-man's switch); {secrets}"
    )


def check_kubernetes(root: Path, amtool: str) -> int:
    """The Kubernetes copy: valid and routed like compose's, its secrets keys of the Secret."""
    check_secrets(root, K8S_CONFIG)
    return check_routes(root, K8S_CONFIG, amtool)
