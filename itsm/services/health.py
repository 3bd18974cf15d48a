"""Probes of the platform's dependencies, shared by /health/ and the built-in alert checks. Each raises on failure."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
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


API_HEALTH_TIMEOUT_SECONDS = 5


def check_api_over_http() -> None:
    """GET ITSM_API_HEALTH_URL as a client would; anything but a 200 saying {"status": "ok"} is a failure whose
    message names the URL and what came back."""
    url = settings.ITSM_API_HEALTH_URL
    if not url.startswith(("http://", "https://")):
        raise ConnectionError(f"ITSM_API_HEALTH_URL {url!r} is not an http:// or https:// URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=API_HEALTH_TIMEOUT_SECONDS) as response:  # noqa: S310
            status, body = response.status, response.read(2000)
    except urllib.error.HTTPError as exc:
        raise ConnectionError(f"{url} answered {exc.code}: {exc.read(200)!r}") from None
    except (OSError, ValueError) as exc:  # refused, timed out, unresolvable, a malformed URL
        raise ConnectionError(f"{url} is unreachable: {getattr(exc, 'reason', exc)}") from None
    try:
        said = json.loads(body).get("status")
    except (ValueError, AttributeError):
        said = None
    if status != 200 or said != "ok":
        raise ConnectionError(f"{url} answered {status} with status {said!r}, not 200 with status 'ok'")
