"""The deployment files say what the operations manual says: its service names, start order, resources, the
Kubernetes names its kubectl commands use, one Beat, and Nginx tuned as it tunes it. (Syntax and schemas are
checked by scripts/validate_ops.py, `make ops-check`.)"""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from itsm_project.celery import QUEUES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
MANIFESTS = {
    path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for path in sorted((ROOT / "k8s").glob("*.yaml"))
}
NGINX = (ROOT / "nginx" / "nginx.conf").read_text() + (ROOT / "nginx" / "nginx-default.conf").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
ENTRYPOINT = (ROOT / "docker" / "entrypoint.sh").read_text()

MANUAL_SERVICES = {
    "backend",
    "celery",
    "celery-beat",
    "postgres",
    "redis",
    "nginx",
    "prometheus",
    "grafana",
    "alertmanager",
}
EXPORTERS = {"postgres-exporter", "redis-exporter", "nginx-exporter"}
# The manual's "Resource Allocation" (Celery Workers x2: two replicas of one core and 1 GB each).
MANUAL_LIMITS = {
    "postgres": ("1.0", "2G"),
    "redis": ("0.5", "512M"),
    "backend": ("1.0", "1G"),
    "celery": ("1.0", "1G"),
    "celery-beat": ("0.5", "256M"),
    "nginx": ("0.5", "256M"),
    "prometheus": ("0.5", "512M"),
    "grafana": ("0.5", "256M"),
}


def k8s_objects() -> list[dict[str, Any]]:
    return [doc for docs in MANIFESTS.values() for doc in docs if doc.get("kind") != "Kustomization"]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    matches = [doc for doc in k8s_objects() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_specs() -> dict[str, dict[str, Any]]:
    specs = {}
    for doc in k8s_objects():
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            specs[f"{doc['kind']}/{doc['metadata']['name']}"] = doc["spec"]["template"]["spec"]
    return specs


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(word) for word in command]


# --- docker compose -----------------------------------------------------------------------------------------------
def test_compose_has_the_manuals_services_and_the_exporters():
    assert set(SERVICES) >= MANUAL_SERVICES | EXPORTERS


def test_no_service_has_a_fixed_container_name_so_scale_works():
    # `docker compose up -d --scale celery=3` and `--scale backend=3` fail with a fixed container_name.
    assert [name for name, service in SERVICES.items() if "container_name" in service] == []
    assert "ports" not in SERVICES["backend"]
    assert "ports" not in SERVICES["celery"]


def test_compose_starts_services_in_the_manuals_order():
    def healthy_dependencies(name: str) -> set[str]:
        depends = SERVICES[name].get("depends_on", {})
        return {dep for dep, rule in depends.items() if rule.get("condition") == "service_healthy"}

    # PgBouncer (transaction pooling) stands between the API and PostgreSQL; it waits for PostgreSQL itself.
    assert healthy_dependencies("backend") == {"postgres", "pgbouncer", "redis", "redis-broker"}
    assert healthy_dependencies("pgbouncer") == {"postgres"}
    assert healthy_dependencies("celery") == {"backend", "redis-broker"}
    assert healthy_dependencies("celery-beat") == {"backend", "redis-broker"}
    assert healthy_dependencies("nginx") == {"backend"}
    # Nginx resolves `backend` at start: it must restart when the backend containers are recreated.
    assert SERVICES["nginx"]["depends_on"]["backend"]["restart"] is True


def test_compose_health_checks_are_the_manuals():
    assert "pg_isready" in SERVICES["postgres"]["healthcheck"]["test"]
    assert SERVICES["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert SERVICES["redis-broker"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert "docker/healthcheck.py" in SERVICES["backend"]["healthcheck"]["test"]
    assert "/health/" in (ROOT / "docker" / "healthcheck.py").read_text()
    assert "inspect ping" in " ".join(SERVICES["celery"]["healthcheck"]["test"])


def test_the_backend_runs_deploy_checks_then_migrations_then_gunicorn():
    assert command_words(SERVICES["backend"]) == ["backend"]
    backend_role = ENTRYPOINT.split("    backend)", 1)[1].split(";;", 1)[0]
    steps = [line.strip() for line in backend_role.strip().splitlines()]
    assert steps[0] == "deploy_checks"
    assert steps[1] == "python docker/migrate.py"
    assert steps[-1].startswith("exec gunicorn itsm_project.wsgi -c gunicorn.conf.py")
    assert "python manage.py check --deploy --fail-level ERROR" in ENTRYPOINT
    assert 'call_command("migrate", interactive=False)' in (ROOT / "docker" / "migrate.py").read_text()


def test_the_image_consumes_every_queue_the_app_routes_to():
    queues = re.search(r'^QUEUES="([^"]+)"', ENTRYPOINT, re.MULTILINE)
    assert queues is not None
    assert queues.group(1).split(",") == list(QUEUES)


def test_compose_limits_are_the_manuals_resource_allocation():
    for name, (cpus, memory) in MANUAL_LIMITS.items():
        limits = SERVICES[name]["deploy"]["resources"]["limits"]
        assert (str(limits["cpus"]), limits["memory"]) == (cpus, memory), name
    assert SERVICES["celery"]["deploy"]["replicas"] == 2
    assert "replicas" not in SERVICES["celery-beat"].get("deploy", {})
    for name, service in SERVICES.items():
        assert "limits" in service.get("deploy", {}).get("resources", {}), f"{name} has no resource limits"


def test_monitoring_uis_listen_on_loopback_only_and_only_nginx_is_public():
    for name in ("prometheus", "grafana", "alertmanager"):
        assert all(str(port).startswith("127.0.0.1:") for port in SERVICES[name]["ports"]), name
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"nginx", "prometheus", "grafana", "alertmanager"}


def test_the_broker_keeps_its_data_and_the_cache_evicts():
    broker = " ".join(command_words(SERVICES["redis-broker"]))
    cache = " ".join(command_words(SERVICES["redis"]))
    assert "--appendonly yes" in broker
    assert "--maxmemory-policy noeviction" in broker
    assert "--maxmemory-policy allkeys-lru" in cache
    assert "--maxmemory " in cache
    environment = SERVICES["backend"]["environment"]
    assert environment["REDIS_URL"].startswith("redis://redis:")
    assert environment["CELERY_BROKER_URL"].startswith("redis://redis-broker:")


def test_data_lives_in_named_volumes():
    assert {"postgres-data", "redis-data", "redis-broker-data", "backups", "media", "static"} <= set(COMPOSE["volumes"])
    mounts = {
        name: [str(volume).split(":")[0] for volume in service.get("volumes", [])] for name, service in SERVICES.items()
    }
    assert "postgres-data" in mounts["postgres"]
    assert "redis-broker-data" in mounts["redis-broker"]
    assert {"media", "backups", "static"} <= set(mounts["backend"])
    assert "static" in mounts["nginx"]


def test_env_file_is_optional_and_the_secrets_are_required():
    for name in ("backend", "celery", "celery-beat"):
        assert SERVICES[name]["env_file"] == [{"path": ".env", "required": False}]
    text = (ROOT / "docker-compose.yml").read_text()
    required = ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
    for variable in (*required, "EMAIL_URL", "ITSM_PUBLIC_URL", "ITSM_ALERTMANAGER_TOKEN"):
        assert "${" + variable + ":?" in text, variable


def test_the_manuals_database_name_and_user():
    environment = SERVICES["postgres"]["environment"]
    assert (environment["POSTGRES_DB"], environment["POSTGRES_USER"]) == ("itsm_db", "postgres")
    assert "shared_preload_libraries=pg_stat_statements" in command_words(SERVICES["postgres"])


def test_prometheus_scrapes_services_that_exist():
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    hosts = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            hosts |= {re.sub(r"^redis://", "", target).split(":")[0] for target in static["targets"]}
        for dns in job.get("dns_sd_configs", []):
            hosts |= set(dns["names"])
        for relabel in job.get("relabel_configs", []):
            if relabel.get("target_label") == "__address__":
                hosts.add(relabel["replacement"].split(":")[0])
    assert hosts - {"localhost"} <= set(SERVICES)
    assert {"backend", "postgres-exporter", "redis-exporter", "nginx-exporter"} <= hosts


# --- Dockerfile ---------------------------------------------------------------------------------------------------
def test_dockerfile_is_multi_stage_on_a_pinned_slim_base_and_runs_as_non_root():
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert bases == ["python:3.11-slim-bookworm", "python:3.11-slim-bookworm"]
    build, runtime = DOCKERFILE.split("\nFROM ")[1:]
    assert "build-essential" in build
    assert "build-essential" not in runtime
    assert "postgresql-client-15" in runtime
    user = re.findall(r"^USER (\S+)", runtime, re.MULTILINE)
    assert user == ["10001:10001"]
    assert "collectstatic" in runtime
    assert re.search(r"^HEALTHCHECK .*docker/healthcheck\.py", runtime, re.MULTILINE)
    assert 'ENTRYPOINT ["docker/entrypoint.sh"]' in runtime


# --- Nginx --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "directive",
    [
        "worker_processes auto;",
        "worker_connections 10000;",
        "use epoll;",
        "gzip on;",
        "gzip_vary on;",
        "gzip_comp_level 6;",
        "application/json",
        "upstream django_cluster {",
        "least_conn;",
        "server backend:8000 max_fails=3 fail_timeout=30s;",
        "keepalive 32;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "keys_zone=api_cache:10m max_size=1g",
        "proxy_cache api_cache;",
        "proxy_cache_valid 200 5m;",
        "proxy_cache_bypass $itsm_skip_cache;",
        "proxy_no_cache $itsm_skip_cache;",
        "add_header X-Cache-Status $upstream_cache_status always;",
        "server_tokens off;",
        "client_max_body_size 10m;",
        "limit_req zone=login",
        "location ^~ /metrics {",
        "alias /srv/static/;",
    ],
)
def test_nginx_has_the_manuals_tuning(directive):
    assert directive in NGINX


def test_the_cache_is_skipped_for_tokens_and_sessions():
    skip_map = NGINX.split("map $http_authorization$cookie_sessionid $itsm_skip_cache {", 1)[1].split("}", 1)[0]
    assert re.search(r'""\s+0;', skip_map)
    assert re.search(r"default\s+1;", skip_map)


def test_gunicorn_gives_up_before_nginx(monkeypatch):
    for name in ("ITSM_GUNICORN_TIMEOUT", "ITSM_GUNICORN_WORKERS", "ITSM_GUNICORN_MAX_REQUESTS"):
        monkeypatch.delenv(name, raising=False)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    read_timeout = re.search(r"proxy_read_timeout (\d+)s;", NGINX)
    assert read_timeout is not None
    assert config["timeout"] < int(read_timeout.group(1))
    assert config["workers"] == 4
    assert config["max_requests"] > 0
    assert config["max_requests_jitter"] > 0


# --- Kubernetes ---------------------------------------------------------------------------------------------------
def test_every_manifest_is_listed_in_the_kustomization():
    kustomization = MANIFESTS["kustomization.yaml"][0]
    assert kustomization["namespace"] == "itsm-system"
    assert set(kustomization["resources"]) == set(MANIFESTS) - {"kustomization.yaml"}


def test_the_manuals_kubectl_names_exist():
    k8s_object("Namespace", "itsm-system")
    api = k8s_object("Deployment", "itsm-api")
    assert [c["name"] for c in api["spec"]["template"]["spec"]["containers"]] == ["django"]
    hpa = k8s_object("HorizontalPodAutoscaler", "itsm-api-hpa")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "itsm-api"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    # The HPA owns the API's replica count.
    assert "replicas" not in api["spec"]
    k8s_object("PodDisruptionBudget", "itsm-api-pdb")
    k8s_object("Service", "itsm-api")
    for doc in k8s_objects():
        assert doc["metadata"].get("namespace") == "itsm-system" or doc["kind"] == "Namespace", doc["metadata"]


def test_beat_runs_exactly_one_replica_and_is_recreated():
    beat = k8s_object("Deployment", "itsm-celery-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert [c["args"] for c in beat["spec"]["template"]["spec"]["containers"]] == [["beat"]]
    assert k8s_object("Deployment", "itsm-celery")["spec"]["replicas"] == 2


def test_migrations_run_in_a_job_and_the_api_does_not_migrate():
    job = k8s_object("Job", "itsm-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    api = k8s_object("Deployment", "itsm-api")["spec"]["template"]["spec"]
    assert api["containers"][0]["args"] == ["api"]
    api_role = ENTRYPOINT.split("    api)", 1)[1].split(";;", 1)[0]
    assert "migrate.py" not in api_role
    assert "wait_for_migrations" in api_role


def test_every_pod_meets_the_restricted_pod_security_standard():
    assert k8s_object("Namespace", "itsm-system")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )
    for name, spec in pod_specs().items():
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, name
        assert pod.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        assert spec.get("automountServiceAccountToken") is False, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, container["name"])
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), (name, container["name"])
            assert {"cpu", "memory"} <= set(resources["limits"]), (name, container["name"])


def test_the_api_pod_is_read_only_with_a_memory_metrics_directory_and_probes_health():
    spec = k8s_object("Deployment", "itsm-api")["spec"]["template"]
    django = spec["spec"]["containers"][0]
    assert django["securityContext"]["readOnlyRootFilesystem"] is True
    config = k8s_object("ConfigMap", "itsm-config")["data"]
    mounts = {mount["mountPath"]: mount["name"] for mount in django["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in spec["spec"]["volumes"]}
    assert volumes[mounts[config["PROMETHEUS_MULTIPROC_DIR"]]]["emptyDir"]["medium"] == "Memory"
    assert django["readinessProbe"]["httpGet"]["path"] == "/health/"
    assert django["startupProbe"]["httpGet"]["path"] == "/health/"
    assert "preStop" in django["lifecycle"]
    assert spec["spec"]["terminationGracePeriodSeconds"] > 25
    assert spec["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    # The manual's resource table: the API gets 1 core and 1 GB.
    assert django["resources"]["limits"]["cpu"] == "1"
    assert django["resources"]["limits"]["memory"] == "1Gi"


def test_the_ingress_does_not_route_metrics():
    paths = [
        path["path"]
        for doc in k8s_objects()
        if doc["kind"] == "Ingress"
        for rule in doc["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert "/api" in paths
    assert not [path for path in paths if path == "/" or path.startswith("/metrics")]


def test_kubernetes_redis_follows_the_broker_and_cache_split():
    broker = " ".join(k8s_object("StatefulSet", "redis-broker")["spec"]["template"]["spec"]["containers"][0]["args"])
    cache = " ".join(k8s_object("Deployment", "redis")["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "--appendonly yes" in broker
    assert "noeviction" in broker
    assert "allkeys-lru" in cache
    postgres = k8s_object("StatefulSet", "postgres")
    assert postgres["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "50Gi"
