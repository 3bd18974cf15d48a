"""Configuration stays in sync: what the code reads, `.env.example` and `docs/configuration.md` name the same
variables, and the production system checks pass on a production environment and fail without a secret key."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"
CONFIGURATION_DOC = ROOT / "docs" / "configuration.md"

NAME = r"([A-Z][A-Z0-9_]*)"
# env_str("X"), env_bool("X", ...), env_int('X', ...) and the other typed helpers of itsm_project/env.py.
SETTINGS_READ = re.compile(r"\benv_(?:str|bool|int|float|list|secrets?)\(\s*[\"']" + NAME + r"[\"']")
SETTINGS_SECRET = re.compile(r"\benv_secrets?\(\s*[\"']" + NAME + r"[\"']")
# os.environ.get("X"), os.environ["X"], os.getenv("X") in plain Python files.
OS_ENVIRON_READ = re.compile(r"os\.(?:environ\.get\(|environ\[|getenv\()\s*[\"']" + NAME + r"[\"']")
# `NAME ?= default` (the environment overrides it) and `$${NAME:-default}` in recipes.
MAKEFILE_READ = re.compile(r"^" + NAME + r"\s*\?=|\$\$\{" + NAME + r"[:}-]", re.MULTILINE)
# `${NAME}`, `${NAME:-default}`, `${NAME:?message}` interpolated by docker compose (not `$${NAME}`, which is the
# container's own variable).
COMPOSE_READ = re.compile(r"(?<!\$)\$\{" + NAME + r"[:?}-]")
# `NAME=value` or `# NAME=value`; prose comments never start with a NAME= pair.
ENV_EXAMPLE_LINE = re.compile(r"^\s*#?\s*" + NAME + r"=", re.MULTILINE)
# The first cell of a row of a configuration table: | `NAME` | ...
DOC_TABLE_ROW = re.compile(r"^\|\s*`" + NAME + r"`\s*\|", re.MULTILINE)

PYTHON_SOURCES = ("gunicorn.conf.py", "scripts/run_platform.py", "docker/healthcheck.py")

# The production environment of docs/configuration.md. check --deploy does not connect to the services.
PRODUCTION_ENV = {
    # 50+ random characters, or Django's own security.W009 fires.
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/itsm_db",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ITSM_HTTPS": "true",
    "ITSM_REQUIRE_2FA_FOR_ADMINS": "true",
    "DJANGO_ALLOWED_HOSTS": "itsm.example.com",
    # Without these check --deploy refuses to start (itsm.E006-E009; tests/test_production_checks.py).
    "EMAIL_URL": "smtp://itsm:" + secrets.token_hex(12) + "@mail.example.com:587/?tls=true",
    "ITSM_ALERTMANAGER_TOKEN": secrets.token_hex(24),
    "ITSM_METRICS_TOKEN": secrets.token_hex(24),
    "ALERTMANAGER_URL": "http://alertmanager:9093",
    "PROMETHEUS_URL": "http://prometheus:9090",
    # Without it the archives would be stored in the clear (itsm.E025); a fixed, valid age key.
    "BACKUP_ENCRYPTION_KEY": "AGE-SECRET-KEY-12QS68V03VQDFZ3260Y6ML3DZ44ZKP3Z07YRS992WJ2WJAPYXA3DQ0C4U3W",
}


def _read(relative: str) -> str:
    return (ROOT / relative).read_text()


def _settings_variables() -> set[str]:
    return set(SETTINGS_READ.findall(_read("itsm_project/settings.py")))


def _secret_variables() -> set[str]:
    return set(SETTINGS_SECRET.findall(_read("itsm_project/settings.py")))


def _python_variables() -> set[str]:
    return {name for source in PYTHON_SOURCES for name in OS_ENVIRON_READ.findall(_read(source))}


def _makefile_variables() -> set[str]:
    return {name for match in MAKEFILE_READ.findall(_read("Makefile")) for name in match if name}


def _compose_variables() -> set[str]:
    """Interpolated variables, and the variables compose hands to a container as a secret file."""
    compose_secrets = yaml.safe_load(_read("docker-compose.yml")).get("secrets") or {}
    sources = {source["environment"] for source in compose_secrets.values() if "environment" in source}
    return set(COMPOSE_READ.findall(_read("docker-compose.yml"))) | sources


def _code_variables() -> set[str]:
    return _settings_variables() | _python_variables() | _makefile_variables() | _compose_variables()


def _known_variables() -> set[str]:
    """What the code reads, plus the NAME_FILE form of every secret (read by env_secret)."""
    return _code_variables() | {f"{name}_FILE" for name in _secret_variables()}


def _env_example_variables() -> list[str]:
    return ENV_EXAMPLE_LINE.findall(ENV_EXAMPLE.read_text())


def _manage_py_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _clean_environment(var_dir: Path) -> dict[str, str]:
    """The test process's environment without any variable the code reads, so a developer's own settings never
    change the outcome of the subprocess checks."""
    env = {name: value for name, value in os.environ.items() if name not in _known_variables()}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["ITSM_VAR_DIR"] = str(var_dir)
    return env


def test_the_parsers_find_the_variables_they_are_meant_to_find():
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "ITSM_DB_STATEMENT_TIMEOUT_MS"} <= _settings_variables()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"} <= _secret_variables()
    assert {"PORT", "PROMETHEUS_MULTIPROC_DIR", "ITSM_STOP_GRACE_SECONDS"} <= _python_variables()
    assert {"TEST_DATABASE_URL", "TEST_REDIS_URL", "DATABASE_URL", "REDIS_URL"} <= _makefile_variables()


def test_every_variable_the_code_reads_is_in_env_example():
    missing = sorted(_code_variables() - set(_env_example_variables()))
    assert missing == [], f"add these to .env.example: {missing}"


def test_every_variable_in_env_example_is_documented_in_configuration_md():
    documentation = CONFIGURATION_DOC.read_text()
    missing = sorted(name for name in set(_env_example_variables()) if not re.search(rf"\b{name}\b", documentation))
    assert missing == [], f"document these in docs/configuration.md: {missing}"


def test_env_example_names_no_variable_the_code_does_not_read():
    unknown = sorted(set(_env_example_variables()) - _known_variables())
    assert unknown == [], f"nothing reads these, remove them from .env.example: {unknown}"


def test_env_example_lists_each_variable_once():
    names = _env_example_variables()
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert duplicates == []


def test_the_configuration_tables_describe_no_variable_the_code_does_not_read():
    documented = set(DOC_TABLE_ROW.findall(CONFIGURATION_DOC.read_text()))
    assert documented, "docs/configuration.md has no table rows of the form | `NAME` |"
    unknown = sorted(documented - _known_variables())
    assert unknown == [], f"docs/configuration.md describes variables nothing reads: {unknown}"


@pytest.mark.slow
def test_deploy_checks_pass_with_a_production_environment(tmp_path):
    env = _clean_environment(tmp_path) | PRODUCTION_ENV
    result = _manage_py_check(env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_deploy_checks_fail_with_itsm_e001_when_the_secret_key_is_missing(tmp_path):
    env = _clean_environment(tmp_path) | PRODUCTION_ENV
    del env["DJANGO_SECRET_KEY"]
    result = _manage_py_check(env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "itsm.E001" in output, output
    assert not re.search(r"itsm\.E00[234]", output), output
