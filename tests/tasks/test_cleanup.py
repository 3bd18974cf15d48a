"""The daily cleanup deletes expired sessions and tokens and old job records, and runs once per day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from knox.models import AuthToken

from itsm.models import JobRun
from itsm.tasks.maintenance import cleanup_sessions_and_tokens


@pytest.mark.django_db
def test_cleanup_deletes_only_what_has_expired(requester):
    _expired_token, _ = AuthToken.objects.create(user=requester, expiry=timedelta(seconds=-1))
    live_token, _ = AuthToken.objects.create(user=requester)
    old_session, live_session = SessionStore(), SessionStore()
    for store in (old_session, live_session):
        store["k"] = "v"
        store.create()
    Session.objects.filter(session_key=old_session.session_key).update(expire_date=timezone.now() - timedelta(days=1))
    old_run = JobRun.objects.create(job="scan_sla", slot=timezone.now() - timedelta(days=31), started_at=timezone.now())

    detail = cleanup_sessions_and_tokens()

    assert detail == {"sessions": 1, "tokens": 1, "job_runs": 1, "notifications": 0}
    assert list(AuthToken.objects.values_list("pk", flat=True)) == [live_token.pk]
    assert list(Session.objects.values_list("session_key", flat=True)) == [live_session.session_key]
    assert not JobRun.objects.filter(pk=old_run.pk).exists()
    assert JobRun.objects.filter(job="cleanup_sessions_and_tokens", status="succeeded").count() == 1


@pytest.mark.django_db
def test_a_second_cleanup_message_on_the_same_day_does_nothing(requester):
    assert cleanup_sessions_and_tokens() is not None
    AuthToken.objects.create(user=requester, expiry=timedelta(seconds=-1))
    assert cleanup_sessions_and_tokens() is None
    assert AuthToken.objects.count() == 1
