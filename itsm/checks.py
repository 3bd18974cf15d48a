"""System checks on settings. Deploy-tagged ones run with `check --deploy` and at the start of the API."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core import checks
from django.core.management.base import SystemCheckError

from itsm.backup.configured import decryption_keys
from itsm.backup.encryption import KeyInvalid
from itsm.backup.pgbackrest import ARCHIVE_TIMEOUT_SECONDS


@checks.register("itsm")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if not 1 <= settings.ITSM_SLA_AT_RISK_PERCENT <= 99:
        errors.append(checks.Error("ITSM_SLA_AT_RISK_PERCENT must be between 1 and 99.", id="itsm.E010"))
    if settings.ITSM_PAGE_SIZE > settings.ITSM_MAX_PAGE_SIZE:
        errors.append(checks.Error("ITSM_MAX_PAGE_SIZE must be at least ITSM_PAGE_SIZE.", id="itsm.E011"))
    if settings.CELERY_TASK_TIME_LIMIT <= 60:
        errors.append(
            checks.Error(
                "ITSM_CELERY_TASK_TIME_LIMIT must be above 60 seconds (the soft limit is 60 s earlier).", id="itsm.E013"
            )
        )
    if settings.ITSM_RATING_LINK_DAYS < 1:
        errors.append(
            checks.Error(
                "ITSM_RATING_LINK_DAYS must be at least 1, or every rating link of a resolution e-mail has expired "
                "when it arrives.",
                id="itsm.E014",
            )
        )
    if settings.CELERY_TASK_TIME_LIMIT >= settings.CELERY_VISIBILITY_TIMEOUT:
        errors.append(
            checks.Error(
                "ITSM_CELERY_TASK_TIME_LIMIT must be below ITSM_CELERY_VISIBILITY_TIMEOUT, or Redis redelivers "
                "running tasks to a second worker.",
                id="itsm.E012",
            )
        )
    return errors


@checks.register("itsm", deploy=True)
def check_production(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if settings.SECRET_KEY_GENERATED:
        errors.append(
            checks.Error(
                "DJANGO_SECRET_KEY is not set: every process would use its own local key.",
                hint="Set DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) to a long random string.",
                id="itsm.E001",
            )
        )
    if not settings.DATABASE_IS_POSTGRES:
        errors.append(
            checks.Error(
                "DATABASE_URL does not point at PostgreSQL; SQLite is for the embedded mode only.",
                hint="Set DATABASE_URL=postgres://user:password@host:5432/itsm_db.",
                id="itsm.E002",
            )
        )
    if not settings.REDIS_URL:
        errors.append(
            checks.Error(
                "REDIS_URL is not set: the cache and login throttling would be per process.",
                hint="Set REDIS_URL=redis://redis:6379/0.",
                id="itsm.E003",
            )
        )
    if settings.CELERY_BROKER_IS_FILESYSTEM:
        errors.append(
            checks.Error(
                "The Celery broker is the local filesystem transport, which only works on one machine.",
                hint="Set REDIS_URL (the broker uses the next database) or CELERY_BROKER_URL.",
                id="itsm.E004",
            )
        )
    if not settings.BACKUP_ENCRYPTION_KEY:
        errors.append(
            checks.Error(
                "BACKUP_ENCRYPTION_KEY is not set: database dumps, Redis snapshots and media archives are stored in "
                "the clear, on disk and in S3, where whoever reads the bucket reads every ticket.",
                hint="Set BACKUP_ENCRYPTION_KEY (or its _FILE) to the output of `manage.py backup_key --generate` and "
                "keep a copy outside the platform (docs/runbooks/rebuild-from-s3.md).",
                id="itsm.E025",
            )
        )
    if not settings.ITSM_HTTPS:
        errors.append(
            checks.Warning(
                "ITSM_HTTPS is off: cookies are not marked secure and HSTS is not sent.",
                hint="Serve the platform over TLS and set ITSM_HTTPS=true.",
                id="itsm.W001",
            )
        )
    if not settings.ITSM_REQUIRE_2FA_FOR_ADMINS:
        errors.append(
            checks.Warning(
                "ITSM_REQUIRE_2FA_FOR_ADMINS is off: an admin's password alone opens the admin and gets API tokens.",
                hint="Set ITSM_REQUIRE_2FA_FOR_ADMINS=true (docs/security.md#two-factors); admins then set up an "
                "authenticator app at their next sign-in.",
                id="itsm.W004",
            )
        )
    return errors


# What `.env.example` and the manifests ship as secrets; a value containing one was never replaced.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "example")
# E-mail backends that accept every message and deliver none (EMAIL_URL's console://, locmem://, dummy://, file://).
UNDELIVERED_EMAIL = {
    "django.core.mail.backends.console.EmailBackend": "printed to the log",
    "django.core.mail.backends.locmem.EmailBackend": "kept in memory",
    "django.core.mail.backends.dummy.EmailBackend": "discarded",
    "django.core.mail.backends.filebased.EmailBackend": "written to files",
}


def _url_password(url: str) -> str:
    try:
        return unquote(urlsplit(url).password or "")
    except ValueError:
        return ""


def _password_of_url(name: str) -> bool:
    """Whether `_secrets` holds only the password of this URL (the URLs of the deployment are secret whole)."""
    return name.endswith("_URL") and name not in settings.ITSM_DEPLOYMENT_SECRETS


def _secrets() -> dict[str, str]:
    """Each secret the processes see, by the variable that sets it (for a URL, its password)."""
    storage = settings.STORAGES["default"].get("OPTIONS", {})
    redis_password = _url_password(settings.REDIS_URL)
    values = {
        "DJANGO_SECRET_KEY": "" if settings.SECRET_KEY_GENERATED else settings.SECRET_KEY,
        "DATABASE_URL": _url_password(settings.DATABASE_URL),
        "REDIS_URL": redis_password,
        "EMAIL_URL": str(settings.EMAIL_HOST_PASSWORD),
        "ITSM_ALERTMANAGER_TOKEN": settings.ITSM_ALERTMANAGER_TOKEN,
        "ITSM_METRICS_TOKEN": settings.ITSM_METRICS_TOKEN,
        "ITSM_MAIL_INBOX_URL": _url_password(settings.ITSM_MAIL_INBOX_URL),
        "ITSM_MAIL_OAUTH2_CLIENT_SECRET": settings.ITSM_MAIL_OAUTH2_CLIENT_SECRET,
        "BACKUP_S3_ACCESS_KEY_ID": settings.BACKUP_S3_ACCESS_KEY_ID,
        "BACKUP_S3_SECRET_ACCESS_KEY": settings.BACKUP_S3_SECRET_ACCESS_KEY,
        "BACKUP_ENCRYPTION_KEY": settings.BACKUP_ENCRYPTION_KEY,
        "ITSM_ATTACHMENT_S3_ACCESS_KEY_ID": storage.get("access_key") or "",
        "ITSM_ATTACHMENT_S3_SECRET_ACCESS_KEY": storage.get("secret_key") or "",
        **settings.ITSM_DEPLOYMENT_SECRETS,
    }
    # Derived from REDIS_URL unless set: the same password is reported once, under the variable that holds it.
    for name, url in (
        ("CELERY_BROKER_URL", settings.CELERY_BROKER_URL),
        ("BACKUP_REDIS_URL", settings.BACKUP_REDIS_URL),
    ):
        if _url_password(url) != redis_password:
            values[name] = _url_password(url)
    return values


# Settings production cannot run without: (name, what goes wrong unset, hint, check id).
REQUIRED_IN_PRODUCTION = [
    (
        "ITSM_ALERTMANAGER_TOKEN",
        "the alert intake answers 401 to every Alertmanager delivery.",
        "Set ITSM_ALERTMANAGER_TOKEN (or its _FILE) to the token alertmanager.yml sends.",
        "itsm.E007",
    ),
    (
        "ALERTMANAGER_URL",
        "maintenance windows silence no alerts.",
        "Set ALERTMANAGER_URL=http://alertmanager:9093.",
        "itsm.E008",
    ),
    (
        "PROMETHEUS_URL",
        "every PromQL check of a maintenance window fails.",
        "Set PROMETHEUS_URL=http://prometheus:9090.",
        "itsm.E009",
    ),
    (
        "ITSM_METRICS_TOKEN",
        "/metrics answers only loopback callers, so Prometheus scrapes nothing.",
        "Set ITSM_METRICS_TOKEN (or its _FILE) to the bearer token Prometheus sends (`openssl rand -hex 24`).",
        "itsm.E026",
    ),
]


@checks.register("itsm", deploy=True)
def check_production_wiring(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """What a copied `.env.example` or a half-filled manifest leaves behind: placeholders, and the settings without
    which alerts, silences, PromQL checks and e-mail quietly do nothing."""
    errors: list[checks.CheckMessage] = [
        checks.Error(
            f"{name} is still a placeholder ({'its password ' if _password_of_url(name) else ''}contains "
            f"{next(marker for marker in PLACEHOLDER_MARKERS if marker in value.lower())!r}).",
            hint=f"Set {name} to a real secret, e.g. the output of `openssl rand -hex 24`.",
            id="itsm.E005",
        )
        for name, value in sorted(_secrets().items())
        if value and any(marker in value.lower() for marker in PLACEHOLDER_MARKERS)
    ]
    if settings.EMAIL_BACKEND in UNDELIVERED_EMAIL:
        errors.append(
            checks.Error(
                f"EMAIL_URL sends no mail: every notification is {UNDELIVERED_EMAIL[settings.EMAIL_BACKEND]}.",
                hint="Set EMAIL_URL=smtp://user:password@mail.example.com:587/?tls=true (or submission://, smtps://).",
                id="itsm.E006",
            )
        )
    errors += [
        checks.Error(f"{name} is not set: {consequence}", hint=hint, id=check_id)
        for name, consequence, hint, check_id in REQUIRED_IN_PRODUCTION
        if not getattr(settings, name)
    ]
    return errors


@checks.register("itsm")
def check_backups(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if settings.BACKUP_S3_PART_SIZE_MB < 5:
        errors.append(
            checks.Error("BACKUP_S3_PART_SIZE_MB must be at least 5 (S3's smallest multipart part).", id="itsm.E020")
        )
    if settings.BACKUP_UPLOAD_RETRIES < 0 or settings.BACKUP_RESTORE_JOBS < 1:
        errors.append(
            checks.Error("BACKUP_UPLOAD_RETRIES must be 0 or more and BACKUP_RESTORE_JOBS 1 or more.", id="itsm.E021")
        )
    try:
        decryption_keys()
    except KeyInvalid as exc:
        errors.append(
            checks.Error(
                f"{exc}.", hint="Use a key from `manage.py backup_key --generate` or `age-keygen`.", id="itsm.E024"
            )
        )
    return errors


@checks.register("itsm")
def check_pitr(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Point-in-time recovery's settings, when BACKUP_PITR_STANZA turns it on."""
    if not settings.BACKUP_PITR_STANZA:
        return []
    messages: list[checks.CheckMessage] = []
    if not settings.DATABASES["default"]["ENGINE"].endswith(".postgresql"):
        messages.append(
            checks.Error(
                "BACKUP_PITR_STANZA is set but the database is not PostgreSQL: pgBackRest archives PostgreSQL only.",
                hint="Unset BACKUP_PITR_STANZA, or point DATABASE_URL at PostgreSQL.",
                id="itsm.E022",
            )
        )
    if settings.BACKUP_PITR_DRILL_WAIT_SECONDS <= ARCHIVE_TIMEOUT_SECONDS:
        messages.append(
            checks.Error(
                f"BACKUP_PITR_DRILL_WAIT_SECONDS must be above archive_timeout ({ARCHIVE_TIMEOUT_SECONDS} s): "
                "every drill would fail before its WAL segment is archived.",
                id="itsm.E023",
            )
        )
    if shutil.which(settings.BACKUP_PITR_BIN) is None:
        messages.append(
            checks.Warning(
                f"BACKUP_PITR_BIN {settings.BACKUP_PITR_BIN!r} is not an executable here: pitr_backup, pitr_drill, "
                "restore --to-time and the pgbackrest check on /health/ fail in this process.",
                hint="Install Debian's pgbackrest package, or set BACKUP_PITR_BIN to its path.",
                id="itsm.W002",
            )
        )
    if not Path(settings.BACKUP_PITR_CONFIG).is_file():
        messages.append(
            checks.Warning(
                f"BACKUP_PITR_CONFIG {settings.BACKUP_PITR_CONFIG} is not a file here: pgBackRest cannot find the "
                f"stanza {settings.BACKUP_PITR_STANZA!r} from this process.",
                hint="Mount the pgbackrest.conf that the server's archive_command names, or set its path.",
                id="itsm.W003",
            )
        )
    return messages


def fail_on_errors() -> None:
    """Refuse to start the API on a platform check error (gunicorn does not run system checks by itself).

    Deployment checks run in the production entry point (`manage.py check --deploy`), not here, so that
    `make run` works on a developer's PostgreSQL too.
    """
    messages = checks.run_checks(tags=["itsm"])
    errors = [message for message in messages if message.is_serious() and not message.is_silenced()]
    if errors:
        raise SystemCheckError("\n".join(str(error) for error in errors))
