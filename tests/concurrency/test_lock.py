"""The version is compared under the row lock, in the writing transaction: a writer that waited for the lock
compares with what the writer before it committed, so two writers who read one version cannot both pass."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction

from itsm.exceptions import StaleVersion
from itsm.models import Incident
from itsm.services.incidents import incident_create, incident_update

pytestmark = pytest.mark.django_db(transaction=True)


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is a snapshot per transaction otherwise
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(cursor.fetchone()[0])


def test_a_writer_waiting_for_the_lock_is_refused_when_the_one_before_it_changed_the_version(agent: Any) -> None:
    incident = incident_create(actor=agent, title="Mail is slow", severity="low")
    outcome: dict[str, str] = {}

    def second_writer() -> None:
        try:
            incident_update(incident_id=incident.pk, actor=agent, changes={"title": "Second"}, expected_version=1)
            outcome["second"] = "written"
        except StaleVersion as refused:
            outcome["second"] = f"refused, current {refused.current_etag}"
        finally:
            connection.close()

    with transaction.atomic():
        incident_update(incident_id=incident.pk, actor=agent, changes={"title": "First"}, expected_version=1)
        thread = threading.Thread(target=second_writer)
        thread.start()
        deadline = time.monotonic() + 30
        # The second writer, sent with version 1 as its client read it, waits for the row.
        while not _waiting_on_a_lock():
            assert time.monotonic() < deadline, "the second writer never waited for the row lock"
            time.sleep(0.01)
    thread.join(timeout=30)
    assert outcome == {"second": f'refused, current "{incident.pk}-2"'}
    assert Incident.objects.values_list("title", "version").get() == ("First", 2)
