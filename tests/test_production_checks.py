"""`check --deploy` refuses what a copied `.env.example` or a half-filled manifest leaves behind: placeholder secrets
(itsm.E005), an e-mail backend that sends nothing (E006), no Alertmanager token (E007), no Alertmanager or
Prometheus URL (E008, E009), each naming the variable."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from itsm.backup.encryption import generate_key
from itsm.checks import check_production_wiring
from tests.test_configuration import ENV_EXAMPLE, _clean_environment, _manage_py_check

REAL = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "SECRET_KEY_GENERATED": False,
    "DATABASE_URL": "postgres://itsm:s3cr3t-pw@postgres:5432/itsm_db",
    "REDIS_URL": "redis://redis:6379/0",
    "CELERY_BROKER_URL": "redis://redis-broker:6379/0",
    "BACKUP_REDIS_URL": "redis://redis-broker:6379/0",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    # The host may say example: only the password is a secret.
    "EMAIL_HOST_PASSWORD": "a-real-password",
    "ITSM_ALERTMANAGER_TOKEN": secrets.token_hex(24),
    "ITSM_METRICS_TOKEN": secrets.token_hex(24),
    "ALERTMANAGER_URL": "http://alertmanager:9093",
    "PROMETHEUS_URL": "http://prometheus:9090",
    "ITSM_MAIL_INBOX_URL": "imaps://support%40example.com:app-password@imap.example.com:993/INBOX",
    "ITSM_MAIL_OAUTH2_CLIENT_SECRET": "",
    "BACKUP_S3_ACCESS_KEY_ID": "",
    "BACKUP_S3_SECRET_ACCESS_KEY": "",
    "ITSM_DEPLOYMENT_SECRETS": {"POSTGRES_PASSWORD": secrets.token_hex(24), "GRAFANA_ADMIN_PASSWORD": ""},
}


@pytest.fixture
def production(settings: Any) -> Any:
    for name, value in REAL.items():
        setattr(settings, name, value)
    return settings


def _errors(settings: Any) -> list[tuple[str, str]]:
    return [(message.id or "", message.msg) for message in check_production_wiring()]


def test_a_production_configuration_has_no_wiring_errors(production):
    assert _errors(production) == []


@pytest.mark.parametrize(
    ("name", "value", "variable"),
    [
        ("SECRET_KEY", "change-me-to-a-long-random-string-of-50-or-more-characters", "DJANGO_SECRET_KEY"),
        ("DATABASE_URL", "postgres://itsm:change-me@postgres:5432/itsm_db", "DATABASE_URL"),
        ("EMAIL_HOST_PASSWORD", "change-me", "EMAIL_URL"),
        ("ITSM_ALERTMANAGER_TOKEN", "change-me-alertmanager-token", "ITSM_ALERTMANAGER_TOKEN"),
        ("ITSM_METRICS_TOKEN", "change-me-metrics-token", "ITSM_METRICS_TOKEN"),
        ("BACKUP_S3_SECRET_ACCESS_KEY", "ExampleSecretKey", "BACKUP_S3_SECRET_ACCESS_KEY"),
        ("ITSM_MAIL_INBOX_URL", "imaps://support:changeme@imap.example.com/INBOX", "ITSM_MAIL_INBOX_URL"),
    ],
)
def test_a_placeholder_secret_is_itsm_e005_naming_its_variable(production, name, value, variable):
    setattr(production, name, value)
    errors = _errors(production)
    assert [error_id for error_id, _ in errors] == ["itsm.E005"]
    assert errors[0][1].startswith(f"{variable} is still a placeholder")


def test_a_placeholder_of_a_service_the_app_only_sees_in_its_environment_is_named(production):
    production.ITSM_DEPLOYMENT_SECRETS = {"GRAFANA_ADMIN_PASSWORD": "change-me", "POSTGRES_PASSWORD": ""}
    assert _errors(production) == [
        ("itsm.E005", "GRAFANA_ADMIN_PASSWORD is still a placeholder (contains 'change-me').")
    ]


def test_a_placeholder_url_of_the_out_of_band_pager_is_named_whole(production):
    # The pager's URL is the credential itself, not a URL with a password in it.
    production.ITSM_DEPLOYMENT_SECRETS = {"ALERTMANAGER_PAGER_URL": "https://pager.change-me.invalid/alertmanager"}
    assert _errors(production) == [
        ("itsm.E005", "ALERTMANAGER_PAGER_URL is still a placeholder (contains 'change-me').")
    ]


def test_a_redis_password_shared_by_the_broker_is_reported_once_under_redis_url(production):
    production.REDIS_URL = "redis://:change-me@redis:6379/0"
    production.CELERY_BROKER_URL = production.BACKUP_REDIS_URL = "redis://:change-me@redis:6379/1"
    assert [message for _, message in _errors(production)] == [
        "REDIS_URL is still a placeholder (its password contains 'change-me')."
    ]


@pytest.mark.parametrize("backend", ["console", "locmem", "dummy", "filebased"])
def test_an_e_mail_backend_that_delivers_nothing_is_itsm_e006(production, backend):
    production.EMAIL_BACKEND = f"django.core.mail.backends.{backend}.EmailBackend"
    errors = _errors(production)
    assert [error_id for error_id, _ in errors] == ["itsm.E006"]
    assert errors[0][1].startswith("EMAIL_URL sends no mail")


@pytest.mark.parametrize(
    ("name", "error_id"),
    [
        ("ITSM_ALERTMANAGER_TOKEN", "itsm.E007"),
        ("ALERTMANAGER_URL", "itsm.E008"),
        ("PROMETHEUS_URL", "itsm.E009"),
        ("ITSM_METRICS_TOKEN", "itsm.E026"),
    ],
)
def test_a_missing_alerting_setting_is_an_error_naming_it(production, name, error_id):
    setattr(production, name, "")
    errors = _errors(production)
    assert [found for found, _ in errors] == [error_id]
    assert errors[0][1].startswith(f"{name} is not set")


# --- The real command, on `.env.example` as `cp .env.example .env` leaves it ------------------------------------------
ENV_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$", re.MULTILINE)
PLACEHOLDER = re.compile(r"change-me[\w-]*")


def _env_example() -> dict[str, str]:
    return dict(ENV_LINE.findall(ENV_EXAMPLE.read_text()))


def _environment(tmp_path: Path, values: dict[str, str]) -> dict[str, str]:
    return (
        _clean_environment(tmp_path)
        | values
        | {"ITSM_VAR_DIR": str(tmp_path), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    )


@pytest.mark.slow
def test_deploy_checks_refuse_env_example_unchanged_naming_each_placeholder(tmp_path):
    example = _env_example()
    placeholders = sorted(name for name, value in example.items() if "change-me" in value)
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "ITSM_ALERTMANAGER_TOKEN", "EMAIL_URL"} <= set(placeholders)
    result = _manage_py_check(_environment(tmp_path, example))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    named = set(re.findall(r"\(itsm\.E005\) ([A-Z][A-Z0-9_]*) is still a placeholder", output))
    assert sorted(named) == placeholders, output


@pytest.mark.slow
def test_deploy_checks_pass_on_env_example_with_real_values(tmp_path):
    real = {name: PLACEHOLDER.sub(lambda _: secrets.token_urlsafe(50), value) for name, value in _env_example().items()}
    real["BACKUP_ENCRYPTION_KEY"] = generate_key()  # a key has a format: a random string is itsm.E024
    result = _manage_py_check(_environment(tmp_path, real))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
