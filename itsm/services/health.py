"""Probes of the platform's dependencies, shared by /health/ and the built-in alert checks. Each raises on failure."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from kombu import Connection


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_cache() -> None:
    # django-redis ignores Redis errors by design, so a failed round trip shows as a value not read back.
    key, value = "health:probe", uuid.uuid4().hex
    cache.set(key, value, timeout=10)
    if cache.get(key) != value:
        raise ConnectionError("cache did not return the value written")


def check_broker() -> None:
    if settings.CELERY_BROKER_IS_FILESYSTEM:
        folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
        if not folder.is_dir():
            raise ConnectionError(f"broker folder {folder} is missing")
        return
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=1, transport_options={"socket_timeout": 1}) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=1)
