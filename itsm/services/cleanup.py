"""Deleting what has outlived its retention."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone
from knox.models import AuthToken

from itsm.models import JobRun
from itsm.services.notifications import notifications_delete_old


def cleanup_sessions_and_tokens() -> dict[str, int]:
    """Expired sessions and tokens go at once; job records and delivered notifications after
    ITSM_CLEANUP_RETENTION_DAYS."""
    now = timezone.now()
    sessions, _ = Session.objects.filter(expire_date__lt=now).delete()
    tokens, _ = AuthToken.objects.filter(expiry__lt=now).delete()
    jobs, _ = JobRun.objects.filter(slot__lt=now - timedelta(days=settings.ITSM_CLEANUP_RETENTION_DAYS)).delete()
    notifications = notifications_delete_old(now=now)
    return {"sessions": sessions, "tokens": tokens, "job_runs": jobs, "notifications": notifications}
