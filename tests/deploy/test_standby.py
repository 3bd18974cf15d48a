"""The streaming replica of docker compose and Kubernetes: docker/postgres/standby.sh makes the standby, the
primary's initdb script the role it streams with, and both deployments wire it to the platform's reads
(docs/operations.md#read-replica)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.system.processes import (
    PG_BIN,
    _postgres_user,
    free_port,
    postgres_initdb,
    postgres_owned_dir,
    postgres_query,
    postgres_server,
    wait_for_postgres,
)

ROOT = Path(__file__).resolve().parents[2]
STANDBY = ROOT / "docker" / "postgres" / "standby.sh"
INITDB = ROOT / "docker" / "postgres" / "initdb"
PASSWORD = "standby-test-Password-1"


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def k8s(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((ROOT / "k8s" / name).read_text()) if doc]


def of(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name)


# --- docker compose --------------------------------------------------------------------------------------------------


def test_compose_replica_runs_the_standby_script_before_the_images_entrypoint() -> None:
    replica = compose()["services"]["postgres-replica"]
    assert replica["image"] == compose()["services"]["postgres"]["image"]
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in replica["volumes"]}
    script = replica["entrypoint"][-1]
    assert mounted[script] == "./docker/postgres/standby.sh"
    assert replica["command"][:2] == ["docker-entrypoint.sh", "postgres"]
    assert replica["user"] == "postgres"
    assert replica["environment"]["PRIMARY_HOST"] == "postgres"
    assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_replica_has_the_primarys_max_connections_a_hot_standby_needs() -> None:
    services = compose()["services"]
    primary, replica = services["postgres"]["command"], services["postgres-replica"]["command"]
    setting = next(value for value in primary if value.startswith("max_connections="))
    assert setting in replica


def test_compose_replica_is_healthy_only_in_recovery() -> None:
    test = " ".join(compose()["services"]["postgres-replica"]["healthcheck"]["test"])
    assert "pg_isready" in test
    assert "pg_is_in_recovery()" in test


def test_compose_app_services_read_from_the_replica() -> None:
    services = compose()["services"]
    for name in ("backend", "celery", "celery-beat"):
        url = services[name]["environment"]["ITSM_REPLICA_DATABASE_URL"]
        assert "@postgres-replica:5432/itsm_db" in url, name


def test_prometheus_scrapes_an_exporter_of_the_replica() -> None:
    services = compose()["services"]
    exporter = services["postgres-replica-exporter"]["environment"]
    assert exporter["DATA_SOURCE_URI"].startswith("postgres-replica:5432/itsm_db")
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "postgres")
    replica = next(static for static in job["static_configs"] if "postgres-replica-exporter:9187" in static["targets"])
    # DatabaseDown (the primary) leaves role="replica" out.
    assert replica["labels"] == {"role": "replica"}


# --- Kubernetes ------------------------------------------------------------------------------------------------------


def test_k8s_replica_init_container_runs_the_same_script() -> None:
    docs = k8s("postgres-replica.yaml")
    config_map = of(docs, "ConfigMap", "postgres-standby")
    assert config_map["data"]["standby.sh"] == STANDBY.read_text()
    spec = of(docs, "StatefulSet", "postgres-replica")["spec"]["template"]["spec"]
    init = spec["initContainers"][0]
    mounts = {mount["name"]: mount["mountPath"] for mount in init["volumeMounts"]}
    volume = next(v for v in spec["volumes"] if v.get("configMap", {}).get("name") == "postgres-standby")
    assert init["command"] == ["sh", f"{mounts[volume['name']]}/standby.sh"]
    env = {variable["name"]: variable for variable in init["env"]}
    assert env["PRIMARY_HOST"]["value"] == "postgres"
    assert env["REPLICATION_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "POSTGRES_PASSWORD"
    container = spec["containers"][0]
    assert env["PGDATA"] == {v["name"]: v for v in container["env"]}["PGDATA"]


def test_k8s_primary_initdb_has_the_replication_role_of_compose() -> None:
    data = of(k8s("postgres.yaml"), "ConfigMap", "postgres-initdb")["data"]
    assert data["02-replication.sh"] == (INITDB / "02-replication.sh").read_text()


def test_k8s_replica_has_the_primarys_max_connections() -> None:
    primary = of(k8s("postgres.yaml"), "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0]
    replica = of(k8s("postgres-replica.yaml"), "StatefulSet", "postgres-replica")["spec"]["template"]["spec"]
    setting = next(value for value in primary["args"] if value.startswith("max_connections="))
    assert setting in replica["containers"][0]["args"]


def test_k8s_replica_exporter_is_scraped_in_the_postgres_job() -> None:
    docs = k8s("postgres-replica.yaml")
    spec = of(docs, "StatefulSet", "postgres-replica")["spec"]["template"]["spec"]
    exporter = next(c for c in spec["containers"] if c["name"] == "postgres-exporter")
    env = {v["name"]: v for v in exporter["env"]}
    assert env["DATA_SOURCE_URI"]["value"].startswith("127.0.0.1:5432/itsm_db")
    service = of(docs, "Service", "postgres-replica")
    assert {"name": "metrics", "port": 9187, "targetPort": "metrics"} in service["spec"]["ports"]
    monitors = yaml.safe_load_all((ROOT / "k8s/components/prometheus-operator/monitors.yaml").read_text())
    monitor = of([m for m in monitors if m], "ServiceMonitor", "postgres-replica")
    assert monitor["spec"]["selector"]["matchLabels"] == service["metadata"]["labels"]
    assert monitor["spec"]["endpoints"][0]["relabelings"] == [
        {"targetLabel": "job", "replacement": "postgres"},
        {"targetLabel": "role", "replacement": "replica"},
    ]


@pytest.mark.parametrize("file", ["api-deployment.yaml", "worker-deployment.yaml", "beat-deployment.yaml"])
def test_k8s_platform_reads_the_replica_url_from_the_secret(file: str) -> None:
    deployment = next(doc for doc in k8s(file) if doc["kind"] == "Deployment")
    env = {v["name"]: v for c in deployment["spec"]["template"]["spec"]["containers"] for v in c.get("env") or []}
    reference = env["ITSM_REPLICA_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "itsm-secrets", "key": "ITSM_REPLICA_DATABASE_URL", "optional": True}
    assert "ITSM_REPLICA_DATABASE_URL" in of(k8s("secret.yaml"), "Secret", "itsm-secrets")["stringData"]


def test_k8s_kustomization_lists_the_replica() -> None:
    kustomization = yaml.safe_load((ROOT / "k8s" / "kustomization.yaml").read_text())
    assert "postgres-replica.yaml" in kustomization["resources"]


# --- the script, for real --------------------------------------------------------------------------------------------


sql = postgres_query


def run_as_postgres(command: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess[bytes]:
    with log.open("ab") as out:
        return subprocess.run(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=180, check=False, **_postgres_user()
        )


@pytest.mark.slow
@pytest.mark.skipif(not (PG_BIN / "pg_basebackup").exists(), reason="no PostgreSQL server binaries")
def test_standby_script_makes_a_streaming_standby_of_a_primary_set_up_by_the_initdb_script(tmp_path: Path) -> None:
    home = postgres_owned_dir("itsm-standby-")
    primary_data, replica_data = home / "primary", home / "replica"
    primary_port, replica_port = free_port(), free_port()
    shutil.copy(STANDBY, home / "standby.sh")
    shutil.copy(INITDB / "02-replication.sh", home / "02-replication.sh")
    path = f"{PG_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, home, True)
        postgres_initdb(primary_data, tmp_path / "initdb.log")
        # As the image's pg_hba.conf: the socket trusted, TCP by password (the standby connects over TCP).
        (primary_data / "pg_hba.conf").write_text(
            "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all all scram-sha-256\n"
        )
        primary = postgres_server(primary_data, primary_port, tmp_path / "primary.log")
        stack.enter_context(primary.start())
        wait_for_postgres(primary_port, timeout=60)
        sql(primary_port, "CREATE DATABASE itsm_db")
        init_env = {
            "PATH": path,
            "PGHOST": str(primary_data),
            "PGPORT": str(primary_port),
            "PGDATA": str(primary_data),
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": "itsm_db",
            "POSTGRES_PASSWORD": PASSWORD,
        }
        assert run_as_postgres(["sh", str(home / "02-replication.sh")], init_env, tmp_path / "init.log").returncode == 0
        sql(primary_port, "SELECT pg_reload_conf()")
        sql(primary_port, "CREATE TABLE written (id int)", dbname="itsm_db")
        sql(primary_port, "INSERT INTO written VALUES (1)", dbname="itsm_db")

        env = {
            "PATH": path,
            "PGDATA": str(replica_data),
            "PRIMARY_HOST": "127.0.0.1",
            "PRIMARY_PORT": str(primary_port),
            "STANDBY_WAIT_SECONDS": "10",
        }
        script = ["sh", str(home / "standby.sh")]
        # A wrong password: no standby, and nothing left that a second start would take for one.
        refused = run_as_postgres(script, {**env, "REPLICATION_PASSWORD": "wrong"}, tmp_path / "refused.log")
        assert refused.returncode != 0
        assert not (replica_data / "PG_VERSION").exists()

        made = run_as_postgres(script, {**env, "REPLICATION_PASSWORD": PASSWORD}, tmp_path / "standby.log")
        assert made.returncode == 0, (tmp_path / "standby.log").read_text()
        assert (replica_data / "standby.signal").exists()
        replica = postgres_server(replica_data, replica_port, tmp_path / "replica.log")
        stack.enter_context(replica.start())
        wait_for_postgres(replica_port, timeout=60)
        assert sql(replica_port, "SELECT pg_is_in_recovery()") == (True,)
        assert sql(replica_port, "SELECT count(*) FROM written", dbname="itsm_db") == (1,)
        # Streaming: a row written on the primary after the copy reaches the standby.
        sql(primary_port, "INSERT INTO written VALUES (2)", dbname="itsm_db")
        for _ in range(100):
            if sql(replica_port, "SELECT count(*) FROM written", dbname="itsm_db") == (2,):
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert sql(replica_port, "SELECT count(*) FROM written", dbname="itsm_db") == (2,)
        assert sql(primary_port, "SELECT usename, state FROM pg_stat_replication") == ("replicator", "streaming")

        # On a data directory with a cluster, the script changes nothing and runs the command it is given.
        again = run_as_postgres([*script, "true"], {**env, "REPLICATION_PASSWORD": ""}, tmp_path / "again.log")
        assert again.returncode == 0
        assert "has a cluster already" in (tmp_path / "again.log").read_text()
