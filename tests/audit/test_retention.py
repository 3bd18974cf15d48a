"""The daily cleanup deletes the audit trail's rows older than ITSM_AUDIT_RETENTION_DAYS, and only those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from auditlog.models import LogEntry

from itsm.models import JobRun
from itsm.tasks.cleanup import cleanup
from tests.factories import make_ticket

pytestmark = pytest.mark.django_db
NOW = datetime(2030, 1, 7, 3, 15, tzinfo=UTC)


def test_the_cleanup_job_deletes_audit_rows_past_their_retention_and_keeps_the_rest(requester, settings):
    settings.ITSM_AUDIT_RETENTION_DAYS = 730
    with time_machine.travel(NOW - timedelta(days=731), tick=False):
        old = make_ticket(requester, title="Two years ago")
    with time_machine.travel(NOW - timedelta(days=729), tick=False):
        recent = make_ticket(requester, title="Just within")
    cutoff = NOW - timedelta(days=730)
    old_rows = set(LogEntry.objects.filter(timestamp__lt=cutoff).values_list("pk", flat=True))
    kept_rows = set(LogEntry.objects.filter(timestamp__gte=cutoff).values_list("pk", flat=True))
    assert set(LogEntry.objects.get_for_object(old).values_list("pk", flat=True)) <= old_rows
    assert set(LogEntry.objects.get_for_object(recent).values_list("pk", flat=True)) <= kept_rows
    assert LogEntry.objects.get_for_object(recent).exists()

    with time_machine.travel(NOW, tick=False):
        detail = cleanup()

    assert detail is not None
    assert detail["deleted"]["audit_log"] == len(old_rows)
    assert detail["retention_days"]["audit_log"] == 730
    assert set(LogEntry.objects.values_list("pk", flat=True)) == kept_rows
    assert JobRun.objects.get(job="cleanup").status == JobRun.Status.SUCCEEDED


def test_a_negative_audit_retention_fails_the_run_naming_the_variable(requester, settings):
    settings.ITSM_AUDIT_RETENTION_DAYS = -1
    make_ticket(requester)
    before = LogEntry.objects.count()
    with time_machine.travel(NOW, tick=False), pytest.raises(ValueError, match="ITSM_AUDIT_RETENTION_DAYS"):
        cleanup()
    assert LogEntry.objects.count() == before
