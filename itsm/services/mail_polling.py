"""Reading the mailboxes: every minute (Beat) or once (`manage.py fetch_mail`), each enabled mailbox is read over
IMAP from where the last poll stopped; each new message goes through services.mail. A message that fails is moved
to the mailbox's failed folder (kept in the platform too), so it never holds up the messages behind it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from itsm import metrics
from itsm.mail.imap import ImapMailbox, MailboxConfig, MailboxUnavailable, config_from_url
from itsm.models import InboundMessage, Mailbox
from itsm.services.mail import mail_receive

logger = logging.getLogger(__name__)

ENVIRONMENT_MAILBOX = "ITSM_MAIL_INBOX_URL"
Status = InboundMessage.Status
COUNTED = {
    Status.TICKET_CREATED: "new_tickets",
    Status.REPLY_THREADED: "replies",
    Status.IGNORED: "ignored",
    Status.REFUSED: "refused",
    Status.FAILED: "failed",
}


def mailboxes_poll() -> dict[str, Any]:
    """Poll every enabled mailbox once; one mailbox's outage does not stop the others."""
    _environment_mailbox()
    results = {}
    for mailbox in Mailbox.objects.filter(enabled=True).order_by("name"):
        results[mailbox.name] = mailbox_poll(mailbox_id=mailbox.pk)
    return {"mailboxes": results} if results else {"mailboxes": {}, "note": "mail intake is off: no mailbox"}


def mailbox_poll(*, mailbox_id: int) -> dict[str, Any]:
    """Read the messages that arrived since the last poll, oldest first, at most ITSM_MAIL_POLL_BATCH of them."""
    mailbox = Mailbox.objects.get(pk=mailbox_id)
    counts: dict[str, Any] = {"received": 0, **dict.fromkeys(COUNTED.values(), 0), "done_before": 0}
    started = time.perf_counter()
    try:
        config = mailbox_config(mailbox)
        with ImapMailbox(config) as box:
            if mailbox.uidvalidity != box.uidvalidity:
                # A new UIDVALIDITY renumbers the folder: read it again (a Message-ID already processed is not).
                mailbox.uidvalidity, mailbox.last_uid = box.uidvalidity, 0
                Mailbox.objects.filter(pk=mailbox.pk).update(uidvalidity=box.uidvalidity, last_uid=0)
            for uid in box.uids_after(mailbox.last_uid, limit=settings.ITSM_MAIL_POLL_BATCH):
                for fetched in box.fetch([uid]):
                    record = mail_receive(mailbox=mailbox, uidvalidity=box.uidvalidity, uid=uid, raw=fetched.raw)
                    counts["received"] += 1
                    done = "done_before" if getattr(record, "before", False) else COUNTED[Status(record.status)]
                    counts[done] += 1
                    if record.status == Status.FAILED:
                        box.move_to_failed(uid)
                    else:
                        box.mark_seen(uid)
                Mailbox.objects.filter(pk=mailbox.pk).update(last_uid=uid)
    except (MailboxUnavailable, ValueError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        logger.warning("mailbox %s could not be read: %s", mailbox.name, error)
        Mailbox.objects.filter(pk=mailbox.pk).update(last_polled_at=timezone.now(), last_error=error)
        metrics.MAIL_POLL_FAILURES.labels(mailbox=mailbox.name).inc()
        return {**counts, "error": error}
    finally:
        metrics.MAIL_POLL_DURATION.labels(mailbox=mailbox.name).observe(time.perf_counter() - started)
    now = timezone.now()
    Mailbox.objects.filter(pk=mailbox.pk).update(last_polled_at=now, last_success_at=now, last_error="")
    metrics.MAIL_LAST_POLL_SUCCESS.labels(mailbox=mailbox.name).set(now.timestamp())
    return counts


def mailbox_config(mailbox: Mailbox) -> MailboxConfig:
    """How to reach the mailbox: the URL setting for the environment's mailbox, else its row with the password
    read from its file or environment variable. Raises ValueError saying what is missing."""
    if mailbox.from_environment:
        if not settings.ITSM_MAIL_INBOX_URL:
            raise ValueError("ITSM_MAIL_INBOX_URL is no longer set: disable this mailbox")
        return config_from_url(settings.ITSM_MAIL_INBOX_URL)
    if mailbox.password_file:
        password = Path(mailbox.password_file).read_text().strip()
    elif mailbox.password_env:
        password = os.environ.get(mailbox.password_env, "")
        if not password:
            raise ValueError(f"the environment variable {mailbox.password_env} is not set")
    else:
        raise ValueError("no password file or environment variable is configured")
    return MailboxConfig(
        host=mailbox.host,
        port=mailbox.port,
        security=mailbox.security,
        username=mailbox.username,
        password=password,
        folder=mailbox.folder,
        failed_folder=mailbox.failed_folder,
    )


def _environment_mailbox() -> None:
    """The mailbox of ITSM_MAIL_INBOX_URL as a row (its state, its log), without the password."""
    if not settings.ITSM_MAIL_INBOX_URL:
        Mailbox.objects.filter(from_environment=True, enabled=True).update(enabled=False)
        return
    url = urlsplit(settings.ITSM_MAIL_INBOX_URL)
    Mailbox.objects.update_or_create(
        name=ENVIRONMENT_MAILBOX,
        defaults={
            "from_environment": True,
            "enabled": True,
            "host": url.hostname or "",
            "port": url.port or (993 if url.scheme == "imaps" else 143),
            "username": (url.username or "")[:255],
            "folder": url.path.strip("/") or "INBOX",
        },
    )
