"""Read-only mode: while a restore runs, the API answers every write with 503 and reads go on.

The flag is kept in two places so that every API process sees it: a file in ITSM_VAR_DIR (all processes on one
machine, and the embedded mode, whose cache is per process) and a key in the shared cache (every replica in
production). Either one turns the mode on; leaving removes both. The gauge itsm_read_only_mode follows the flag.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from itsm import metrics

logger = logging.getLogger(__name__)

CACHE_KEY = "itsm:read-only-mode"
FLAG_NAME = "read-only-mode.json"


def flag_path() -> Path:
    return Path(settings.VAR_DIR) / FLAG_NAME


def read_only_enter(*, reason: str) -> dict[str, Any]:
    """Turn read-only mode on (idempotent) and return the flag's content."""
    state = {"reason": reason, "since": timezone.now().isoformat()}
    path = flag_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state))
    temporary.replace(path)
    cache.set(CACHE_KEY, state, timeout=None)
    metrics.READ_ONLY_MODE.set(1)
    logger.warning("read-only mode on: %s", reason)
    return state


def read_only_leave() -> None:
    """Turn read-only mode off (idempotent)."""
    flag_path().unlink(missing_ok=True)
    cache.delete(CACHE_KEY)
    metrics.READ_ONLY_MODE.set(0)
    logger.warning("read-only mode off")


def read_only_state() -> dict[str, Any] | None:
    """The flag's content while read-only mode is on, else None."""
    try:
        return dict(json.loads(flag_path().read_text()))
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        return {"reason": "unreadable flag file", "since": None}
    state = cache.get(CACHE_KEY)
    return dict(state) if isinstance(state, dict) else None


def read_only_observe() -> dict[str, Any] | None:
    """read_only_state(), also written to the itsm_read_only_mode gauge. /health/ and every scrape of /metrics call
    it, so the gauge is right in the serving process whichever process (a restore, the command) changed the flag."""
    state = read_only_state()
    metrics.READ_ONLY_MODE.set(0 if state is None else 1)
    return state
