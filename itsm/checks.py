"""System checks on settings. Deploy-tagged ones run with `check --deploy` and at the start of the API."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.management.base import SystemCheckError


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
    if not settings.ITSM_HTTPS:
        errors.append(
            checks.Warning(
                "ITSM_HTTPS is off: cookies are not marked secure and HSTS is not sent.",
                hint="Serve the platform over TLS and set ITSM_HTTPS=true.",
                id="itsm.W001",
            )
        )
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
    return errors


def fail_on_errors() -> None:
    """Refuse to start the API on a platform check error (gunicorn does not run system checks by itself).

    Deployment checks run in the production entry point (`manage.py check --deploy`), not here, so that
    `make run` works on a developer's PostgreSQL too.
    """
    messages = checks.run_checks(tags=["itsm"])
    errors = [message for message in messages if message.is_serious() and not message.is_silenced()]
    if errors:
        raise SystemCheckError("\n".join(str(error) for error in errors))
