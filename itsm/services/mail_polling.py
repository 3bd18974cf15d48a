"""Reading the mailboxes: every minute (Beat) or once (`manage.py fetch_mail`), each enabled mailbox is read over
IMAP from where the last poll stopped; each new message goes through services.mail. A message that fails is moved
to the mailbox's failed folder (kept in the platform too), so it never holds up the messages behind it.

A mailbox signs in with its password, or with an OAuth2 access token from services.mail_oauth2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.utils import timezone

from itsm import metrics
from itsm.audit import audited_update
from itsm.mail.imap import ImapMailbox, LoginRefused, MailboxConfig, MailboxUnavailable, OAuth2Client, config_from_url
from itsm.models import InboundMessage, Mailbox
from itsm.services.mail import mail_receive
from itsm.services.mail_oauth2 import mail_oauth2_token

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
        with _signed_in(mailbox_config(mailbox)) as box:
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


@contextlib.contextmanager
def _signed_in(config: MailboxConfig) -> Iterator[ImapMailbox]:
    """The mailbox open on its folder. With OAuth2, an access token held from an earlier poll that the server
    refuses (revoked, or expired before its time) is replaced once; a new token that is refused is the error."""
    if config.oauth2 is None:
        with ImapMailbox(config) as box:
            yield box
        return
    token = mail_oauth2_token(client=config.oauth2, timeout=config.timeout)
    try:
        box = ImapMailbox(dataclasses.replace(config, oauth2_token=token.value)).open()
    except LoginRefused:
        if not token.held:
            raise
        token = mail_oauth2_token(client=config.oauth2, timeout=config.timeout, renew=True)
        box = ImapMailbox(dataclasses.replace(config, oauth2_token=token.value)).open()
    with box:
        yield box


def mailbox_config(mailbox: Mailbox) -> MailboxConfig:
    """How to reach the mailbox and sign in: the URL setting for the environment's mailbox (with
    ITSM_MAIL_OAUTH2_CLIENT_SECRET for OAuth2), else its row with the password, or the OAuth2 client secret, read
    from its file or environment variable. Raises ValueError saying what is missing."""
    if mailbox.from_environment:
        if not settings.ITSM_MAIL_INBOX_URL:
            raise ValueError("ITSM_MAIL_INBOX_URL is no longer set: disable this mailbox")
        return config_from_url(
            settings.ITSM_MAIL_INBOX_URL, oauth2_client_secret=settings.ITSM_MAIL_OAUTH2_CLIENT_SECRET
        )
    oauth2 = mailbox.auth == Mailbox.Auth.OAUTH2
    secret = _secret(mailbox, "client secret" if oauth2 else "password")
    return MailboxConfig(
        host=mailbox.host,
        port=mailbox.port,
        security=mailbox.security,
        username=mailbox.username,
        password="" if oauth2 else secret,
        folder=mailbox.folder,
        failed_folder=mailbox.failed_folder,
        oauth2=OAuth2Client(
            token_url=mailbox.oauth2_token_url,
            client_id=mailbox.oauth2_client_id,
            client_secret=secret,
            scope=mailbox.oauth2_scope,
        )
        if oauth2
        else None,
    )


def _secret(mailbox: Mailbox, what: str) -> str:
    """The password or client secret from the mailbox's file or environment variable (never from the row)."""
    if mailbox.password_file:
        return Path(mailbox.password_file).read_text().strip()
    if mailbox.password_env:
        secret = os.environ.get(mailbox.password_env, "")
        if not secret:
            raise ValueError(f"the environment variable {mailbox.password_env} is not set")
        return secret
    raise ValueError(f"no {what} file or environment variable is configured")


def _environment_mailbox() -> None:
    """The mailbox of ITSM_MAIL_INBOX_URL as a row (its state, its log), without the password."""
    if not settings.ITSM_MAIL_INBOX_URL:
        audited_update(Mailbox.objects.filter(from_environment=True, enabled=True), enabled=False)
        return
    url = urlsplit(settings.ITSM_MAIL_INBOX_URL)
    query = {key: values[-1] for key, values in parse_qs(url.query).items()}
    oauth2 = query.get("auth") == "oauth2" and bool(query.get("token_url")) and bool(query.get("client_id"))
    Mailbox.objects.update_or_create(
        name=ENVIRONMENT_MAILBOX,
        defaults={
            "from_environment": True,
            "enabled": True,
            "host": url.hostname or "",
            "port": url.port or (993 if url.scheme == "imaps" else 143),
            "username": (url.username or "")[:255],
            "folder": url.path.strip("/") or "INBOX",
            # An incomplete OAuth2 URL shows as password sign-in here; its poll says what the URL lacks.
            "auth": Mailbox.Auth.OAUTH2 if oauth2 else Mailbox.Auth.PASSWORD,
            "oauth2_token_url": query.get("token_url", "")[:500],
            "oauth2_client_id": query.get("client_id", "")[:200],
            "oauth2_scope": query.get("scope", "")[:500],
        },
    )
