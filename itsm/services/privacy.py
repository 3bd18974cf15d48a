"""Erasing a person (docs/security.md#personal-data): their name and e-mail address pseudonymised everywhere the
platform keeps them, their attachments removed, their comments kept or blanked, the shape of the history kept
(tickets, comments and timeline entries stay, with the pseudonymised account). The export is itsm.queries.privacy.

Where a name or an address may sit is listed below, field by field: HANDLED (set one by one), SCANNED (free text
and JSON in which the person's terms are replaced wherever they occur, in every row) and NOT_PERSONAL (with a
reason). tests/privacy/test_fields.py fails when a model gains a text, JSON or e-mail field, or one named like
*email*, *name*, *sender* or *target*, that none of them lists: the next model is checked too.

The terms are the e-mail address, the full name and the user name, today's and any earlier ones the audit trail
recorded for the account; in free text they are matched case-insensitively as whole words. First and last names
alone are replaced only in rows that are the person's own (their notifications and their inbound mail): elsewhere
"Jane" may be someone else. Terms shorter than MIN_TERM characters are not searched in free text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.apps import apps
from django.contrib.admin.models import LogEntry as AdminLogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models import F, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.html import escape
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from itsm.exceptions import Conflict
from itsm.models import (
    Attachment,
    Comment,
    Event,
    IdempotencyKey,
    InboundMessage,
    IntegrationToken,
    LoginThrottle,
    Notification,
    NotificationChannel,
    SuppressedAddress,
    TicketNotice,
    TicketRating,
)
from itsm.roles import admins_q, is_admin
from itsm.services.logins import login_throttle_keys_of

logger = logging.getLogger(__name__)

COMMENTS = ("keep", "blank")
BLANKED = "(removed at the author's request)"
REMOVED = "(removed: personal data erasure)"
MIN_TERM = 3
PERSON_FIELDS = ("username", "email", "first_name", "last_name")

# Set one by one for the person's own rows.
HANDLED: dict[str, str] = {
    "itsm.InboundMessage.sender": "the person's address becomes the pseudonym address",
    "itsm.InboundMessage.raw": "the person's own messages are emptied; in others the terms are replaced",
    "itsm.Notification.target": "notifications to the person go to the pseudonym address",
    "itsm.Notification.recipient": "a key to the account, which is pseudonymised; its own rows' texts scrubbed too",
    "itsm.NotificationChannel.target": "the person's channels point nowhere (erased-<id>-<channel>@invalid), disabled",
    "itsm.SuppressedAddress.address": "the person's bounced address becomes the pseudonym address",
    "itsm.NotificationPreference.email": "a switch (e-mail on or off), no address",
}
# Free text and JSON in which the terms are replaced, in every row (also the audit trail and the admin's log).
SCANNED: dict[str, tuple[str, ...]] = {
    "itsm.Ticket": ("title", "description"),
    "itsm.Comment": ("body",),
    "itsm.TicketRating": ("comment",),
    "itsm.Attachment": ("filename",),
    "itsm.Event": ("old_value", "new_value", "note"),
    "itsm.TicketNotice": ("note",),
    "itsm.Incident": ("title", "summary", "public_title"),
    "itsm.Postmortem": ("summary", "impact", "root_cause", "trigger", "detection", "resolution", "lessons"),
    "itsm.MaintenanceWindow": ("title", "description", "blocked_reason"),
    "itsm.Override": ("note",),
    "itsm.InboundMessage": ("subject", "detail"),
    "itsm.SuppressedAddress": ("reason",),
    "itsm.Notification": ("subject", "body", "html_body", "headers", "payload", "last_error"),
    "itsm.DeliveryAttempt": ("error",),
    "itsm.IdempotencyKey": ("response_body", "response_headers"),
    "auditlog.LogEntry": ("object_repr", "changes_text", "changes", "serialized_data", "additional_data"),
    "admin.LogEntry": ("object_repr", "change_message"),
}
# Fields that look as if they might, and why they hold no person's name or address.
NOT_PERSONAL: dict[str, str] = {
    "itsm.AlertRule.name": "the rule's name, chosen by an admin for a condition",
    "itsm.AlertRule.expression": "a PromQL expression about the platform",
    "itsm.AlertRule.last_error": "the evaluator's error talking to Prometheus",
    "itsm.Alert.alertname": "Prometheus' alert name",
    "itsm.Alert.labels": "Prometheus' labels of a metric",
    "itsm.Alert.annotations": "the alert rule's summary and description",
    "itsm.Backup.manifest": "table names, row counts and hashes",
    "itsm.Backup.verification": "the restore check's counts and hashes",
    "itsm.Backup.error": "the dump tool's error",
    "itsm.Team.name": "a team's name",
    "itsm.Service.name": "a service's name",
    "itsm.Service.description": "what a service is, written by an admin",
    "itsm.IntegrationToken.name": "the name of a non-human caller (a script, a monitoring system)",
    "itsm.JobRun.detail": "a scheduled job's counts and errors",
    "itsm.Mailbox.name": "a mailbox's name",
    "itsm.Mailbox.username": "the service desk's own IMAP account",
    "itsm.Mailbox.last_error": "the IMAP server's error",
    "itsm.MaintenanceWindow.checks": "health checks to run (URLs of the platform)",
    "itsm.MaintenanceWindow.verification": "the checks' results",
    "itsm.MaintenanceWindow.silence_ids": "Alertmanager silence ids",
    "itsm.WebhookEndpoint.name": "an admin's webhook, named for the receiving tool",
    "itsm.NotificationPreference.off": "the ticket events switched off",
    "itsm.Rotation.name": "an on-call rotation's name",
    "itsm.RecoveryDrill.target_time": "a moment in time",
    "itsm.RecoveryDrill.error": "pgBackRest's error",
    "itsm.RecoveryDrill.detail": "the drill's measurements",
    "itsm.BusinessCalendar.name": "a calendar's name",
    "itsm.BusinessCalendar.weekdays": "weekday numbers",
    "itsm.Holiday.name": "a public holiday's name",
    "itsm.SlaPolicy.name": "a policy's name",
    "itsm.Incident.response_target_missed": "a flag",
}


class PersonalDataRefused(Conflict):
    """The erasure would break the platform (the last admin): nothing was changed."""


@dataclass
class Erasure:
    """What one erasure did, counted (the audit entry's record of it; no old value is kept)."""

    user_id: int
    pseudonym: str
    comments: str
    already_erased: bool = False
    counts: dict[str, int] = field(default_factory=dict)


def pseudonym_of(user: Any) -> tuple[str, str]:
    """(user name, e-mail address) an erased account carries: stable, so a second erasure changes nothing."""
    return f"erased-{user.pk}", f"erased-{user.pk}@invalid"


def is_erased(user: Any) -> bool:
    name, email = pseudonym_of(user)  # and no name left
    return bool(user.get_username() == name and user.email == email and not user.first_name and not user.last_name)


def _terms(user: Any) -> tuple[dict[str, str], dict[str, str]]:
    """({term in lower case: its replacement} for every row, the same plus first and last names for the person's
    own rows): today's values and any the audit trail recorded for the account before."""
    name, email = pseudonym_of(user)
    values: dict[str, set[str]] = {f: {str(getattr(user, f) or "")} for f in PERSON_FIELDS}
    user_type = ContentType.objects.get_for_model(user, for_concrete_model=False)
    for changes in LogEntry.objects.filter(content_type=user_type, object_id=user.pk).values_list("changes", flat=True):
        for key, pair in (changes or {}).items():
            if key in values and isinstance(pair, list):
                values[key].update(str(value) for value in pair if value not in (None, "None"))
    terms: dict[str, str] = {}
    for address in values["email"]:
        terms[address.lower()] = email
    for username in values["username"]:
        terms[username.lower()] = name
    full = f"{user.first_name} {user.last_name}".strip()
    if " " in full:
        terms[full.lower()] = name
    own = dict(terms)
    for part in values["first_name"] | values["last_name"]:
        own[part.lower()] = name
    keep = {name.lower(), email.lower()}
    return (
        {t: r for t, r in terms.items() if len(t) >= MIN_TERM and t not in keep},
        {t: r for t, r in own.items() if len(t) >= MIN_TERM and t not in keep},
    )


def _pattern(terms: dict[str, str]) -> re.Pattern[str] | None:
    if not terms:
        return None
    alternatives = "|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<![\w.+-])(?:{alternatives})(?![\w-])", re.IGNORECASE)


def _replacement(found: str, terms: dict[str, str]) -> str:
    """The pseudonym for a term as found (an address for an address)."""
    same_kind = (value for term, value in terms.items() if ("@" in term) == ("@" in found))
    default = next(same_kind, next(iter(terms.values())))
    return terms.get(found.lower(), default)


def _replace(value: Any, pattern: re.Pattern[str], terms: dict[str, str]) -> Any:
    """`value` with every term replaced: in text, and in every key and string of JSON (walked, not searched as its
    text, where an escape such as \\n would hide the start of a word)."""
    if isinstance(value, str):
        return pattern.sub(lambda match: _replacement(match.group(0), terms), value)
    if isinstance(value, list):
        return [_replace(item, pattern, terms) for item in value]
    if isinstance(value, dict):
        return {_replace(key, pattern, terms): _replace(item, pattern, terms) for key, item in value.items()}
    return value


def _scrub(queryset: Any, fields: tuple[str, ...], terms: dict[str, str]) -> int:
    """Replace the terms in `fields` of the rows of `queryset` holding one; returns how many rows changed. Rows
    are found by the database (JSON compared as its text) and written with UPDATE: no audit row copies the old text."""
    pattern = _pattern(terms)
    if pattern is None:
        return 0
    model = queryset.model
    annotations: dict[str, Any] = {}
    found = Q()
    for name in fields:
        lookup = name
        if isinstance(model._meta.get_field(name), models.JSONField):
            lookup = f"privacy_text_{name}"
            annotations[lookup] = Cast(name, TextField())
        for term in terms:
            found |= Q(**{f"{lookup}__icontains": term})
    changed = 0
    for row in queryset.annotate(**annotations).filter(found).values("pk", *fields).iterator():
        updates = {name: _replace(row[name], pattern, terms) for name in fields}
        updates = {name: value for name, value in updates.items() if value != row[name]}
        if updates:
            if model._meta.label == "itsm.Ticket":
                updates["version"] = F("version") + 1  # the ETag: a client's copy is stale now
            model._default_manager.filter(pk=row["pk"]).update(**updates)
            changed += 1
    return changed


def _scrub_raw(messages: Any, terms: dict[str, str]) -> int:
    """Replace the terms in the raw bytes of inbound messages (read in batches: bytes are not searched by SQL)."""
    pattern = _pattern(terms)
    if pattern is None:
        return 0
    as_bytes = re.compile(pattern.pattern.encode(), re.IGNORECASE)
    changed = 0
    for pk, raw in messages.values_list("pk", "raw").iterator(chunk_size=200):
        data = bytes(raw)
        new = as_bytes.sub(lambda match: _replacement(match.group(0).decode("utf-8", "replace"), terms).encode(), data)
        if new != data:
            InboundMessage.objects.filter(pk=pk).update(raw=new)
            changed += 1
    return changed


def _refuse_last_admin(user: Any) -> None:
    others = get_user_model()._default_manager.filter(admins_q(), is_active=True).exclude(pk=user.pk)
    if is_admin(user) and not others.exists():
        raise PersonalDataRefused(
            f"{user.get_username()} is the last active admin: make someone else an admin first, then erase."
        )


def _own_rows(user: Any, *, terms: dict[str, str], own: dict[str, str], counts: dict[str, int]) -> list[str]:
    """The rows that are the person's: sign-in means removed, attachments deleted (their files' names returned, to
    delete once committed), addresses pseudonymised."""
    name, email = pseudonym_of(user)
    addresses = [term for term in terms if "@" in term]
    counts["api_tokens"] = AuthToken.objects.filter(user=user).delete()[0]
    counts["second_factor_devices"] = (
        TOTPDevice.objects.filter(user=user).delete()[0] + StaticDevice.objects.filter(user=user).delete()[0]
    )
    live = IntegrationToken.objects.filter(account=user, revoked_at__isnull=True)
    counts["integration_tokens_revoked"] = live.update(revoked_at=timezone.now())
    ips = LogEntry.objects.filter(actor=user, remote_addr__isnull=False).values_list("remote_addr", flat=True)
    usernames = [term for term in terms if "@" not in term and " " not in term]
    keys = login_throttle_keys_of(usernames=usernames, emails=addresses, addresses=sorted(set(ips)))
    counts["login_throttles"] = LoginThrottle.objects.filter(key__in=keys).delete()[0]
    counts["idempotency_keys"] = IdempotencyKey.objects.filter(user=user).delete()[0]  # their replayable responses

    attachments = Attachment.objects.filter(uploaded_by=user)
    removed = list(attachments.values_list("pk", "filename", "file"))
    counts["attachments"] = attachments.delete()[0]
    _forget_attachments(removed)

    by_address = Q()
    for address in addresses:
        by_address |= Q(sender__iexact=address)
    mine = InboundMessage.objects.filter(by_address) if addresses else InboundMessage.objects.none()
    counts["inbound_mail"] = mine.update(sender=email, raw=b"", raw_truncated=True, size=0)
    counts["notifications"] = Notification.objects.filter(recipient=user).update(target=email)
    for address in addresses:
        Notification.objects.filter(target__iexact=address).update(target=email)
    _scrub(Notification.objects.filter(recipient=user), SCANNED["itsm.Notification"], own)
    _scrub(InboundMessage.objects.filter(pk__in=mine.values("pk")), SCANNED["itsm.InboundMessage"], own)
    for channel in NotificationChannel.objects.filter(user=user):
        NotificationChannel.objects.filter(pk=channel.pk).update(target=f"{name}-{channel.pk}@invalid", enabled=False)
    counts["notification_channels"] = NotificationChannel.objects.filter(user=user).count()
    bounced = Q(address__iexact=email)
    for address in addresses:
        bounced |= Q(address__iexact=address)
    suppressed = list(SuppressedAddress.objects.filter(bounced).order_by("pk").values_list("pk", flat=True))
    counts["suppressed_addresses"] = len(suppressed)
    if suppressed:  # one row per address: the first keeps the pseudonym
        SuppressedAddress.objects.filter(pk__in=suppressed[1:]).delete()
        SuppressedAddress.objects.filter(pk=suppressed[0]).update(address=email)
    counts["watched_tickets"] = user.watched_tickets.count()
    user.watched_tickets.clear()
    return [str(path) for _, _, path in removed]


def _forget_attachments(removed: list[tuple[int, str, str]]) -> None:
    """The removed files' names may be personal too ("passport Jane Doe.pdf"): gone from the timeline entries
    that recorded them and from their rows in the audit trail."""
    if not removed:
        return
    ids = [str(pk) for pk, _, _ in removed]
    Event.objects.filter(field__in=["attachment", "internal_attachment"], new_value__in=ids).update(note=REMOVED)
    names = {name.lower(): REMOVED for _, name, _ in removed if len(name) >= MIN_TERM}
    names |= {str(path).lower(): REMOVED for _, _, path in removed}
    attachment_type = ContentType.objects.get_for_model(Attachment)
    rows = LogEntry.objects.filter(content_type=attachment_type, object_pk__in=ids)
    _scrub(rows, SCANNED["auditlog.LogEntry"], names)


def _comments(user: Any, choice: str, counts: dict[str, int]) -> None:
    if choice == "blank":
        written = Comment.objects.filter(author=user)
        _unquote(written)
        counts["comments_blanked"] = written.exclude(body=BLANKED).update(body=BLANKED)
        TicketNotice.objects.filter(comment__in=written).update(note="")
        counts["ratings_blanked"] = TicketRating.objects.filter(rated_by=user).exclude(comment="").update(comment="")
    else:
        counts["comments_kept"] = Comment.objects.filter(author=user).count()


def _unquote(written: Any) -> None:
    """The blanked comments' text out of the e-mails that quoted them (the text part as written, the HTML escaped)."""
    for ticket_id, body in written.exclude(body=BLANKED).values_list("ticket_id", "body"):
        if len(body.strip()) < MIN_TERM:
            continue
        quoted = Notification.objects.filter(ticket_id=ticket_id)
        for name, text in (("body", body), ("html_body", str(escape(body)))):
            for pk, value in quoted.filter(**{f"{name}__contains": text}).values_list("pk", name):
                Notification.objects.filter(pk=pk).update(**{name: value.replace(text, BLANKED)})


def _audit_trail(user: Any, terms: dict[str, str], counts: dict[str, int]) -> None:
    """Their actions keep their actor (the pseudonymised account) but lose the address they came from; rows about
    the account show the pseudonym."""
    name, email = pseudonym_of(user)
    counts["audit_entries_by_them"] = LogEntry.objects.filter(actor=user).update(
        actor_email=email, remote_addr=None, remote_port=None
    )
    for address in [term for term in terms if "@" in term]:
        LogEntry.objects.filter(actor_email__iexact=address).update(actor_email=email)
    user_type = ContentType.objects.get_for_model(user, for_concrete_model=False)
    LogEntry.objects.filter(content_type=user_type, object_id=user.pk).update(object_repr=name)
    AdminLogEntry.objects.filter(content_type=user_type, object_id=str(user.pk)).update(object_repr=name)


def personal_data_erase(*, user: Any, comments: str, source: str, actor: Any = None) -> Erasure:
    """Pseudonymise `user` everywhere, in one transaction, and record the erasure in the audit trail (its source and
    actor, what was done, none of the old values). `comments`: `keep` their text or `blank` it. A second erasure
    of an erased account does nothing; the last active admin is refused (PersonalDataRefused)."""
    if comments not in COMMENTS:
        raise ValueError(f"comments must be one of {', '.join(COMMENTS)}, not {comments!r}")
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model._default_manager.select_for_update().get(pk=user.pk)
        name, email = pseudonym_of(user)
        erasure = Erasure(user_id=user.pk, pseudonym=name, comments=comments)
        if is_erased(user) and not (
            comments == "blank" and Comment.objects.filter(author=user).exclude(body=BLANKED).exists()
        ):
            erasure.already_erased = True
            return erasure
        _refuse_last_admin(user)
        terms, own = _terms(user)
        counts = erasure.counts
        with disable_auditlog():
            files = _own_rows(user, terms=terms, own=own, counts=counts)
            _comments(user, comments, counts)
            _audit_trail(user, terms, counts)
            for label, fields in SCANNED.items():
                counts[f"scanned {label}"] = _scrub(apps.get_model(label)._default_manager.all(), fields, terms)
            counts["scanned itsm.InboundMessage.raw"] = _scrub_raw(InboundMessage.objects.exclude(raw=b""), terms)
            user_model._default_manager.filter(pk=user.pk).update(
                username=name,
                email=email,
                first_name="",
                last_name="",
                password=make_password(None),
                is_active=False,
            )
        user.refresh_from_db()
        LogEntry.objects.log_create(
            user,
            action=LogEntry.Action.UPDATE,
            changes={"personal data": ["(erased)", f"pseudonymised as {name}; comments {comments}"]},
            serialized_data=None,
            actor=actor if actor is not None and getattr(actor, "pk", None) else None,
            additional_data={
                "detail": f"personal data erasure ({source})",
                "erasure": {"comments": comments, **{key: value for key, value in counts.items() if value}},
            },
        )
        transaction.on_commit(lambda: _delete_files(files))
    return erasure


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:
            # The rows are gone; a file left behind is logged for the operator to remove by hand.
            logger.exception("could not delete the erased person's attachment file %s", name)
