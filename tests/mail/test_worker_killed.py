"""A worker killed after a message's ticket committed but before the mailbox's progress was saved: the next poll
reads the message again and makes no second ticket. `manage.py fetch_mail` runs as a process of its own and is
stopped with SIGKILL exactly there, held by a row lock this test takes on the mailbox (the progress update waits
for it), not by timing."""

from __future__ import annotations

import os
import signal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from django.conf import settings

from itsm.mail.imap import ImapMailbox
from itsm.models import InboundMessage, Ticket
from itsm.services.mail_polling import mailbox_poll
from tests.system.processes import PYTHON, base_env, current_database_url, eventually, started

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
MESSAGES = 5
# The backend of the killed process: its progress update, waiting behind this test's lock on the mailbox row.
WAITING = "datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE%%itsm_mailbox%%'"


def mail(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"user{n}@example.com"
    message["To"] = "support@itsm.example.com"
    message["Subject"] = f"Problem {n}"
    message["Message-ID"] = f"<problem-{n}@example.com>"
    message.set_content(f"Problem number {n}.")
    return bytes(message)


def test_a_worker_killed_between_the_ticket_and_its_progress_leaves_one_ticket_per_message(
    imap_mailbox: Any, make_mailbox: Any, tmp_path: Path
):
    for n in range(MESSAGES):
        imap_mailbox.deliver(mail(n))
    with ImapMailbox(imap_mailbox.config) as box:
        uidvalidity = box.uidvalidity
    # As after an earlier poll (its UIDVALIDITY known): the process's first write to the row is its progress.
    mailbox = make_mailbox(imap_mailbox, uidvalidity=uidvalidity)
    db = settings.DATABASES["default"]
    holder = psycopg2.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432
    )
    env = base_env(
        DATABASE_URL=current_database_url(),
        REDIS_URL=str(settings.REDIS_URL),
        TEST_MAILBOX_PASSWORD=imap_mailbox.password,
        ITSM_VAR_DIR=str(tmp_path / "var"),
        ITSM_MEDIA_ROOT=str(tmp_path / "media"),
    )
    try:
        with holder.cursor() as cursor:
            # NO KEY UPDATE: the progress update waits for it, the foreign-key checks of new rows do not.
            cursor.execute("SELECT 1 FROM itsm_mailbox WHERE id = %s FOR NO KEY UPDATE", [mailbox.pk])
        assert not _waits_for_a_lock(holder)  # nothing waits yet, and a later look must not see this one again
        command = [PYTHON, "manage.py", "fetch_mail", "--mailbox", "support"]
        with started(command, env, tmp_path / "fetch_mail.log") as process:
            eventually(lambda: InboundMessage.objects.count() == 1, 60, "the first message's ticket committed")
            eventually(lambda: _waits_for_a_lock(holder), 30, "the process waiting on the mailbox row")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        # Its connection dies with it (as with a lost machine), or PostgreSQL would still run the update it sent.
        _terminate_the_waiting_backend(holder)
        assert Ticket.objects.count() == 1
        mailbox.refresh_from_db()
        assert mailbox.last_uid == 0  # its progress never saved
    finally:
        holder.rollback()
        holder.close()
    counts = mailbox_poll(mailbox_id=mailbox.pk)
    assert counts["received"] == MESSAGES
    assert (counts["new_tickets"], counts["done_before"]) == (MESSAGES - 1, 1)  # the first found done
    assert sorted(Ticket.objects.values_list("title", flat=True)) == [f"Problem {n}" for n in range(MESSAGES)]
    assert InboundMessage.objects.count() == MESSAGES


def _terminate_the_waiting_backend(holder: Any) -> None:
    with holder.cursor() as cursor:
        cursor.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {WAITING}")
        assert cursor.fetchall() == [(True,)]


def _waits_for_a_lock(holder: Any) -> bool:
    """A backend waits on a lock: the process's progress update, behind our lock. The holder's transaction keeps
    the first pg_stat_activity it reads until its end: cleared first, each look is a new one."""
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {WAITING}")
        return bool(cursor.fetchone()[0])
