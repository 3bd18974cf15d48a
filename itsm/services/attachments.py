"""Files on tickets and comments: stored only once they pass the size and type rules, recorded on the ticket's
timeline, removed by admins. The API and the mail intake both store through attachment_create."""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from itsm.exceptions import InvalidInput, NotPermitted
from itsm.files import (
    SNIFF_BYTES,
    clean_filename,
    effective_type,
    normalize_type,
    sniff_type,
    storage_extension,
    type_from_name,
    type_matches,
)
from itsm.models import Attachment, Comment, Event, Ticket
from itsm.roles import is_admin, is_staff_role
from itsm.services.events import event_record

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
# Kept in memory up to this size while it is checked; larger files go to a temporary file.
SPOOL_BYTES = 1024 * 1024


@dataclass
class _Checked:
    filename: str
    content: IO[bytes]
    size: int
    sha256: str
    content_type: str


def attachment_create(
    *,
    ticket: Ticket,
    uploaded_by: Any,
    filename: str,
    content_type: str,
    data: bytes | IO[bytes],
    comment: Comment | None = None,
) -> Attachment:
    """Store a file on `ticket` (on `comment` of that ticket if given) and record it on the ticket's timeline.

    Refuses with InvalidInput({"file": [...]}) a file that is empty, larger than ITSM_ATTACHMENT_MAX_BYTES, or of a
    type denied (by its content, the claimed `content_type` or its name) or not allowed, and writes nothing then.
    The file is written to storage after the checks and removed again if the database write fails; a rollback of a
    transaction of the caller's own after this returns leaves the stored file behind (call it outside one).
    `uploaded_by` may be None (a file that arrived by mail from an unknown sender)."""
    if comment is not None:
        if comment.ticket_id != ticket.pk:
            raise InvalidInput({"comment": ["This comment is not on this ticket."]})
        if comment.internal and not is_staff_role(uploaded_by):
            raise NotPermitted("Only agents can attach files to internal notes.")
    shown_name = clean_filename(filename)
    checked = _checked(data, filename=shown_name, claimed=content_type)
    try:
        stored_name = default_storage.save(_storage_name(ticket.pk, shown_name), File(checked.content))
        try:
            attachment = _record(
                ticket_id=ticket.pk, comment=comment, uploaded_by=uploaded_by, name=stored_name, checked=checked
            )
        except BaseException:
            _forget([stored_name])
            raise
    finally:
        checked.content.close()
    return attachment


@dataclass(frozen=True)
class Upload:
    """One file of a form that carries several (the portal's new ticket and reply): as the client sent it."""

    filename: str
    content_type: str
    data: bytes | IO[bytes]


@dataclass
class StagedFiles:
    """Files that all passed the rules, waiting to be stored on a ticket inside the caller's transaction."""

    checked: list[_Checked]
    stored: list[str] = field(default_factory=list)

    def record(self, *, ticket: Ticket, uploaded_by: Any, comment: Comment | None = None) -> list[Attachment]:
        """Store each file and write its row and timeline entry, on `ticket` (on `comment` if given)."""
        if comment is not None and comment.internal and not is_staff_role(uploaded_by):
            raise NotPermitted("Only agents can attach files to internal notes.")
        attachments = []
        for checked in self.checked:
            name = default_storage.save(_storage_name(ticket.pk, checked.filename), File(checked.content))
            self.stored.append(name)
            attachments.append(
                _record(ticket_id=ticket.pk, comment=comment, uploaded_by=uploaded_by, name=name, checked=checked)
            )
        return attachments


@contextmanager
def attachments_staged(*, uploads: Sequence[Upload]) -> Iterator[StagedFiles]:
    """Several files, all or none. Every file is checked before anything is written: InvalidInput({"files": [...]})
    names each refused file and why. Inside the block, `record()` stores them; if the block raises (the caller's
    transaction then rolls back), the files stored are removed again, so a failure leaves neither rows nor files."""
    checked: list[_Checked] = []
    refused: list[str] = []
    try:
        for upload in uploads:
            shown_name = clean_filename(upload.filename)
            try:
                checked.append(_checked(upload.data, filename=shown_name, claimed=upload.content_type))
            except InvalidInput as error:
                refused += [f"{shown_name}: {message}" for message in error.errors.get("file", [])]
        if refused:
            raise InvalidInput({"files": refused})
        staged = StagedFiles(checked)
        try:
            yield staged
        except BaseException:
            _forget(staged.stored)
            raise
    finally:
        for each in checked:
            each.content.close()


def attachment_check(*, filename: str, content_type: str, data: IO[bytes]) -> None:
    """Apply attachment_create's rules to a file without storing it, raising the same InvalidInput: for a form that
    writes a comment and its files together and refuses the whole post before writing any of it. `data` must seek;
    it is left at its start."""
    _checked(data, filename=clean_filename(filename), claimed=content_type).content.close()
    data.seek(0)


def _record(*, ticket_id: int, comment: Comment | None, uploaded_by: Any, name: str, checked: _Checked) -> Attachment:
    """The row, its timeline entry and the ticket's new version, in one transaction under the ticket's lock."""
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
        now = timezone.now()
        attachment = Attachment.objects.create(
            ticket=ticket,
            comment=comment,
            file=name,
            filename=checked.filename,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            uploaded_by=uploaded_by if getattr(uploaded_by, "pk", None) else None,
            created_at=now,
        )
        event_record(
            ticket=ticket,
            actor=uploaded_by,
            kind=Event.Kind.CHANGED,
            field=_event_field(comment),
            new=attachment.pk,
            note=checked.filename,
            at=now,
        )
        _touch(ticket, comment, now)
    return attachment


def attachment_delete(*, attachment_id: int, actor: Any) -> None:
    """Remove an attachment (admins only): the row, a timeline entry on its ticket, and, once that is committed,
    the file in storage."""
    if not is_admin(actor):
        raise NotPermitted("Only admins can delete attachments.")
    with transaction.atomic():
        attachment = Attachment.objects.select_related("comment").get(pk=attachment_id)
        ticket = Ticket.objects.select_for_update().get(pk=attachment.ticket_id)
        now = timezone.now()
        event_record(
            ticket=ticket,
            actor=actor,
            kind=Event.Kind.CHANGED,
            field=_event_field(attachment.comment),
            old=attachment.pk,
            note=f"removed {attachment.filename}",
            at=now,
        )
        attachment.delete()
        _touch(ticket, attachment.comment, now)
        name = str(attachment.file.name)
        transaction.on_commit(lambda: _forget([name]))


def attachment_files_forget(*, ticket_id: int) -> None:
    """Before a ticket is deleted (its attachment rows go with it): remove their files once that is committed."""
    names = [str(name) for name in Attachment.objects.filter(ticket_id=ticket_id).values_list("file", flat=True)]
    if names:
        transaction.on_commit(lambda: _forget(names))


def _forget(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:
            # The row is gone already; a file left behind is logged for the operator, and stops no other delete.
            logger.exception("could not delete attachment file %s", name)


def _touch(ticket: Ticket, comment: Comment | None, now: Any) -> None:
    """The ticket was updated; its version (the ETag) moves only for what its requester sees, so that the ETag does
    not count the files of internal notes."""
    ticket.updated_at = now
    fields = ["updated_at"]
    if comment is None or not comment.internal:
        ticket.version = F("version") + 1
        fields.append("version")
    ticket.save(update_fields=fields)


def _event_field(comment: Comment | None) -> str:
    """An internal note's attachment is recorded as such, so that requesters' timelines leave it out as they leave
    out the note (queries.tickets.events_visible_to)."""
    return "internal_attachment" if comment is not None and comment.internal else "attachment"


def _storage_name(ticket_id: int, filename: str) -> str:
    return f"attachments/{ticket_id}/{secrets.token_hex(16)}{storage_extension(filename)}"


def _checked(data: bytes | IO[bytes], *, filename: str, claimed: str) -> _Checked:
    """Reads `data` once into a spooled copy (a stream may not seek), hashing it and stopping past the limit, then
    decides its type."""
    limit = int(settings.ITSM_ATTACHMENT_MAX_BYTES)
    source: IO[bytes] = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    copy: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (closed by the caller)
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        while chunk := source.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise InvalidInput({"file": [f"The file is larger than {_human(limit)} ({limit} bytes), the limit."]})
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            digest.update(chunk)
            copy.write(chunk)
        if size == 0:
            raise InvalidInput({"file": ["The file is empty."]})
        content_type = _allowed_type(head, filename=filename, claimed=claimed)
    except BaseException:
        copy.close()
        raise
    copy.seek(0)
    return _Checked(filename=filename, content=copy, size=size, sha256=digest.hexdigest(), content_type=content_type)


def _allowed_type(head: bytes, *, filename: str, claimed: str) -> str:
    claimed = normalize_type(claimed)
    sniffed = sniff_type(head)
    named = type_from_name(filename)
    stored = effective_type(claimed=claimed, sniffed=sniffed, named=named)
    denied = list(settings.ITSM_ATTACHMENT_DENIED_TYPES)
    for kind, source in ((sniffed, "by its content"), (named, "by its name"), (claimed, "as sent")):
        if kind and type_matches(kind, denied):
            raise InvalidInput({"file": [f"This file is {kind} ({source}), a type that is not accepted."]})
    allowed = list(settings.ITSM_ATTACHMENT_ALLOWED_TYPES)
    if allowed and not type_matches(stored, allowed):
        raise InvalidInput(
            {"file": [f"Files of type {stored} are not accepted. Accepted types: {', '.join(allowed)}."]}
        )
    return stored


def _human(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB" if size >= 1024 * 1024 else f"{size} bytes"
