"""Celery entry points. Each takes ids or nothing, loads what it needs and calls one service."""

from itsm.tasks.maintenance import cleanup_sessions_and_tokens
from itsm.tasks.sla import recompute_sla, scan_sla

__all__ = ["cleanup_sessions_and_tokens", "recompute_sla", "scan_sla"]
